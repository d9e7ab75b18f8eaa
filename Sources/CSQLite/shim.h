#ifndef VOXSYNC_CSQLITE_SHIM_H
#define VOXSYNC_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT and SQLITE_STATIC are casts of integers to function pointers: not importable. */
static inline sqlite3_destructor_type voxsync_sqlite_transient(void) { return SQLITE_TRANSIENT; }
static inline sqlite3_destructor_type voxsync_sqlite_static(void) { return SQLITE_STATIC; }
#endif
