#ifndef BOOKEND_CSQLITE_SHIM_H
#define BOOKEND_CSQLITE_SHIM_H

#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a destructor pointer; Swift cannot import it.
// "The constant SQLITE_TRANSIENT means that the content will likely change in the near future
// and that SQLite should make its own private copy of the content before returning."
static inline sqlite3_destructor_type bookend_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

// sqlite3_config is variadic, which Swift cannot call. Applied once, before the first connection
// opens (SQLite accepts configuration only before it initializes; later it answers SQLITE_MISUSE and
// keeps its defaults, which are correct, only slower). Returns the first code that is not SQLITE_OK.
//
// - No bulk page-cache allocation: by default every page cache starts with one ~85 KB allocation,
//   and that includes every ephemeral table SQLite opens and closes again (until schema version 10
//   each `x IN ('a', 'b', 'c')` CHECK of a row it wrote made one; a task INSERT made three). Freeing
//   that block on a thread's malloc arena made glibc return the memory to the kernel and fault it
//   back in on the next row.
// - No memory statistics: they take a global mutex around every allocation, and nothing reads them.
// - Statement journals keep SQLite's own spill threshold. A larger one (SQLITE_CONFIG_STMTJRNL_SPILL
//   of 256 KiB and more) made migration 10 fail with SQLITE_FULL on a version-9 file of 10,000 tasks
//   with SQLite 3.40.1, although it spared the scheduler's savepoints their temporary files.
static inline int bookend_sqlite_configure(void) {
    int codes[] = {
        sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 0, 0),
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0),
    };
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (codes[i] != SQLITE_OK) return codes[i];
    }
    return SQLITE_OK;
}

// Makes the write-ahead log of `db`'s main database durable: the same sync a COMMIT at
// synchronous=FULL performs, done later (see Connection.syncCommitted). Through SQLite's own file
// object (SQLITE_FCNTL_JOURNAL_POINTER), not a descriptor of our own: a descriptor opened and closed
// beside SQLite's would drop the process's POSIX locks on that file, and could name an older WAL.
static inline int bookend_sqlite_sync_journal(sqlite3 *db) {
    sqlite3_file *file = 0;
    int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file);
    if (rc != SQLITE_OK) return rc;
    if (!file || !file->pMethods) return SQLITE_OK;  // no log open: nothing was written to it
    return file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
}

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

// A statement profile for finding where a workload's database time goes (docs/performance.md,
// "Profiling"): with BOOKEND_SQL_PROFILE=PREFIX set, each write connection appends one line per
// statement it finishes, `<nanoseconds SQLite spent on it>\t<its text>`, to PREFIX-<pid>-<n> (n
// counts connections, so consecutive engines of one program go to separate files). The text is the
// statement as prepared, never its bound values. Off unless the variable is set: one getenv per
// connection opened. The file stays open as long as the program runs (a diagnostic, not a log).
static int bookend_profile_line(unsigned type, void *context, void *statement, void *nanoseconds) {
    if (type != SQLITE_TRACE_PROFILE) return 0;
    FILE *file = (FILE *)context;
    const char *sql = sqlite3_sql((sqlite3_stmt *)statement);
    fprintf(file, "%lld\t", *(long long *)nanoseconds);
    for (const char *c = sql; c && *c; c++) fputc(*c == '\n' || *c == '\t' ? ' ' : *c, file);
    fputc('\n', file);
    // Flushed per line: an engine is often ended by a signal, and the file must hold what ran.
    fflush(file);
    return 0;
}

static inline void bookend_sqlite_profile_if_asked(sqlite3 *db) {
    static int connections = 0;
    const char *prefix = getenv("BOOKEND_SQL_PROFILE");
    if (!prefix || !*prefix) return;
    char path[4096];
    if (snprintf(path, sizeof path, "%s-%d-%d", prefix, (int)getpid(), connections++) >= (int)sizeof path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    FILE *file = fdopen(fd, "a");
    if (!file) { close(fd); return; }
    fprintf(file, "#db %s\n", sqlite3_db_filename(db, "main"));
    sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, bookend_profile_line, file);
}

#endif
