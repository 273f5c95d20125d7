/*
 * pam_unshare-init - PID 1 of an isolated PAM session.
 *
 * The host side (nsinit.Enter, in ../nsinit.go) unshares the PID and mount
 * namespaces on the thread that runs pam_open_session and spawns this
 * program, which thereby becomes PID 1 of the new PID namespace and shares
 * the new mount namespace with the host thread. This program then:
 *
 *   0. makes its real, effective and saved user and group ids root, so the
 *      user who ran a setuid su cannot signal it;
 *   1. makes / a slave (or private) mount, so nothing below propagates back
 *      to the host, and replaces /proc with one that belongs to the new
 *      PID namespace;
 *   2. detaches every other proc mount that shows another PID namespace (a
 *      host /proc bound into a chroot, a second procfs of the host);
 *   3. with -u, covers the user manager's socket with a relay (relay.c),
 *      before READY, so the session's first command can already use it;
 *   3a. tells the host "ready" over the control socket, so the session never
 *      starts with an empty or foreign /proc;
 *   4. sleeps in poll() until the session ends, reaping every orphan that
 *      the kernel reparents to it ("someone has to reap zombies"), and
 *      detaching foreign proc mounts that appear later (see "Other proc
 *      mounts" below);
 *   5. tears the namespace down: SIGTERM and SIGHUP to everything, a grace
 *      period, and exit, upon which the kernel SIGKILLs whatever is left.
 *
 * Why C and not Go: PID 1 must be single-threaded. Each thread of PID 1 takes
 * a PID number in the namespace, and a Go program has several threads, which
 * would push the session leader off PID 2.
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
 *     namespace).
 *
 * A PID 2 that is missing while the host lives is never taken as "came and
 * went": /proc/sys/kernel/ns_last_pid shows 2 as soon as the number is
 * reserved, before the process can be found, so "last PID >= 2 but no
 * PID 2" also describes a fork in flight. Ending the namespace then makes
 * that fork fail with ENOMEM (seen with 20 parallel su on a 2-core guest).
 * A PID 2 that came and went while the host lives is ended by the host's
 * pam_close_session, or by its exit.
 *   - SIGTERM, SIGINT or SIGHUP, e.g. from an admin on the host.
 * Once PID 2 is found the program makes no wakeups while the session idles.
 *
 * Kernels without pidfd_open (before 5.3), or -P, use a polling fallback:
 * PID 2 and the host are checked once a second.
 *
 * Other proc mounts. Our mount namespace starts as a copy of the host's, and
 * as a slave it keeps receiving the host's new mounts, so a /proc that root
 * binds into a chroot shows up here too, before or after login. Any procfs
 * but one of our own PID namespace lists processes the session must not
 * see. A proc mount is the session's own when it is a bind of our /proc
 * (same device), or when it is a whole procfs in which "self" is 1: only in
 * a procfs of our PID namespace are we PID 1 (in the host's, self is our
 * host PID; in any other namespace's it does not resolve). Only root can
 * mount in this namespace, so a procfs that root mounts from inside the
 * session stays. Every other proc mount is detached (MNT_DETACH, which takes
 * its submounts along) in our namespace only; the host keeps it. The watch
 * is poll() on /proc/self/mountinfo, which reports POLLPRI only when the
 * mount table changes, so it costs no wakeups while the session idles.
 *
 * Usage (always started by nsinit, never by hand):
 *   pam_unshare-init [-g GRACE_MS] [-m slave|private] [-P] [-u UID:GID]
 *                    [-U [-L] [-H HOST_PID]] SERVICE USER
 * GRACE_MS is a whole number of milliseconds (default 1000); anything else
 * is a usage error. SERVICE and USER only label the process for ps(1) and
 * pam-unshare status.
 * -U is per-user mode (scope=user): the namespace serves every session of
 * USER, which join it through NSINIT_FD_LISTEN; its loop is in user.c, not
 * serve() below. -L (linger) keeps it alive after the last session while
 * processes remain. -H is the first host's PID, for status.
 * -u relays the systemd user manager of UID into the session, as UID:GID,
 * so that systemctl --user works there (relay.c).
 *
 * Contract of the small functions below: return 0 on success, or -1 with
 * errno set. Setup failures are sent to the host, which logs them; after
 * setup, unexpected failures go to syslog.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../handshake.h"
#include "init.h"

#define BACKOFF_FIRST_MS 1
#define BACKOFF_MAX_MS 5000
#define FALLBACK_POLL_MS 1000
/* How often teardown checks whether the namespace is empty yet. */
#define TEARDOWN_TICK_MS 10
/* The largest -g accepted: a sanity bound only. The module's own limit is
 * options.MaxGrace (pam_unshare/options/options.go), 60 s. */
