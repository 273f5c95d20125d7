/*
 * session.c - per-session mode: wait for the end of one session.
 *
 * The session ends when the first of these happens:
 *   - the host sends NSINIT_MSG_TERMINATE (pam_close_session) or the control
 *     socket reaches end-of-file;
 *   - the session leader, PID 2, exits. PID 2 is the host's child, not ours,
 *     so we watch it through a pidfd. It does not exist yet when we start:
 *     the host forks it after pam_open_session returns. Until it appears we
 *     look for it with a backoff (1 ms doubling to 5 s);
 *   - the host exits and PID 2 is not running (an orphaned PID 2 keeps the
 *     session alive until it ends; one that never appeared or came and went
 *     cannot come back, since only the host's thread forks into the
 *     namespace);
 *   - SIGTERM, SIGINT or SIGHUP, e.g. from an admin on the host (loop.c).
 *
 * A PID 2 that is missing while the host lives is never taken as "came and
 * went": /proc/sys/kernel/ns_last_pid shows 2 as soon as the number is
 * reserved, before the process can be found, so "last PID >= 2 but no
 * PID 2" also describes a fork in flight. Ending the namespace then makes
 * that fork fail with ENOMEM (seen with 20 parallel su on a 2-core guest).
 * A PID 2 that came and went while the host lives is ended by the host's
 * pam_close_session, or by its exit.
 * Once PID 2 is found the loop makes no wakeups while the session idles.
 *
 * Kernels without pidfd_open (before 5.3), or -P, use a polling fallback:
 * PID 2 and the host are checked once a second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../handshake.h"
#include "init.h"

#define BACKOFF_FIRST_MS 1
#define BACKOFF_MAX_MS 5000
#define FALLBACK_POLL_MS 1000

/* What the session leader (PID 2) is doing, as far as we know. */
enum leader_state {
	LEADER_NOT_FOUND, /* not created yet, or came and went */
	LEADER_ALIVE,     /* found running; watched from now on */
};

struct session {
	int use_pidfd;  /* 0 with -P or when the kernel lacks it */
	int host_fd;    /* pidfd of the host process, or -1 */
	int control_fd; /* NSINIT_FD_CONTROL, or -1 after end-of-file */
	int host_alive; /* 0 once the host process has exited */
	int leader_fd;  /* pidfd of PID 2, or -1 */
	enum leader_state leader;
	long backoff_ms;
};

/* Look for the session leader and start watching it if it runs. */
static void leader_check(struct session *s)
{
	if (s->use_pidfd) {
		int fd = (int)syscall(SYS_pidfd_open, 2, 0);

		if (fd >= 0) {
			s->leader_fd = fd;
			s->leader = LEADER_ALIVE;
		}
	} else if (pid_running(2)) {
		s->leader = LEADER_ALIVE;
	}
}

/* The host process exited. PID 2 may still run (an orphaned shell after
 * kill -9 of su) and the session lives on until it ends; if PID 2 never
 * appeared, nobody can start it now, and session_serve ends the session. */
static void host_gone(struct session *s)
{
	close_fd(&s->host_fd);
	s->host_alive = 0;
}

/* Read one message from the host. Returns 1 for NSINIT_MSG_TERMINATE.
 * End-of-file means every copy of the host's end is closed: the host has
 * exited (its end is close-on-exec, so the session's programs do not hold
 * it), which is host_gone, not a request to end. */
static int control_says_end(struct session *s)
{
	struct nsinit_msg msg;
	ssize_t n = recv(s->control_fd, &msg, sizeof(msg), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == (ssize_t)sizeof(msg))
		return msg.type == NSINIT_MSG_TERMINATE;
	close_fd(&s->control_fd);
	host_gone(s);
	return 0;
}

/* The wait of this round: none once the leader is watched by its pidfd. */
static int round_timeout(struct session *s)
{
	int timeout;

	if (!s->use_pidfd)
		return FALLBACK_POLL_MS;
	if (s->leader != LEADER_NOT_FOUND)
		return -1;
	timeout = (int)s->backoff_ms;
	if (s->backoff_ms < BACKOFF_MAX_MS)
		s->backoff_ms *= 2;
	return timeout;
}

void session_serve(struct loop *l, int use_pidfd, int host_fd)
{
	struct session s = {
		.use_pidfd = use_pidfd,
		.host_fd = host_fd,
		.control_fd = NSINIT_FD_CONTROL,
		.host_alive = 1,
		.leader_fd = -1,
		.leader = LEADER_NOT_FOUND,
		.backoff_ms = BACKOFF_FIRST_MS,
	};

	for (;;) {
		int i_ctl, i_host, i_leader;

		if (s.leader == LEADER_NOT_FOUND)
			leader_check(&s);
		if (s.leader == LEADER_NOT_FOUND && !s.host_alive)
			return; /* nobody can start the session now */

		/* The relay accepts only once the session runs. */
		loop_begin(l, round_timeout(&s), s.leader == LEADER_ALIVE);
		/* poll() skips the sources that are -1. */
		i_ctl = loop_add(l, (struct pollfd){ .fd = s.control_fd, .events = POLLIN }, 0);
		i_host = loop_add(l, (struct pollfd){ .fd = s.host_fd, .events = POLLIN }, 0);
		i_leader = loop_add(l, (struct pollfd){ .fd = s.leader_fd, .events = POLLIN }, 0);

		switch (loop_wait(l)) {
		case LOOP_AGAIN:
			continue;
		case LOOP_END:
			return;
		case LOOP_READY:
			break;
		}
		if (l->pfd[i_ctl].revents && control_says_end(&s))
			return;
		if (l->pfd[i_host].revents)
			host_gone(&s);
		loop_shared(l);
		if (l->pfd[i_leader].revents)
			return;
		if (!s.use_pidfd && s.leader == LEADER_ALIVE && !pid_running(2))
			return;
	}
}
