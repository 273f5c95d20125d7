/*
 * nsspawn.c - see nsspawn.h.
 *
 * Why C: after unshare(CLONE_NEWPID) the first child of this thread becomes
 * PID 1, and no Go code may run in a forked copy of the host. Go's
 * os.StartProcess first clones a throwaway child to probe for pidfd support;
 * that probe would become PID 1, exit, and kill the new namespace. glibc's
 * posix_spawn clones with CLONE_VM|CLONE_VFORK and runs only its own
 * async-signal-safe code in the child (dup2, signal resets, execve), and
 * reports exec failures to the parent, so it is both safe and cheap here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>

#include "nsspawn.h"

int nsinit_spawn(const char *path, char *const argv[], char *const envp[],
		 const int *fds_from, const int *fds_to, int nfds, pid_t *pid)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int err;

	err = posix_spawn_file_actions_init(&actions);
	if (err)
		return err;
	err = posix_spawnattr_init(&attr);
	if (err) {
		posix_spawn_file_actions_destroy(&actions);
		return err;
	}
	/* dup2 leaves the new descriptor without FD_CLOEXEC, so exactly these
	 * survive execve. */
	for (int i = 0; i < nfds && !err; i++)
		err = posix_spawn_file_actions_adddup2(&actions, fds_from[i], fds_to[i]);
	/* The host may block or ignore signals (sshd blocks SIGCHLD around
	 * fork, many hosts ignore SIGPIPE); the child starts with none blocked
	 * and every disposition at its default. */
	sigemptyset(&none);
	sigfillset(&all);
	if (!err)
		err = posix_spawnattr_setsigmask(&attr, &none);
	if (!err)
		err = posix_spawnattr_setsigdefault(&attr, &all);
	if (!err)
		err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (!err)
		err = posix_spawn(pid, path, &actions, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	return err;
}