#define GRACE_MAX_MS (24L * 3600 * 1000)
/* Mounts stacked at /proc that setup detaches before it gives up. */
#define PROC_LAYERS_MAX 16
/* Passes over the mount table before a sweep gives up: each pass detaches
 * what it finds, and the next one checks that nothing is left (a detach can
 * uncover a proc mount below it; a path can change under us). */
#define SWEEP_PASSES 16
/* After a failed sweep, retry after this long, doubling up to the maximum,
 * until one succeeds. */
#define SWEEP_RETRY_FIRST_MS 10
#define SWEEP_RETRY_MAX_MS 10000
/* The longest mount table line we can read. The kernel writes each path up
 * to PATH_MAX, and escapes space, tab, newline and backslash as \ooo. */
#define MOUNTINFO_LINE_MAX (4 * PATH_MAX + 1024)
/* Lines up to this long are read into a buffer on the stack: a typical
 * line is 100 to 200 bytes, and a static buffer would cost every helper a
 * page of memory. A longer line moves the pass to a buffer mapped for it. */
#define MOUNTINFO_LINE_SHORT 1024
/* Bytes per read of the table: half the short buffer, so that a partial
 * line and the next read fit in it. */
#define MOUNTINFO_READ (MOUNTINFO_LINE_SHORT / 2)

/* What the session leader (PID 2) is doing, as far as we know. */
enum leader_state {
	LEADER_NOT_FOUND, /* not created yet, or came and went */
	LEADER_ALIVE,     /* found running; watched from now on */
};

struct init {
	long grace_ms;
	int per_user;              /* -U: user.c serves the namespace */
	int linger;                /* -L */
	long host_pid;             /* -H, for status */
	unsigned long propagation; /* MS_SLAVE or MS_PRIVATE */
	int use_pidfd;             /* 0 with -P or when the kernel lacks it */
	int sig_fd;                /* signalfd */
	int host_fd;               /* pidfd of the host process, or -1 */
	int control_fd;            /* NSINIT_FD_CONTROL, or -1 after end-of-file */
	int host_alive;            /* 0 once the host process has exited */
	int leader_fd;             /* pidfd of PID 2, or -1 */
	enum leader_state leader;
	long backoff_ms;
	const char *service;       /* SERVICE, for status */
	struct proc_watch procs;   /* proc mounts of other PID namespaces */
	struct relay relay;        /* -u: the user manager's relay (relay.c) */
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Report a setup failure to the host. Best effort: if the host is gone
 * there is nobody to tell. */
static void report_failure(int step, int err)
{
	struct nsinit_msg msg = { .type = NSINIT_MSG_FAILED, .step = (unsigned char)step, .version = NSINIT_PROTO_VERSION, .err = err };

	(void)send(NSINIT_FD_CONTROL, &msg, sizeof(msg), MSG_NOSIGNAL);
}

static int report_ready(void)
{
	struct nsinit_msg msg = { .type = NSINIT_MSG_READY, .version = NSINIT_PROTO_VERSION };

	return send(NSINIT_FD_CONTROL, &msg, sizeof(msg), MSG_NOSIGNAL) == sizeof(msg) ? 0 : -1;
}

/*
 * Keep only our own descriptors: stdin, stdout and stderr go to /dev/null
 * (they were the host's terminal or the sshd socket), and everything above
 * NSINIT_FD_HOST is closed. Returns 0, or -1 with errno set.
 */
static int fds_sanitize(int keep_host_fd, int keep_listen_fd)
{
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int first_closed = keep_listen_fd ? NSINIT_FD_LISTEN + 1 : keep_host_fd ? NSINIT_FD_HOST + 1 : NSINIT_FD_HOST;

	if (null_fd < 0)
		return -1;
	for (int fd = 0; fd <= 2; fd++)
		if (dup2(null_fd, fd) < 0)
			return -1;
	if (null_fd > 2)
		close(null_fd);
	close_from(first_closed);
	return 0;
}

int accept_from(int listen_fd, uid_t uid)
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

/*
 * Raise our soft descriptor limit to the hard one. We inherit the host's
 * (sshd's soft limit is 1024), and a per-user helper holds two descriptors
 * per session; the hard limit is what root allowed the host anyway. Best
 * effort: a helper that cannot raise it still works, up to the lower limit,
 * and pauses its listeners when it runs out (listen_failed).
 */
static void nofile_raise(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &lim);
	}
}

