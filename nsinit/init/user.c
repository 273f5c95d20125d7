/*
 * user.c - per-user mode of pam_unshare-init (module option scope=user).
 *
 * One namespace serves every isolated session of one user. The first
 * login created it (main.c, with -U); it arrives here as the first
 * session, on NSINIT_FD_CONTROL with its host's pidfd NSINIT_FD_HOST. Later
 * logins connect to the rendezvous socket NSINIT_FD_LISTEN, which nsinit
 * (user.go) bound in a root-only directory, and send NSINIT_MSG_JOIN with
 * their own pidfd. We count them, then answer NSINIT_MSG_JOINED with our
 * own pidfd, which the host passes to setns(CLONE_NEWPID|CLONE_NEWNS).
 *
 * A session counts from the moment its connection is accepted (so a join
 * in progress holds the namespace open) until one of:
 *   - NSINIT_MSG_TERMINATE on its connection (pam_close_session);
 *   - end-of-file on its connection (the host closed it, and nothing else
 *     holds a copy);
 *   - its host's pidfd turns readable: the host died (kill -9 of sshd).
 *     This is what counts; end-of-file alone is not enough, since hosts
 *     fork without exec and their children may hold copies of the socket.
 *
 * When the count drops to zero:
 *   - without linger, the rendezvous is withdrawn (the listening socket is
 *     closed, which also refuses any connection not yet accepted) and then
 *     the namespace is torn down by main's teardown();
 *   - with linger, the namespace stays while any process other than us
 *     runs in it; on a SIGCHLD that leaves it empty we withdraw and exit.
 * A login racing either end therefore gets this namespace while it still
 * counts sessions, or a refused connection and a new namespace, never one
 * that is ending. The connection of the session whose leave ends the
 * namespace stays open until we exit, so its pam_close_session returns
 * after the teardown.
 *
 * Trust: the rendezvous lives in a 0700 root directory, and we also refuse
 * any peer whose SO_PEERCRED uid is not 0. JOIN, STATUS and STOP are only
 * honoured as the first message of an accepted connection: a session's
 * control socket may be inherited by the user's processes (hosts fork
 * without exec), and on it the user can only end their own session.
 * Descriptors that arrive with anything we do not expect are closed.
 *
 * Proc mounts of other PID namespaces (a host /proc bound into a chroot)
 * are detached as in per-session mode, by the same code (procwatch.c): main
 * sweeps once before READY, and the loop (loop.c) watches the mount table
 * and sweeps again whenever it changes, for every session at once.
 *
 * No allocation and no timers (but the retry of a failed sweep, and the
 * backoff of a listener paused for lack of descriptors): an idle
 * namespace makes no wakeups.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "../handshake.h"
#include "init.h"

static int sessions(const struct user_ns *u)
{
	int n = 0;

	for (int i = 0; i < u->nslots; i++)
		n += u->slots[i].ctl_fd >= 0;
	return n;
}

static void slot_free(struct user_ns *u, int i)
{
	close_fd(&u->slots[i].ctl_fd);
	close_fd(&u->slots[i].host_fd);
	/* Two descriptors are free: a listener paused for lack of them
	 * tries again. */
	listen_wake(&u->pause);
	listen_wake(&u->loop->relay->pause);
	u->slots[i].joined = 0;
	while (u->nslots > 0 && u->slots[u->nslots - 1].ctl_fd < 0)
		u->nslots--;
}

/* A free slot's index, or -1 if all are taken. */
static int slot_new(struct user_ns *u)
{
	for (int i = 0; i < USER_MAX_SLOTS; i++) {
		if (i < u->nslots && u->slots[i].ctl_fd >= 0)
			continue;
		memset(&u->slots[i], 0, sizeof(u->slots[i]));
		u->slots[i].ctl_fd = u->slots[i].host_fd = -1;
		if (i >= u->nslots)
			u->nslots = i + 1;
		return i;
	}
	return -1;
}

static void label_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, sizeof(((struct user_slot *)0)->label) - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

