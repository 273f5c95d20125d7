/*
 * relay.c - lets `systemctl --user` reach the user's systemd manager from
 * inside the session (-u UID:GID; module option user_manager=relay).
 *
 * Why. systemctl --user (and systemd-run --user, systemd-analyze --user)
 * connects straight to the manager's socket $XDG_RUNTIME_DIR/systemd/private
 * and checks the peer with SO_PEERCRED. The kernel reports the PID of a
 * peer outside the reader's PID namespace as 0, which systemd's
 * getpeercred() turns into ENODATA: "Failed to connect to bus: No data
 * available". The user manager runs outside every session (user@UID.service),
 * so without help the tools fail in every isolated session. Hiding the
 * socket would make them fall back to the user bus, but that bus exists only
 * with dbus-user-session; a relay works either way.
 *
 * How. We (PID 1 of the session) listen on a socket of our own, which
 * lives on a small tmpfs in a mount namespace no process is in (the stash,
 * see relay_make_socket) and is made only once there is a manager's socket
 * to cover, and
 * bind-mount it over /run/user/UID/systemd/private in the session's mount
 * namespace only: the host and other sessions keep seeing the manager's
 * own socket. A client connecting there sees us as its peer, PID 1 and
 * uid 0, which systemd accepts. For every connection whose peer is the
 * session's user we fork a child that drops to the user's uid and gid (it
 * could do nothing the user cannot), connects to the manager's socket
 * through the descriptor we kept of it before covering it, and copies bytes
 * and passed descriptors both ways until both sides have closed. The
 * manager thus sees a connection of the user's own, and systemd's SASL
 * EXTERNAL check (the uid the client claims must equal the connection's)
 * holds. The child's name is RELAY_COMM; it lives only as long as its
 * connection and is ended with the namespace like every other process.
 *
 * When. The socket may not exist when the session opens (the manager is
 * still starting, or the user has none yet), and it is replaced when the
 * manager restarts: the unlink detaches our cover in every namespace. So
 * relay_refresh looks again whenever our mount table changes, whenever a
 * login joins a per-user namespace, and, only while it waits for the
 * socket inside an existing /run/user/UID, on inotify events of the
 * directory it waits in (one inotify instance, made the first time there
 * is something to wait for). Once the socket is covered nothing is watched
 * but the mount table, so an idle session makes no wakeups.
 *
 * Trust. /run/user/UID belongs to the user, who can replace anything in
 * it at any time. Each step opens one component with O_NOFOLLOW, checks
 * that it belongs to the user, and works on the descriptor: the cover can
 * only ever land on a socket of the user's inside their own runtime
 * directory, in their own session. No step asks a file system anything
 * before it is known to be the tmpfs of the runtime directory (stat_cached,
 * mount_is_tmpfs): a FUSE file system the user mounted there could keep us
 * waiting for ever. Our socket is the user's, mode 0600,
 * and we also refuse every peer whose uid is not the user's. The relay
 * child connects as the user, so a socket the user planted instead of the
 * manager's gains them nothing.
 *
 * Failures never end the session: isolation does not depend on the relay.
 * They go to syslog, once, and systemctl --user then fails as it would
 * without the relay.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "init.h"

/* open_tree and move_mount (Linux 5.2); musl's headers lack the
 * constants. The values are the kernel's (include/uapi/linux/mount.h). */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x40
#endif

/* Where logind puts a user's runtime directory ($XDG_RUNTIME_DIR), and
 * where in it the manager listens. */
#define RUNTIME_DIR_FMT "/run/user/%u"
#define MANAGER_DIR "systemd"
#define MANAGER_SOCKET "private"
/* Where the stash's tmpfs is mounted before it becomes the stash's root,
 * and where our socket lives then (see relay_make_socket). */
#define STASH_MOUNT "/proc"
#define STASH_SOCKET "/manager"
/* Connections waiting for accept. systemctl opens one at a time. */
#define RELAY_BACKLOG 16
/* Bytes per copy, and the most descriptors one message may pass (the
 * kernel's SCM_MAX_FD). */
