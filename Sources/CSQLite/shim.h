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

#endif