int user_setup(struct user_ns *u)
{
	int i;

	/* The host bound the socket; listening here makes SO_PEERCRED, which
	 * joiners check, name us. */
	u->listen_fd = NSINIT_FD_LISTEN;
	u->pause.what = "the rendezvous socket";
	if (listen(u->listen_fd, SOMAXCONN) < 0)
		return -1;
	u->self_fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (u->self_fd < 0)
		return -1;
	i = slot_new(u);
	u->slots[i].ctl_fd = NSINIT_FD_CONTROL;
	u->slots[i].host_fd = NSINIT_FD_HOST;
	u->slots[i].joined = 1;
	u->slots[i].pid = (int)u->first_host_pid;
	label_copy(u->slots[i].label, u->first_service ? u->first_service : "-");
	return 0;
}

/* Withdraw the rendezvous: from now on connect() is refused, and
 * connections queued but not accepted are reset. */
static void withdraw(struct user_ns *u)
{
	close_fd(&u->listen_fd);
}

/* Send one message, with descriptor fd attached unless it is -1, stamped
 * with our protocol version. Returns 0, or -1 with errno set. Never
 * blocks. */
static int send_msg(int sock, const struct nsinit_msg *msg, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct nsinit_msg m = *msg;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	m.version = NSINIT_PROTO_VERSION;
	return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(m) ? 0 : -1;
}

/* Receive one message into *msg and at most one descriptor into *fd (-1 if
 * none; extra descriptors are closed). Returns the byte count as recvmsg
 * does: 0 at end-of-file, -1 with errno set. */
static ssize_t recv_msg(int sock, struct nsinit_msg *msg, int *fd)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(*msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	*fd = -1;
	memset(msg, 0, sizeof(*msg));
	n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		int nfds, fds[4];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (nfds > 4)
			nfds = 4;
		memcpy(fds, CMSG_DATA(c), (size_t)nfds * sizeof(int));
		for (int k = 0; k < nfds; k++) {
			if (*fd < 0)
				*fd = fds[k];
			else
				close(fds[k]);
		}
	}
	return n;
}

/* Accept one connection from root. Others are closed at once. */
static void accept_one(struct user_ns *u)
{
	int fd = listen_accept(u->listen_fd, 0, &u->pause);
	int i;

	if (fd < 0)
		return;
	i = slot_new(u);
	if (i < 0) {
		syslog(LOG_ERR, "%d connections already; refusing another", USER_MAX_SLOTS);
		close(fd);
		return;
	}
	u->slots[i].ctl_fd = fd;
}

/* Answer NSINIT_MSG_STATUS on slot i. */
static void report_status(struct user_ns *u, int i)
{
	struct nsinit_msg msg = { .type = NSINIT_MSG_STATUS, .step = (unsigned char)u->linger };
	int fd = u->slots[i].ctl_fd;

	for (int k = 0; k < u->nslots; k++)
		msg.err += u->slots[k].joined;
	if (send_msg(fd, &msg, -1) < 0)
		return;
	for (int k = 0; k < u->nslots; k++) {
		if (!u->slots[k].joined)
			continue;
		msg = (struct nsinit_msg){ .type = NSINIT_MSG_SESSION, .pid = u->slots[k].pid };
		memcpy(msg.label, u->slots[k].label, sizeof(msg.label));
		if (send_msg(fd, &msg, -1) < 0)
			return;
	}
}

/* What a message on a slot asks for. */
enum verdict {
	KEEP,   /* nothing changes */
	LEAVE,  /* the slot's session is over */
	CLOSE,  /* the same, by pam_close_session, which waits for an answer */
	STOP,   /* end the namespace now */
};