#define RELAY_CHUNK 65536
#define RELAY_FDS_MAX 253
/* Where the relay child keeps its two descriptors. */
#define CHILD_FD_CLIENT 3
#define CHILD_FD_MANAGER 4

static int sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}
static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

/* Switch this (single-threaded) process to the mount namespace `ns_fd`.
 * Returns 0, or -1 with errno set. */
static int enter_mnt_ns(int ns_fd)
{
	if (setns(ns_fd, CLONE_NEWNS) < 0)
		return -1;
	/* setns moved us to that namespace's root; keep no directory busy. */
	return chdir("/");
}

/* Create our listening socket, the user's and mode 0600, at STASH_SOCKET
 * of the current mount namespace. Returns 0, or -1 with errno set. */
static int relay_listen(struct relay *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	r->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r->listen_fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", STASH_SOCKET);
	if (bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (chown(STASH_SOCKET, r->uid, r->gid) < 0 || chmod(STASH_SOCKET, 0600) < 0)
		return -1;
	if (stat(STASH_SOCKET, &st) < 0)
		return -1;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return listen(r->listen_fd, RELAY_BACKLOG);
}

/*
 * Make our socket in a mount namespace of its own, the stash, that no
 * process is in (r->stash_fd keeps it): a private copy of ours, reduced to
 * one small tmpfs that holds the socket. cover() clones the socket's mount
 * from there: open_tree(OPEN_TREE_CLONE) needs a mount of the caller's own
 * namespace (before Linux 6.15 it refuses a detached one, such as a tmpfs
 * from fsmount: EINVAL on Debian 12's 6.1), and the stash lets us clone
 * without mounting anything where the session could see it.
 * Reduced, because a private copy would keep every filesystem the host had
 * mounted at that moment busy until the session ends (it gets none of the
 * host's unmounts): the tmpfs becomes the stash's root (pivot_root into
 * itself) and the old tree is detached. Our own /proc, which every session
 * has, is where the tmpfs goes before it becomes the root.
 * Returns 0 (back in our namespace), or -1 with errno set.
 */
static int relay_make_socket(struct relay *r)
{
	int err = 0;

	r->home_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (r->home_fd < 0)
		return -1;
	if (unshare(CLONE_NEWNS) < 0)
		return -1;
	r->stash_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (r->stash_fd < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("pam_unshare-relay", STASH_MOUNT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=4k,nr_inodes=4,mode=0700") < 0 ||
	    chdir(STASH_MOUNT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
	    chdir("/") < 0 || relay_listen(r) < 0)
		err = errno;
	/* Back home in any case: the session's mount namespace is ours. */
	if (enter_mnt_ns(r->home_fd) < 0)
		return -1;
	errno = err;
	return err ? -1 : 0;
}

/* Say once why the relay does not work; the session goes on without it. */
static void relay_give_up(struct relay *r, const char *what)
{
	syslog(LOG_WARNING, "%s: %m; systemctl --user will not work in this session", what);
	close_fd(&r->listen_fd);
	close_fd(&r->stash_fd);
	close_fd(&r->home_fd);
	close_fd(&r->real_fd);
	close_fd(&r->watch_fd);
	r->watch_wd = -1;
	r->on = 0;
}

/* Stop waiting for the manager's socket. The inotify instance stays: its
 * close waits for an SRCU grace period (measured: 6 ms), while removing a
 * watch does not wait. */
static void watch_stop(struct relay *r)
{
	if (r->watch_fd >= 0 && r->watch_wd >= 0)
		(void)inotify_rm_watch(r->watch_fd, r->watch_wd);
	r->watch_wd = -1;
}

/* A new inotify instance, charged to `uid`. The kernel counts instances
 * (fs.inotify.max_user_instances, 128 by default) and their watches against
 * the effective uid of the process that makes them, and root's count is
 * shared by every root daemon. A user decides when we wait (she need only
 * move her manager's socket away) and how many sessions she opens: as root,
 * 128 of her sessions would leave no instance for systemd, udev or
 * journalctl -f. So the instance is made with her uid as our effective uid
 * only: real and saved stay root, so she cannot signal or ptrace us in
 * between, and we are single-threaded. If her own instances are used up, we
 * go without (relay_refresh still runs on every mount change). Returns the
 * descriptor, or -1 with errno set. */
static int inotify_init_as_user(uid_t uid)
{
	int fd, err;

	if (setresuid((uid_t)-1, uid, (uid_t)-1) < 0)
		return -1;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	err = errno;
	if (setresuid((uid_t)-1, 0, (uid_t)-1) < 0) {
		/* Cannot happen with a saved uid of 0; if it did, we must not
		 * go on with the user's effective uid. */
		syslog(LOG_CRIT, "cannot return to effective uid 0: %m");
		_exit(1);
	}
	errno = err;
	return fd;
}

/* Wait for entries to appear in directory `dirfd`, and in no other. Adding
 * a watch on the directory already watched returns the same watch and
 * changes nothing; only a move to another directory removes the old one
 * (which queues one IN_IGNORED: a single extra look, not a loop). */
static void watch_dir(struct relay *r, int dirfd)
{
	char path[32];
	int wd;

	if (r->watch_fd < 0)
		r->watch_fd = inotify_init_as_user(r->uid);
	if (r->watch_fd < 0) {
		if (!r->watch_failed)
			syslog(LOG_WARNING, "cannot watch for the user manager's socket: %m; "
					    "it is relayed after the next mount change");
		r->watch_failed = 1;
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
	wd = inotify_add_watch(r->watch_fd, path, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	if (wd != r->watch_wd)
		watch_stop(r);
	r->watch_wd = wd;
}

/* Read and drop what the watch reported: relay_refresh looks for itself. */
static void watch_drain(struct relay *r)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(r->watch_fd, buf, sizeof(buf)) > 0)
		;
}

/* The kernel's struct statx (linux/stat.h; musl ships no kernel headers). */
struct statx_k {
	uint32_t mask, blksize;
	uint64_t attributes;
	uint32_t nlink, uid, gid;
	uint16_t mode, spare0;
	uint64_t ino, size, blocks, attributes_mask;
	uint64_t times[8];
	uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
	uint64_t mnt_id;
	uint64_t spare[13];
};
_Static_assert(sizeof(struct statx_k) == 256, "struct statx is 256 bytes");
#define STATX_NEEDED (0x1U /* TYPE */ | 0x2U /* MODE */ | 0x8U /* UID */ | 0x100U /* INO */ | 0x1000U /* MNT_ID */)
#ifndef AT_STATX_DONT_SYNC
#define AT_STATX_DONT_SYNC 0x4000
#endif

/* fstat, plus the mount ID, from what the kernel has cached: with
 * AT_STATX_DONT_SYNC a FUSE file system is not asked. A user can mount one
 * of her own (fusermount3 is setuid) on any directory of hers, and a
 * daemon that never answers would keep us, PID 1, in uninterruptible sleep
 * on the first stat. Returns 0, or -1 with errno set (ENOSYS: a kernel
 * before 5.8, without mount IDs). */
static int stat_cached(int fd, struct stat *st, uint64_t *mnt)
{
	struct statx_k sx;

	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_NEEDED, &sx) < 0)
		return -1;
	if ((sx.mask & STATX_NEEDED) != STATX_NEEDED) {
		errno = ENOSYS;
		return -1;
	}
	memset(st, 0, sizeof(*st));
	st->st_mode = sx.mode;
	st->st_uid = sx.uid;
	st->st_ino = sx.ino;
	st->st_dev = makedev(sx.dev_major, sx.dev_minor);
	*mnt = sx.mnt_id;
	return 0;
}

/* Whether mount `mnt` of our mount namespace is a tmpfs: what logind
 * mounts at /run/user/UID, and /run itself on a system without it. Every
 * other file system the relay refuses, before it looks up anything in it:
 * a user's FUSE mount answers lookups when it likes. */
static int mount_is_tmpfs(uint64_t mnt)
{
	char line[4096];
	int at_start = 1, found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		int starts = at_start;
		char *sep, *end;

		at_start = strchr(line, '\n') != NULL;
		if (!starts || strtoull(line, &end, 10) != mnt || *end != ' ')
			continue;
		/* ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE ...;
		 * paths escape spaces, so " - " is the separator. A line longer
		 * than the buffer is never a tmpfs here: our paths are short. */
		sep = strstr(line, " - ");
		found = sep != NULL && strncmp(sep + 3, "tmpfs ", 6) == 0 ? 1 : -1;
	}
	fclose(f);
	return found == 1;
}