/*
 * Make every user and group id root and drop supplementary groups. Under a
 * setuid host (su, sudo) we start with the invoking user's real uid, and
 * kill(2) lets a user signal any process whose real or saved uid is
 * theirs: that user could stop or kill the PID 1 of their own session from
 * outside. With all ids root only root can.
 * Returns 0, or -1 with errno set.
 */
static int creds_root(void)
{
	if (setgroups(0, NULL) < 0)
		return -1;
	if (setresgid(0, 0, 0) < 0)
		return -1;
	return setresuid(0, 0, 0);
}

/* Make our copy of the mount tree stop propagating to the host, then put a
 * /proc of the new PID namespace in place. The host's /proc is detached only
 * in our mount namespace; MNT_DETACH also takes submounts such as
 * binfmt_misc, which would make a plain umount fail with EBUSY.
 * Returns 0, or -1 with errno set and *step naming the failed step. */
static int mounts_setup(unsigned long propagation, int *step)
{
	*step = NSINIT_STEP_PROPAGATION;
	if (mount(NULL, "/", NULL, MS_REC | propagation, NULL) < 0)
		return -1;
	*step = NSINIT_STEP_UMOUNT_PROC;
	/* Until EINVAL: /proc is no longer a mount point (or never was, e.g.
	 * in a bare chroot). Procfs mounted over procfs (unshare --mount-proc
	 * does that) goes one layer at a time; a lower one left below ours
	 * would be a foreign procfs that no path reaches, and the sweep
	 * could not detach it. */
	for (int layer = 0; umount2("/proc", MNT_DETACH) == 0; layer++)
		if (layer == PROC_LAYERS_MAX) {
			errno = EBUSY;
			return -1;
		}
	if (errno != EINVAL)
		return -1;
	*step = NSINIT_STEP_MOUNT_PROC;
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	return 0;
}

/* ---- other proc mounts (see the header comment) ------------------------ */

/* The fields of one /proc/self/mountinfo line that the sweep uses. The
 * strings point into the line. */
struct mount_entry {
	unsigned long long id; /* mount ID, as statx reports it */
	dev_t dev;             /* the filesystem's device */
	char *root;            /* the directory of the filesystem mounted here */
	char *mount_point;
	char *fstype;
};

/* Undo mountinfo's escapes in place: the kernel writes space, tab, newline
 * and backslash in paths as a backslash and three octal digits. */
static void mountinfo_unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* Split one mountinfo line (proc(5)):
 *   ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
 * Returns 0, or -1 for a line of another shape. */
static int mountinfo_parse(char *line, struct mount_entry *e)
{
	char *field[6], *rest = line, *tok, *end;
	unsigned long major, minor;

	for (int i = 0; i < 6; i++) {
		field[i] = strsep(&rest, " ");
		if (rest == NULL)
			return -1;
	}
	while ((tok = strsep(&rest, " ")) != NULL && strcmp(tok, "-") != 0)
		; /* optional fields such as shared:N and master:N */
	if (tok == NULL || rest == NULL)
		return -1;
	e->fstype = strsep(&rest, " ");
	e->id = strtoull(field[0], &end, 10);
	if (*end != '\0')
		return -1;
	major = strtoul(field[2], &end, 10);
	if (*end != ':')
		return -1;
	minor = strtoul(end + 1, &end, 10);
	if (*end != '\0')
		return -1;
	e->dev = makedev(major, minor);
	e->root = field[3];
	e->mount_point = field[4];
	mountinfo_unescape(e->root);
	mountinfo_unescape(e->mount_point);
	return 0;
}

