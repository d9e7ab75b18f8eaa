#ifndef VOXSYNC_CVOXSYS_SHIM_H
#define VOXSYNC_CVOXSYS_SHIM_H
/* Linux calls that Swift cannot reach directly: prctl and syscall are C-variadic; Glibc does not
   export epoll (the benchmark client polls its connections with it). */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Ask the kernel to send `signal` to this process when its parent dies. */
static inline int voxsync_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

/* Lowers the calling thread's priority (Linux: nice values are per thread). syscall is variadic. */
static inline int voxsync_nice_this_thread(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}
#endif
