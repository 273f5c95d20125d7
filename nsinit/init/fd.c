/*
 * fd.c - small descriptor helpers every part of the helper uses: closing,
 * accepting from one uid, pausing a listener that ran out of descriptors,
 * and the monotonic clock their backoffs count in. They call nothing
 * else of the helper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void close_from(int first)
{
	if (syscall(SYS_close_range, first, ~0U, 0) == 0)
		return;
	/* close_range needs Linux 5.9. /proc/self/fd cannot be trusted here
	 * (at start the /proc we see belongs to the host's PID namespace), so
	 * walk up to the descriptor limit. */
	struct rlimit lim;
	int max_fd = 65536;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < (rlim_t)INT_MAX)
		max_fd = (int)lim.rlim_cur;
	for (int fd = first; fd < max_fd; fd++)
		close(fd);
}

/* Accept one connection whose peer has uid `uid`; close any other. */
static int accept_from(int listen_fd, uid_t uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != uid) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

struct pollfd listen_pollfd(int fd, struct listen_pause *p, int *timeout)
{
	if (p->resume_at > 0) {
		long left = p->resume_at - now_ms();

		if (left > 0) {
			if (*timeout < 0 || left < *timeout)
				*timeout = (int)left;
			return (struct pollfd){ .fd = -1, .events = POLLIN };
		}
		p->resume_at = 0;
	}
	return (struct pollfd){ .fd = fd, .events = POLLIN };
}

int listen_failed(struct listen_pause *p, int err)
{
	if (err != EMFILE && err != ENFILE && err != ENOMEM && err != ENOBUFS)
		return 0;
	if (p->wait_ms == 0) {
		errno = err;
		syslog(LOG_ERR, "cannot accept on %s: %m; waiting for resources, connections stay queued",
		       p->what);
		p->wait_ms = LISTEN_PAUSE_FIRST_MS;
	} else if (p->wait_ms < LISTEN_PAUSE_MAX_MS) {
		p->wait_ms *= 2;
		if (p->wait_ms > LISTEN_PAUSE_MAX_MS)
			p->wait_ms = LISTEN_PAUSE_MAX_MS;
	}
	p->resume_at = now_ms() + p->wait_ms;
	return 1;
}

void listen_served(struct listen_pause *p)
{
	p->wait_ms = 0;
	p->resume_at = 0;
}

void listen_wake(struct listen_pause *p)
{
	p->resume_at = 0;
}

int listen_accept(int listen_fd, uid_t uid, struct listen_pause *p)
{
	int fd = accept_from(listen_fd, uid);

	if (fd < 0)
		(void)listen_failed(p, errno);
	else
		listen_served(p);
	return fd;
}