/* Open `name` in `dirfd` without following a symlink and check that it is
 * the user's and of type `type` (S_IFDIR, S_IFSOCK), without asking its
 * file system (stat_cached). *mnt gets its mount ID. Returns the O_PATH
 * descriptor, or -1 with errno set (ENOENT: not there yet). */
static int open_users(const struct relay *r, int dirfd, const char *name, mode_t type, struct stat *st, uint64_t *mnt)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (type == S_IFDIR ? O_DIRECTORY : 0));

	if (fd < 0)
		return -1;
	if (stat_cached(fd, st, mnt) < 0 || (st->st_mode & S_IFMT) != type || st->st_uid != r->uid) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Cover the manager's socket `sock` with a bind mount of ours, cloned in
 * the stash. Returns 0, or -1 with errno set. */
static int cover(const struct relay *r, int sock)
{
	int tree, err = 0;

	if (enter_mnt_ns(r->stash_fd) < 0)
		return -1;
	tree = sys_open_tree(AT_FDCWD, STASH_SOCKET, OPEN_TREE_CLONE | O_CLOEXEC);
	if (tree < 0)
		err = errno;
	if (enter_mnt_ns(r->home_fd) < 0) {
		/* Stranded in the stash: nothing the session uses depends on
		 * our namespace but the relay children, which connect through
		 * descriptors. Say so; it cannot happen with a valid fd. */
		syslog(LOG_ERR, "cannot return to the session's mount namespace: %m");
		err = errno;
	}
	if (err) {
		if (tree >= 0)
			close(tree);
		errno = err;
		return -1;
	}
	if (sys_move_mount(tree, "", sock, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		err = errno;
	close(tree);
	errno = err;
	return err ? -1 : 0;
}

/* open_users, and if `name` is not there (or not yet what it must be),
 * watch `dirfd` and look once more: an entry made between the two looks
 * still wakes us. */
static int open_or_watch(struct relay *r, int dirfd, const char *name, mode_t type, struct stat *st, uint64_t *mnt)
{
	int fd = open_users(r, dirfd, name, type, st, mnt);

	if (fd >= 0)
		return fd;
	watch_dir(r, dirfd);
	return open_users(r, dirfd, name, type, st, mnt);
}

/* Cover the socket in `dir` unless it is ours already. Returns 0 when
 * the path shows our socket, or -1 with errno set: ENOENT when there is no
 * socket to cover, or it went away under us. */
static int cover_in(struct relay *r, int dir, uint64_t run_mnt)
{
	struct stat st;
	uint64_t mnt;
	int sock = open_or_watch(r, dir, MANAGER_SOCKET, S_IFSOCK, &st, &mnt);

	if (sock < 0) {
		errno = ENOENT;
		return -1;
	}
	if (r->listen_fd >= 0 && st.st_dev == r->dev && st.st_ino == r->ino) {
		close(sock); /* ours: covered already */
		return 0;
	}
	if (mnt != run_mnt) {
		/* A mount over the name, not the manager's socket. */
		close(sock);
		errno = EXDEV;
		return -1;
	}
	/* Our socket is made only now that there is a manager to relay to:
	 * sessions of users without one pay nothing. */
	if (r->listen_fd < 0 && relay_make_socket(r) < 0) {
		close(sock);
		relay_give_up(r, "cannot make the socket of the user manager's relay");
		errno = EPERM;
		return -1;
	}
	if (cover(r, sock) < 0) {
		int err = errno;

		close(sock);
		errno = err;
		return -1;
	}
	close_fd(&r->real_fd);
	r->real_fd = sock;
	return 0;
}

/* Log once that the runtime directory `path` is not what the relay
 * works in (`why`). */
static void relay_refused(struct relay *r, const char *path, const char *why)
{
	if (r->cover_failed)
		return;
	syslog(LOG_WARNING, "%s %s (a file system the user mounted?): not looked into; "
			    "systemctl --user will not work in this session", path, why);
	r->cover_failed = 1;
}

void relay_refresh(struct relay *r)
{
	char path[32];
	struct stat st;
	uint64_t run_mnt, mnt;
	int run, dir, rc = -1, err = 0;

	if (!r->on)
		return;
	snprintf(path, sizeof(path), RUNTIME_DIR_FMT, (unsigned)r->uid);
	/* No runtime directory: logind mounts one at the user's first login,
	 * and that mount wakes us. */
	run = open_users(r, AT_FDCWD, path, S_IFDIR, &st, &run_mnt);
	if (run < 0) {
		watch_stop(r);
		return;
	}
	/* Nothing below is looked up on a file system other than the tmpfs
	 * of the runtime directory (mount_is_tmpfs): no mount of the user's
	 * between it and the socket. */
	if (!mount_is_tmpfs(run_mnt)) {
		close(run);
		watch_stop(r);
		relay_refused(r, path, "is not on a tmpfs");
		return;
	}
	/* The manager makes systemd/ and then its socket in it; until then
	 * we wait in the deepest directory there is. */
	dir = open_or_watch(r, run, MANAGER_DIR, S_IFDIR, &st, &mnt);
	close(run);
	if (dir < 0)
		return;
	if (mnt != run_mnt) {
		close(dir);
		watch_stop(r);
		relay_refused(r, path, "has a mount at " MANAGER_DIR);
		return;
	}
	/* A socket being replaced can vanish between our open and the cover
	 * (ENOENT: the manager unlinked it, and that detached our old cover
	 * and woke us before the name was gone): look again, watching. */
	for (int tries = 0; tries < 3 && rc < 0; tries++) {
		rc = cover_in(r, dir, run_mnt);
		err = errno;
		if (rc < 0 && err != ENOENT)
			break;
		if (rc < 0)
			watch_dir(r, dir);
	}
	if (rc == 0) {
		watch_stop(r);
		r->cover_failed = 0;
	} else if (err != ENOENT && r->on && !r->cover_failed) {
		errno = err;
		syslog(LOG_WARNING, "cannot cover %s/" MANAGER_DIR "/" MANAGER_SOCKET ": %m; "
				    "systemctl --user will not work in this session", path);
		r->cover_failed = 1;
	}
	close(dir);
}

int relay_start(struct relay *r)
{
	r->stash_fd = r->home_fd = r->listen_fd = r->real_fd = r->watch_fd = r->watch_wd = -1;
	r->pause.what = "the user manager's relay";
	r->on = r->wanted;
	relay_refresh(r);
	return r->on || !r->wanted ? 0 : -1;
}

struct pollfd relay_listen_pollfd(struct relay *r, int accepting, int *timeout)
{
	/* poll() skips a negative descriptor. */
	if (!r->on || !accepting)
		return (struct pollfd){ .fd = -1, .events = POLLIN };
	return listen_pollfd(r->listen_fd, &r->pause, timeout);
}

int relay_room(struct relay *r)
{
	if (r->nkids < RELAY_MAX_CONNS)
		return 1;
	if (!r->full_logged)
		syslog(LOG_WARNING, "the user manager's relay serves %d connections, its most; "
				    "closing new ones until they end", RELAY_MAX_CONNS);
	r->full_logged = 1;
	return 0;
}

void relay_kid_add(struct relay *r, pid_t pid)
{
	if (r->nkids < RELAY_MAX_CONNS)
		r->kids[r->nkids++] = pid;
}

void relay_reaped(struct relay *r, pid_t pid)
{
	if (!r)
		return;
	for (int i = 0; i < r->nkids; i++) {
		if (r->kids[i] != pid)
			continue;
		r->kids[i] = r->kids[--r->nkids];
		/* Its end freed a process and maybe memory (our descriptor of
		 * its connection was closed when it started). */
		listen_wake(&r->pause);
		break;
	}
	/* Log the cap again only after a flood has ended completely, so
	 * that the user cannot fill the log by going just over it. */
	if (r->nkids == 0)
		r->full_logged = 0;
}

struct pollfd relay_watch_pollfd(const struct relay *r)
{
	return (struct pollfd){ .fd = r->on && r->watch_wd >= 0 ? r->watch_fd : -1, .events = POLLIN };
}

/* ---- the relay child ------------------------------------------------------ */

/* Move what one recvmsg returns from `from` to `to`, passed descriptors
 * included. Returns 1 while `from` is open, 0 at its end-of-file, -1 on an
 * error. Blocking writes are fine here: the child serves one connection,
 * and both sd-bus ends keep reading while they write. */
static int pass(int from, int to, char *buf)
{
	char cbuf[CMSG_SPACE(RELAY_FDS_MAX * sizeof(int))];
	char out_cbuf[CMSG_SPACE(RELAY_FDS_MAX * sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = RELAY_CHUNK };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	int fds[RELAY_FDS_MAX], nfds = 0, rc = 1;
	size_t done = 0;
	ssize_t n = recvmsg(from, &mh, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		int k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (k > RELAY_FDS_MAX - nfds)
			k = RELAY_FDS_MAX - nfds;
		memcpy(fds + nfds, CMSG_DATA(c), (size_t)k * sizeof(int));
		nfds += k;
	}
	if (n == 0)
		rc = 0;
	else if (mh.msg_flags & MSG_CTRUNC)
		rc = -1; /* descriptors were lost: the stream would lie */
	while (rc == 1 && done < (size_t)n) {
		struct iovec oiov = { .iov_base = buf + done, .iov_len = (size_t)n - done };
		struct msghdr out = { .msg_iov = &oiov, .msg_iovlen = 1 };
		ssize_t m;

		/* The descriptors go with the first bytes they came with. */
		if (done == 0 && nfds > 0) {
			struct cmsghdr *c;

			memset(out_cbuf, 0, sizeof(out_cbuf));
			out.msg_control = out_cbuf;
			out.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
			c = CMSG_FIRSTHDR(&out);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
			memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
		}
		m = sendmsg(to, &out, MSG_NOSIGNAL);
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0)
			rc = -1;
		else
			done += (size_t)m;
	}
	for (int k = 0; k < nfds; k++)
		close(fds[k]);
	return rc;
}

/* Copy both ways until both sides have closed, or one fails. */
static void copy_both_ways(int client, int manager)
{
	static char buf[RELAY_CHUNK];
	struct pollfd pfd[2] = { { .fd = client, .events = POLLIN }, { .fd = manager, .events = POLLIN } };
	int peer[2] = { manager, client };

	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			int rc;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			rc = pass(pfd[i].fd, peer[i], buf);
			if (rc < 0)
				return;
			if (rc == 0) {
				/* Half-close: the other side still gets what is
				 * in flight towards us. */
				(void)shutdown(peer[i], SHUT_WR);
				pfd[i].fd = -1;
			}
		}
	}
}

