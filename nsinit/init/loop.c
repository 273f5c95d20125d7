/*
 * loop.c - the helper's one event loop, and the signals it reads.
 *
 * Both modes (session.c, user.c) wait in the same place: each round, the
 * mode starts a table of poll sources with loop_begin, which puts in the
 * sources every mode has (the signalfd, the mount table, the relay's
 * listener and inotify watch), adds its own with loop_add, and waits with
 * loop_wait, which reaps on SIGCHLD and says when a termination signal
 * came. The mode then handles its own sources and calls loop_shared at
 * the point of its round where the mount table and the relay are served.
 * Nothing here allocates, and a round with no timer due waits without a
 * timeout, so an idle helper makes no wakeups.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include "init.h"

/* Blocked signals are delivered to PID 1 even from the host; all others
 * are dropped by the kernel, so a stray SIGINT from the terminal cannot
 * kill the namespace. */
int signals_setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int signals_drain(int sig_fd, struct relay *r)
{
	struct signalfd_siginfo si;
	int terminate = 0;

	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reap_children(r);
		else
			terminate = 1;
	}
	return terminate;
}

void loop_begin(struct loop *l, int timeout, int accepting)
{
	l->n = 0;
	l->timeout = timeout;
	(void)loop_add(l, (struct pollfd){ .fd = l->sig_fd, .events = POLLIN }, 0);
	(void)loop_add(l, proc_watch_pollfd(l->procs, &l->timeout), 0);
	/* The relay accepts only while the mode says so: in a session, a
	 * child forked before the leader would take PID 2 from it. */
	(void)loop_add(l, relay_listen_pollfd(l->relay, accepting, &l->timeout), 0);
	(void)loop_add(l, relay_watch_pollfd(l->relay), 0);
}

int loop_add(struct loop *l, struct pollfd p, int tag)
{
	l->tag[l->n] = (short)tag;
	l->pfd[l->n] = p;
	return l->n++;
}

enum loop_wait loop_wait(struct loop *l)
{
	if (poll(l->pfd, (nfds_t)l->n, l->timeout) < 0) {
		if (errno == EINTR)
			return LOOP_AGAIN;
		syslog(LOG_ERR, "poll: %m; ending %s", l->what);
		return LOOP_END;
	}
	if ((l->pfd[LOOP_SIGNALS].revents & POLLIN) && signals_drain(l->sig_fd, l->relay))
		return LOOP_END;
	return LOOP_READY;
}

void loop_shared(struct loop *l)
{
	short mounts = l->pfd[LOOP_MOUNTS].revents;

	proc_watch_check(l->procs, mounts);
	/* A mount change may be the user manager's socket coming or going. */
	if (mounts & (POLLPRI | POLLERR))
		relay_refresh(l->relay);
	relay_check(l->relay, l->pfd[LOOP_RELAY_LISTEN].revents, l->pfd[LOOP_RELAY_WATCH].revents);
}
