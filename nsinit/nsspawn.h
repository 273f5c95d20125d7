/*
 * nsspawn.h - start a program from a thread that has just unshared its PID
 * namespace. Implemented in nsspawn.c; called from nsinit.go.
 */
#ifndef NSINIT_NSSPAWN_H
#define NSINIT_NSSPAWN_H

#include <sys/types.h>

/*
 * nsinit_spawn starts `path` with `argv` and `envp` as a child of the
 * calling thread. Each fds_from[i] is made descriptor fds_to[i] in the
 * child (all fds_from must be above every fds_to, so no mapping clobbers
 * another); every other close-on-exec descriptor is closed by execve.
 *
 * Returns 0 and stores the child's PID (as the caller sees it) in *pid, or
 * returns an errno value. Exec failures are reported too.
 */
int nsinit_spawn(const char *path, char *const argv[], char *const envp[],
		 const int *fds_from, const int *fds_to, int nfds, pid_t *pid);

#endif