/* One limit value of /proc/PID/limits at *p: a number or "unlimited".
 * Moves *p past it. Returns 0, or -1 for anything else. */
static int limit_value(const char **p, rlim_t *v)
{
	char *end;

	while (**p == ' ')
		(*p)++;
	if (strncmp(*p, "unlimited", 9) == 0) {
		*v = RLIM_INFINITY;
		*p += 9;
		return 0;
	}
	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*v = (rlim_t)strtoull(*p, &end, 10);
	if (errno != 0 || (*end != ' ' && *end != '\n'))
		return -1;
	*p = end;
	return 0;
}

int limits_find(const char *text, const char *name, struct rlimit *lim)
{
	size_t len = strlen(name);
	const char *line = text;

	while (line) {
		const char *p = line + len;

		if (strncmp(line, name, len) == 0 && *p == ' ')
			return limit_value(&p, &lim->rlim_cur) < 0 || limit_value(&p, &lim->rlim_max) < 0 ? -1 : 0;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

/* Take the process and descriptor limits of the process that connected
 * (SO_PEERCRED): the user's own, never ours, which are the host's and
 * raised by main. Read from /proc/PID/limits, which anyone may read
 * (prlimit() on another process needs CAP_SYS_RESOURCE, which root may
 * lack in a container). A limit above our hard one is cut to it: only the
 * user's lower limits matter here. Returns 0, or -1 with errno set (the
 * peer is gone: nobody waits for this connection). */
static int peer_limits(int client)
{
	static const struct {
		int resource;
		const char *name;
	} which[] = { { RLIMIT_NPROC, "Max processes" }, { RLIMIT_NOFILE, "Max open files" } };
	char path[64], text[4096];
	struct ucred cred;
	socklen_t len = sizeof(cred);
	ssize_t n;
	int fd;

	if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)cred.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
		struct rlimit lim, ours;

		if (limits_find(text, which[i].name, &lim) < 0 || getrlimit(which[i].resource, &ours) < 0) {
			errno = EINVAL;
			return -1;
		}
		if (lim.rlim_max > ours.rlim_max)
			lim.rlim_max = ours.rlim_max;
		if (lim.rlim_cur > lim.rlim_max)
			lim.rlim_cur = lim.rlim_max;
		if (setrlimit(which[i].resource, &lim) < 0)
			return -1;
	}
	return 0;
}

