#ifndef VOXSYNC_CZSTD_SHIM_H
#define VOXSYNC_CZSTD_SHIM_H
#include <zstd.h>

/* ZSTD_CONTENTSIZE_UNKNOWN / _ERROR are `(0ULL - 1)` style macros that Swift cannot import. */
static const unsigned long long voxsync_zstd_contentsize_unknown = ZSTD_CONTENTSIZE_UNKNOWN;
static const unsigned long long voxsync_zstd_contentsize_error = ZSTD_CONTENTSIZE_ERROR;
#endif
