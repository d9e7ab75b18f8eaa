#ifndef VOXSYNC_CVOXSYS_SHIM_H
#define VOXSYNC_CVOXSYS_SHIM_H
/* Linux calls that Swift cannot reach directly: prctl and syscall are C-variadic; Glibc does not
   export epoll or eventfd (the cache worker's client socket and the benchmark client poll their
   connections with epoll). */
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* A mutex that spins for a while (glibc's adaptive type: up to 100 tries) before it sleeps in
   futex(2), so a critical section of a microsecond or two costs a thread that finds it taken a
   short spin instead of a sleep and a wake-up, which on a VM is a VM exit. With `checked`
   (debug builds) it is an error-checking mutex instead: relocking from the owning thread
   returns EDEADLK, which the caller turns into a trap rather than a silent deadlock. */
static inline int voxsync_mutex_init(pthread_mutex_t *mutex, int checked) {
    pthread_mutexattr_t attributes;
    int result = pthread_mutexattr_init(&attributes);
    if (result != 0) return result;
    result = pthread_mutexattr_settype(&attributes, checked ? PTHREAD_MUTEX_ERRORCHECK_NP : PTHREAD_MUTEX_ADAPTIVE_NP);
    if (result == 0) result = pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return result;
}

/* posix_spawn attributes for a child that starts with a clean signal state whatever this
   process ignores or blocks — both are inherited, and ServiceLifecycle ignores SIGTERM and
   SIGINT to catch them, while NIO's and Foundation's threads block signals (a redis-server
   started with SIGTERM blocked never stops on it): every signal at its default action, none
   blocked. With `new_group`, the child leads a process group of its own. */
static inline void voxsync_spawnattr_clean_signals(posix_spawnattr_t *attributes, int new_group) {
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(attributes, &all);
    posix_spawnattr_setsigmask(attributes, &none);
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (new_group) {
        posix_spawnattr_setpgroup(attributes, 0);
        flags |= POSIX_SPAWN_SETPGROUP;
    }
    posix_spawnattr_setflags(attributes, flags);
}

/* glibc 2.34+ declares posix_spawn_file_actions_addclosefrom_np only under _GNU_SOURCE, which
   Swift's import of <spawn.h> does not define: a spawned child closes every descriptor from
   `lowest` on. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
static inline int voxsync_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

/* A waitpid status taken apart (the W* macros do not import into Swift): the signal that
   ended the child (0 if it exited), its exit code, and the two as a shell reports them
   (the exit code, or 128 + the signal). */
static inline int voxsync_wait_signal(int status) { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
static inline int voxsync_wait_exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 0; }
static inline int voxsync_wait_shell_code(int status) {
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Ask the kernel to send `signal` to this process when its parent dies. */
static inline int voxsync_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

/* Lowers the calling thread's priority (Linux: nice values are per thread). syscall is variadic. */
static inline int voxsync_nice_this_thread(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}

/* Names the calling thread (at most 15 bytes are kept), as `top -H` and /proc show it. */
static inline int voxsync_name_this_thread(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

/* accept4 is declared only under _GNU_SOURCE: a connection that is non-blocking and
   close-on-exec from the start, in one call. */
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
static inline int voxsync_accept_nonblocking(int listener) {
    return accept4(listener, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

#endif
