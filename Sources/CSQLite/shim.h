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
// - Statement journals stay in memory up to 4 MiB (SQLite's default is 64 KiB). The scheduler's pass
//   runs each step in a SAVEPOINT, whose journal holds every page the step changes; past 64 KiB
//   SQLite moved it to a new temporary file (/var/tmp/etilqs_*), created and unlinked within the
//   pass: in a throughput run about one file per four tasks, and on ext4 without a journal every
//   freed inode slows the next allocations in its group (see StatusFolderPool.kept).
static inline int bookend_sqlite_configure(void) {
    int codes[] = {
        sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 0, 0),
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0),
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 4 << 20),
    };
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (codes[i] != SQLITE_OK) return codes[i];
    }
    return SQLITE_OK;
}

#endif
