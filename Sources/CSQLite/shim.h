#ifndef BOOKEND_CSQLITE_SHIM_H
#define BOOKEND_CSQLITE_SHIM_H

#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a destructor pointer; Swift cannot import it.
// "The constant SQLITE_TRANSIENT means that the content will likely change in the near future
// and that SQLite should make its own private copy of the content before returning."
static inline sqlite3_destructor_type bookend_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

#endif