/* Read one message on slot i and act on it. */
static enum verdict slot_read(struct user_ns *u, int i)
{
	struct user_slot *s = &u->slots[i];
	struct nsinit_msg msg;
	int fd;
	ssize_t n = recv_msg(s->ctl_fd, &msg, &fd);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return KEEP;
	if (n <= 0)
		return LEAVE; /* end-of-file or a reset: the host let go */
	if (n == (ssize_t)sizeof(msg) && s->joined && msg.type == NSINIT_MSG_TERMINATE) {
		close_fd(&fd);
		return CLOSE;
	}
	if (n != (ssize_t)sizeof(msg) || s->joined) {
		close_fd(&fd); /* anything else on a session's socket is ignored */
		return KEEP;
	}
	switch (msg.type) {
	case NSINIT_MSG_JOIN:
		if (fd < 0)
			return LEAVE;
		/* Count first, then acknowledge: the join is final only now. */
		s->host_fd = fd;
		s->joined = 1;
		s->pid = msg.pid;
		msg.label[sizeof(msg.label) - 1] = '\0';
		label_copy(s->label, msg.label);
		msg = (struct nsinit_msg){ .type = NSINIT_MSG_JOINED };
		/* A login that joins may have started the user manager (its
		 * pam_systemd ran first): look for its socket again. */
		relay_refresh(u->loop->relay);
		return send_msg(s->ctl_fd, &msg, u->self_fd) < 0 ? LEAVE : KEEP;
	case NSINIT_MSG_STATUS:
		close_fd(&fd);
		report_status(u, i);
		return LEAVE;
	case NSINIT_MSG_STOP:
		close_fd(&fd);
		syslog(LOG_NOTICE, "stop requested; ending the namespace");
		return STOP;
	}
	close_fd(&fd);
	return LEAVE;
}

/* A slot's source in the loop's table: its connection, or its host's
 * pidfd. */
#define TAG_HOST 1
#define TAG(slot, host) ((slot) << 1 | (host))

enum user_end user_serve(struct user_ns *u)
{
	struct loop *l = u->loop;

	for (;;) {
		int end = 0, i_listen = -1, first_slot;

		loop_begin(l, -1, 1);
		if (u->listen_fd >= 0)
			i_listen = loop_add(l, listen_pollfd(u->listen_fd, &u->pause, &l->timeout), 0);
		first_slot = l->n;
		for (int i = 0; i < u->nslots; i++) {
			if (u->slots[i].ctl_fd < 0)
				continue;
			loop_add(l, (struct pollfd){ .fd = u->slots[i].ctl_fd, .events = POLLIN }, TAG(i, 0));
			if (u->slots[i].host_fd >= 0)
				loop_add(l, (struct pollfd){ .fd = u->slots[i].host_fd, .events = POLLIN }, TAG(i, TAG_HOST));
		}
		switch (loop_wait(l)) {
		case LOOP_AGAIN:
			continue;
		case LOOP_END:
			withdraw(u);
			return USER_END_TEARDOWN;
		case LOOP_READY:
			break;
		}
		/* First in each round, before joins are answered: a mount that
		 * woke us is detached before anyone new enters. */
		loop_shared(l);
		/* Sessions leave before anyone new is accepted, so a leave that
		 * empties the namespace withdraws the queued connections too. */
		for (int k = first_slot; k < l->n && !end; k++) {
			int i = l->tag[k] >> 1, is_host = l->tag[k] & TAG_HOST;
			enum verdict v;

			/* Skip a slot that a message earlier in this round freed. */
			if (!l->pfd[k].revents || l->pfd[k].fd != (is_host ? u->slots[i].host_fd : u->slots[i].ctl_fd))
				continue;
			v = is_host ? LEAVE : slot_read(u, i);
			if (v == STOP) {
				end = 1; /* its connection closes when we exit */
				break;
			}
			if (v != LEAVE && v != CLOSE)
				continue;
			if (sessions(u) == 1 && !u->linger) {
				/* The last one: its connection stays open, and its
				 * pam_close_session waits, until we have exited. */
				end = 1;
				break;
			}
			if (v == CLOSE) {
				struct nsinit_msg left = { .type = NSINIT_MSG_LEFT };

				(void)send_msg(u->slots[i].ctl_fd, &left, -1);
			}
			slot_free(u, i);
		}
		if (end) {
			withdraw(u);
			return USER_END_TEARDOWN;
		}
		if (sessions(u) == 0 && u->linger && !namespace_busy()) {
			withdraw(u);
			return USER_END_EMPTY;
		}
		if (i_listen >= 0 && u->listen_fd >= 0 && (l->pfd[i_listen].revents & POLLIN))
			accept_one(u);
	}
}