/* Whether the user may start one more process, as the kernel decides for
 * a fork of theirs. RLIMIT_NPROC is checked at fork against the forking
 * process's real uid, and at execve after a change of uid; we were forked
 * by root and never exec, so the kernel never checks us. Forking once,
 * now that we run as the user with the peer's limit, asks it: EAGAIN when
 * the user's processes (we included) have reached the limit. Returns 0, or
 * -1 with errno set. */
static int nproc_allows_one_more(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(0);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* The child that serves one connection: never returns. */
static void relay_child(const struct relay *r, int client)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sigset_t none;
	int c = fcntl(client, F_DUPFD, CHILD_FD_MANAGER + 1);
	int m = fcntl(r->real_fd, F_DUPFD, CHILD_FD_MANAGER + 1);
	int manager;

	/* We inherited PID 1's blocked signals; the teardown's SIGTERM must
	 * end us. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	(void)prctl(PR_SET_NAME, RELAY_COMM, 0, 0, 0);
	if (c < 0 || m < 0 || dup2(c, CHILD_FD_CLIENT) < 0 || dup2(m, CHILD_FD_MANAGER) < 0)
		_exit(1);
	close_from(CHILD_FD_MANAGER + 1);
	if (peer_limits(CHILD_FD_CLIENT) < 0)
		_exit(1);
	/* From here on, nothing the user could not do. */
	if (setgroups(0, NULL) < 0 || setresgid(r->gid, r->gid, r->gid) < 0 || setresuid(r->uid, r->uid, r->uid) < 0)
		_exit(1);
	/* Over the user's process limit: closing the connection is what
	 * their own fork would have met (no log line: the user could fill
	 * the log, and their client sees the end of the connection). */
	if (nproc_allows_one_more() < 0)
		_exit(1);
	/* Not dumpable, so the user cannot ptrace it or read its descriptors
	 * through /proc (the change of uid usually does this already). */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (fcntl(CHILD_FD_CLIENT, F_SETFL, 0) < 0)
		_exit(1);
	manager = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* connect() takes a path; the manager's is covered, so go through
	 * the descriptor kept of it. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", CHILD_FD_MANAGER);
	if (manager < 0 || connect(manager, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(1);
	close(CHILD_FD_MANAGER);
	copy_both_ways(CHILD_FD_CLIENT, manager);
	_exit(0);
}

/* Accept one connection; serve it in a child if its peer is the user and
 * fewer than RELAY_MAX_CONNS are served. Any other is closed at once: a
 * connection left queued would keep the listener readable. */
static void relay_accept(struct relay *r)
{
	int fd = listen_accept(r->listen_fd, r->uid, &r->pause);
	pid_t pid;

	if (fd < 0)
		return;
	if (r->real_fd < 0 || !relay_room(r)) {
		close(fd);
		return;
	}
	pid = fork();
	if (pid == 0)
		relay_child(r, fd);
	if (pid > 0)
		relay_kid_add(r, pid);
	close(fd);
}

void relay_check(struct relay *r, short listen_revents, short watch_revents)
{
	if (!r->on)
		return;
	if (watch_revents) {
		watch_drain(r);
		relay_refresh(r);
	}
	if (listen_revents & POLLIN)
		relay_accept(r);
}
