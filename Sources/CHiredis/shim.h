#ifndef VOXSYNC_CHIREDIS_SHIM_H
#define VOXSYNC_CHIREDIS_SHIM_H
/* redisCommand is C-variadic and cannot be called from Swift: use redisCommandArgv or
   redisAppendCommandArgv + redisGetReply. */
#include <hiredis/hiredis.h>
#endif
