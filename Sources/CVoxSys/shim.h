#ifndef VOXSYNC_CVOXSYS_SHIM_H
#define VOXSYNC_CVOXSYS_SHIM_H
/* Linux process calls that Swift cannot reach directly: prctl is C-variadic. */
#include <sys/prctl.h>
#include <signal.h>
#include <spawn.h>

/* Ask the kernel to send `signal` to this process when its parent dies. */
static inline int voxsync_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}
#endif