/* The start of the kernel's struct statx, up to stx_mnt_id (linux/stat.h;
 * musl ships no kernel headers, and glibc's struct statx has the same
 * name). */
struct statx_mnt_id {
	uint32_t mask;
	uint32_t before_mnt_id[35];
	uint64_t mnt_id;
	uint64_t after_mnt_id[13];
};
_Static_assert(sizeof(struct statx_mnt_id) == 256, "struct statx is 256 bytes");
#define STATX_MNT_ID_BIT 0x1000U

/* Whether `fd` is the mount `e`, and not something a rename or another
 * mount put at its path since we read the table. */
static int mount_is(int fd, const struct mount_entry *e)
{
	struct statx_mnt_id sx;
	struct stat sb;

	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_MNT_ID_BIT, &sx) == 0 && (sx.mask & STATX_MNT_ID_BIT))
		return sx.mnt_id == e->id;
	/* Before Linux 5.8: the right filesystem is all we can check. */
	return fstat(fd, &sb) == 0 && sb.st_dev == e->dev;
}

/* open_how of openat2(2), as in linux/openat2.h. */
struct open_how_v0 {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};
#define RESOLVE_NO_SYMLINKS_BIT 0x04U

/* Open the root of mount `e` as an O_PATH descriptor, following no symlink
 * on the way (the path may run through directories a user owns). Returns
 * the descriptor, or -1 with errno set (EBUSY: another mount is at that
 * path now). */
static int mount_open(const struct mount_entry *e)
{
	struct open_how_v0 how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS_BIT,
	};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, e->mount_point, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* before Linux 5.6 */
		fd = open(e->mount_point, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!mount_is(fd, e)) {
		close(fd);
		errno = EBUSY;
		return -1;
	}
	return fd;
}

/* Whether the procfs whose root is `fd` belongs to our PID namespace: only
 * there are we PID 1, so only there does "self" read "1". */
static int procfs_is_ours(int fd)
{
	char self[16];
	ssize_t n = readlinkat(fd, "self", self, sizeof(self));

	return n == 1 && self[0] == '1';
}

/* Detach the mount whose root `fd` is, with everything mounted below it,
 * from our mount namespace only (/ is a slave or private, so nothing
 * propagates back). Returns 0, or -1 with errno set. */
static int mount_detach(int fd)
{
	int rc, err;

	/* umount2 takes a path; "." after fchdir is the mount `fd` is. */
	if (fchdir(fd) < 0)
		return -1;
	rc = umount2(".", MNT_DETACH);
	err = errno;
	if (chdir("/") < 0) {
		/* not fatal: we only hold the directory busy */
	}
	errno = err;
	return rc;
}

/* Look at one mount table line; detach it if it is a foreign proc mount.
 * Returns 1 if it was one (detached or not; *err gets the errno of a
 * failure), else 0. */
static int sweep_line(const struct proc_watch *w, char *line, int *err)
{
	struct mount_entry e;
	int fd;

	if (mountinfo_parse(line, &e) < 0 || strcmp(e.fstype, "proc") != 0)
		return 0;
	if (e.dev == w->proc_dev)
		return 0; /* our /proc, or a bind of it */
	fd = mount_open(&e);
	if (fd < 0) {
		*err = errno;
		return 1;
	}
	if (strcmp(e.root, "/") == 0 && procfs_is_ours(fd)) {
		close(fd);
		return 0; /* a procfs of our PID namespace, mounted by root */
	}
	if (mount_detach(fd) < 0)
		*err = errno;
	close(fd);
	return 1;
}

/* Read the mount table from where it is, into `buf` of `size` bytes, and
 * sweep each line. Returns the number of foreign proc mounts met, -1 with
 * errno set if the table cannot be read, or -2 for a line longer than
 * `size` (the lines before it have been swept: sweeping is idempotent). */
static int sweep_read(const struct proc_watch *w, char *buf, size_t size, int *err)
{
	size_t len = 0;
	int found = 0;

	for (;;) {
		size_t room = size - len;
		ssize_t n;
		char *line, *nl;

		if (room == 0)
			return -2;
		n = read(w->mounts_fd, buf + len, room < MOUNTINFO_READ ? room : MOUNTINFO_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return found;
		len += (size_t)n;
		line = buf;
		while ((nl = memchr(line, '\n', len - (size_t)(line - buf))) != NULL) {
			*nl = '\0';
			found += sweep_line(w, line, err);
			line = nl + 1;
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
	}
}

/* One pass over the mount table. Returns how many foreign proc mounts it
 * met (*err: errno of the last one it could not detach), or -1 with errno
 * set if the table cannot be read. */
static int sweep_pass(const struct proc_watch *w, int *err)
{
	char short_buf[MOUNTINFO_LINE_SHORT];
	int found;

	if (lseek(w->mounts_fd, 0, SEEK_SET) < 0)
		return -1;
	found = sweep_read(w, short_buf, sizeof(short_buf), err);
	if (found == -2) { /* a long line: again, with room for any line */
		char *long_buf = mmap(NULL, MOUNTINFO_LINE_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (long_buf == MAP_FAILED)
			return -1;
		found = lseek(w->mounts_fd, 0, SEEK_SET) < 0 ? -1 : sweep_read(w, long_buf, MOUNTINFO_LINE_MAX, err);
		if (found == -2) {
			found = -1;
			errno = ENAMETOOLONG; /* a line longer than any path pair */
		}
		munmap(long_buf, MOUNTINFO_LINE_MAX);
	}
	return found;
}

/* Detach every proc mount in our namespace that is not a view of our PID
 * namespace, and check that none is left. Returns 0, or -1 with errno set. */
static int proc_mounts_sweep(const struct proc_watch *w)
{
	int err = EBUSY;

	for (int pass = 0; pass < SWEEP_PASSES; pass++) {
		int found = sweep_pass(w, &err);

		if (found <= 0)
			return found;
	}
	errno = err;
	return -1;
}

/* Remember which procfs is our /proc, open the mount table to watch, and
 * sweep it once. Returns 0, or -1 with errno set. */
static int proc_watch_start(struct proc_watch *w)
{
	struct stat sb;

	if (stat("/proc", &sb) < 0)
		return -1;
	w->proc_dev = sb.st_dev;
	w->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (w->mounts_fd < 0)
		return -1;
	return proc_mounts_sweep(w);
}

struct pollfd proc_watch_pollfd(const struct proc_watch *w, int *timeout)
{
	if (w->retry_ms > 0 && (*timeout < 0 || w->retry_ms < *timeout))
		*timeout = (int)w->retry_ms;
	/* mountinfo is always readable; a change shows as POLLPRI|POLLERR. */
	return (struct pollfd){ .fd = w->mounts_fd, .events = POLLPRI };
}

/* After setup nobody waits for our answer, so a failed sweep goes to
 * syslog (once per run of failures) and is retried with a backoff until
 * one succeeds. */
void proc_watch_check(struct proc_watch *w, short revents)
{
	if (!(revents & (POLLPRI | POLLERR)) && w->retry_ms == 0)
		return;
	if (proc_mounts_sweep(w) == 0) {
		w->retry_ms = 0;
		return;
	}
	if (w->retry_ms == 0)
		syslog(LOG_ERR, "cannot detach a proc mount of another PID namespace: %m; retrying");
	if (w->retry_ms < SWEEP_RETRY_FIRST_MS)
		w->retry_ms = SWEEP_RETRY_FIRST_MS;
	else if (w->retry_ms < SWEEP_RETRY_MAX_MS)
		w->retry_ms *= 2;
}

/* Route the signals we act on to a signalfd. Blocked signals are delivered
 * to PID 1 even from the host; all others are dropped by the kernel, so a
 * stray SIGINT from the terminal cannot kill the namespace.
 * Returns the signalfd, or -1 with errno set. */
static int signals_setup(void)
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

/* Reap every child that has exited: orphans the kernel reparented to us,
 * and relay children, whose slots free. */
void reap_children(struct relay *r)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		relay_reaped(r, pid);
}

/* Where the processes of our namespace are listed once mounts_setup has
 * run. A variable only so that the unit tests can point it at fixtures. */
static const char *proc_dir = "/proc";

/* Whether process `pid` of our namespace is running: 1 yes, 0 no (absent,
 * or dead and only not yet reaped: a zombie). */
static int pid_running(long pid)
{
	char path[PATH_MAX], buf[256];
	char *paren;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%ld/stat", proc_dir, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The state follows the command name, which may itself hold ')'. */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* Look for the session leader and start watching it if it runs. */
static void leader_check(struct init *st)
{
	if (st->use_pidfd) {
		int fd = sys_pidfd_open(2);

		if (fd >= 0) {
			st->leader_fd = fd;
			st->leader = LEADER_ALIVE;
		}
	} else if (pid_running(2)) {
		st->leader = LEADER_ALIVE;
	}
}

/* Whether any process other than us is still running in the namespace.
 * Zombies do not count (for PID 2 the parent that must reap it is the host,
 * outside the namespace). */
int namespace_busy(void)
{
	DIR *proc = opendir(proc_dir);
	struct dirent *de;
	int busy = 0;

	if (!proc)
		return 0;
	while (!busy && (de = readdir(proc)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end == '\0' && pid > 1)
			busy = pid_running(pid);
	}
	closedir(proc);
	return busy;
}

/* Drain the signalfd. Returns 1 if a termination signal was among them. */
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

/*
 * End the namespace: SIGTERM and SIGHUP (and SIGCONT, for stopped
 * processes) to every process in it, then wait up to grace_ms for them to
 * go. Returning lets main exit, and the kernel SIGKILLs whatever is left.
 *
 * SIGHUP as well, as systemd-nspawn's stub PID 1 sends it: interactive
 * shells ignore SIGTERM but on SIGHUP save their history and exit, and so
 * do editors with their buffers, where SIGKILL at the end of the grace
 * period would lose them.
 */
static void teardown(struct init *st)
{
	long deadline = now_ms() + st->grace_ms;

	/* kill(-1) from PID 1 reaches everything in the namespace but us. */
	kill(-1, SIGTERM);
	kill(-1, SIGHUP);
	kill(-1, SIGCONT);
	for (;;) {
		struct pollfd pfd = { .fd = st->sig_fd, .events = POLLIN };
		long left;

		reap_children(&st->relay);
		if (!namespace_busy())
			return;
		left = deadline - now_ms();
		if (left <= 0)
			return;
		if (poll(&pfd, 1, left < TEARDOWN_TICK_MS ? (int)left : TEARDOWN_TICK_MS) > 0)
			(void)signals_drain(st->sig_fd, &st->relay);
	}
}

/* The host process exited. PID 2 may still run (an orphaned shell after
 * kill -9 of su) and the session lives on until it ends; if PID 2 never
 * appeared, nobody can start it now, and serve() ends the session. */
static void host_gone(struct init *st)
{
	if (st->host_fd >= 0)
		close(st->host_fd);
	st->host_fd = -1;
	st->host_alive = 0;
}

/* Read one message from the host. Returns 1 for NSINIT_MSG_TERMINATE.
 * End-of-file means every copy of the host's end is closed: the host has
 * exited (its end is close-on-exec, so the session's programs do not hold
 * it), which is host_gone, not a request to end. */
static int control_says_end(struct init *st)
{
	struct nsinit_msg msg;
	ssize_t n = recv(st->control_fd, &msg, sizeof(msg), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == (ssize_t)sizeof(msg))
		return msg.type == NSINIT_MSG_TERMINATE;
	close(st->control_fd);
	st->control_fd = -1;
	host_gone(st);
	return 0;
}

/* Wait for the end of the session. Returns when the namespace must go. */
static void serve(struct init *st)
{
	for (;;) {
		struct pollfd pfd[7];
		int n = 0, timeout, i_sig, i_ctl, i_host = -1, i_leader = -1, i_mounts, i_relay;

		if (st->leader == LEADER_NOT_FOUND)
			leader_check(st);
		if (st->leader == LEADER_NOT_FOUND && !st->host_alive)
			return; /* nobody can start the session now */

		i_sig = n;
		pfd[n++] = (struct pollfd){ .fd = st->sig_fd, .events = POLLIN };
		i_ctl = -1;
		if (st->control_fd >= 0) {
			i_ctl = n;
			pfd[n++] = (struct pollfd){ .fd = st->control_fd, .events = POLLIN };
		}
		if (st->host_fd >= 0) {
			i_host = n;
			pfd[n++] = (struct pollfd){ .fd = st->host_fd, .events = POLLIN };
		}
		if (st->leader_fd >= 0) {
			i_leader = n;
			pfd[n++] = (struct pollfd){ .fd = st->leader_fd, .events = POLLIN };
		}

		if (!st->use_pidfd) {
			timeout = FALLBACK_POLL_MS;
		} else if (st->leader == LEADER_NOT_FOUND) {
			timeout = (int)st->backoff_ms;
			if (st->backoff_ms < BACKOFF_MAX_MS)
				st->backoff_ms *= 2;
		} else {
			timeout = -1;
		}
		i_mounts = n;
		pfd[n++] = proc_watch_pollfd(&st->procs, &timeout);
		/* Accept only once the session runs: a child forked earlier
		 * would take PID 2 from the session leader. */
		i_relay = n;
		pfd[n++] = relay_listen_pollfd(&st->relay, st->leader == LEADER_ALIVE, &timeout);
		pfd[n++] = relay_watch_pollfd(&st->relay);

		if (poll(pfd, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			syslog(LOG_ERR, "poll: %m; ending the session");
			return;
		}
		if ((pfd[i_sig].revents & POLLIN) && signals_drain(st->sig_fd, &st->relay))
			return;
		if (i_ctl >= 0 && pfd[i_ctl].revents && control_says_end(st))
			return;
		if (i_host >= 0 && pfd[i_host].revents)
			host_gone(st);
		proc_watch_check(&st->procs, pfd[i_mounts].revents);
		if (pfd[i_mounts].revents & (POLLPRI | POLLERR))
			relay_refresh(&st->relay);
		relay_check(&st->relay, pfd[i_relay].revents, pfd[i_relay + 1].revents);
		if (i_leader >= 0 && pfd[i_leader].revents)
			return;
		if (!st->use_pidfd && st->leader == LEADER_ALIVE && !pid_running(2))
			return;
	}
}

/* Parse -g: a whole decimal number of milliseconds, 0 to GRACE_MAX_MS,
 * and nothing else (no sign, no trailing text, no overflow).
 * Returns 0, or -1 with errno set to EINVAL. */
static int parse_grace(const char *arg, long *grace_ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v > GRACE_MAX_MS) {
		errno = EINVAL;
		return -1;
	}
	*grace_ms = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct init *st)
{
	int opt;

	while ((opt = getopt(argc, argv, "g:m:Pu:ULH:")) != -1) {
		switch (opt) {
		case 'g':
			if (parse_grace(optarg, &st->grace_ms) < 0)
				return -1;
			break;
		case 'm':
			if (strcmp(optarg, "slave") == 0)
				st->propagation = MS_SLAVE;
			else if (strcmp(optarg, "private") == 0)
				st->propagation = MS_PRIVATE;
			else
				return -1;
			break;
		case 'P':
			st->use_pidfd = 0;
			break;
		case 'u':
			if (relay_parse(optarg, &st->relay) < 0)
				return -1;
			break;
		case 'U':
			st->per_user = 1;
			break;
		case 'L':
			st->linger = 1;
			break;
		case 'H':
			st->host_pid = strtol(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	/* Linger only means something for a namespace that outlives a session;
	 * per-user mode needs pidfds to watch its hosts. */
	if (st->linger && !st->per_user)
		return -1;
	if (st->per_user && !st->use_pidfd)
		return -1;
	/* SERVICE and USER: labels only. */
	if (argc - optind != 2)
		return -1;
	st->service = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct init st = {
		.grace_ms = 1000,
		.propagation = MS_SLAVE,
		.use_pidfd = 1,
		.host_fd = -1,
		.control_fd = NSINIT_FD_CONTROL,
		.host_alive = 1,
		.leader_fd = -1,
		.leader = LEADER_NOT_FOUND,
		.backoff_ms = BACKOFF_FIRST_MS,
		.procs = { .mounts_fd = -1 },
	};
	int step;

	/* NSINIT_FD_HOST is present only if the host could make a pidfd. */
	int have_host_fd = fcntl(NSINIT_FD_HOST, F_GETFD) >= 0;

	/* Arguments first: they say whether NSINIT_FD_LISTEN is ours. */
	if (parse_args(argc, argv, &st) < 0) {
		report_failure(NSINIT_STEP_USAGE, EINVAL);
		return 1;
	}
	if (st.per_user && (!have_host_fd || fcntl(NSINIT_FD_LISTEN, F_GETFD) < 0)) {
		report_failure(NSINIT_STEP_USAGE, EBADF);
		return 1;
	}
	if (fds_sanitize(have_host_fd, st.per_user) < 0) {
		report_failure(NSINIT_STEP_USAGE, errno);
		return 1;
	}
	if (creds_root() < 0) {
		report_failure(NSINIT_STEP_CREDENTIALS, errno);
		return 1;
	}
	if (getpid() != 1) {
		report_failure(NSINIT_STEP_NOT_PID1, EINVAL);
		return 1;
	}
	if (have_host_fd)
		st.host_fd = NSINIT_FD_HOST;
	else
		st.use_pidfd = 0;
	if (!st.use_pidfd && have_host_fd) {
		close(NSINIT_FD_HOST); /* -P: behave as if the kernel had no pidfds */
		st.host_fd = -1;
	}

	(void)prctl(PR_SET_NAME, NSINIT_HELPER_COMM, 0, 0, 0);
	/* Leave the host's session and terminal, and its working directory. */
	(void)setsid();
	if (chdir("/") < 0) {
		/* not fatal: we only hold the directory busy */
	}
	/* Connected now (LOG_NDELAY), not at the first line: a helper out of
	 * descriptors must still be able to say so. */
	openlog("pam_unshare-init", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
	nofile_raise();

	if (mounts_setup(st.propagation, &step) < 0) {
		report_failure(step, errno);
		return 1;
	}
	/* Before READY: the session never starts with a foreign procfs. */
	if (proc_watch_start(&st.procs) < 0) {
		report_failure(NSINIT_STEP_PROC_MOUNTS, errno);
		return 1;
	}
	/* Before READY too, so that the session's first command can already
	 * use systemctl --user. A failure is logged and not fatal. */
	(void)relay_start(&st.relay);
	st.sig_fd = signals_setup();
	if (st.sig_fd < 0) {
		report_failure(NSINIT_STEP_SIGNALS, errno);
		return 1;
	}
	if (st.per_user) {
		/* Static: zeroed without touching its pages, which stay unmapped
		 * until slots are used. */
		static struct user_ns u;

		u.sig_fd = st.sig_fd;
		u.linger = st.linger;
		u.first_host_pid = st.host_pid;
		u.first_service = st.service;
		u.procs = &st.procs;
		u.relay = &st.relay;
		if (user_setup(&u) < 0) {
			report_failure(NSINIT_STEP_PIDFD, errno); /* or listen() */
			return 1;
		}
		if (report_ready() < 0)
			return 1; /* the host gave up waiting; end quietly */
		if (user_serve(&u) == USER_END_TEARDOWN)
			teardown(&st);
		return 0;
	}
	if (report_ready() < 0)
		return 1; /* the host gave up waiting; end quietly */

	serve(&st);
	teardown(&st);
	return 0;
}
