/*
 * procwatch.c - proc mounts of other PID namespaces: the sweep that
 * detaches them, and the watch on the mount table that runs it again.
 *
 * Our mount namespace starts as a copy of the host's, and as a slave it
 * keeps receiving the host's new mounts, so a /proc that root binds into a
 * chroot shows up here too, before or after login. Any procfs but one of
 * our own PID namespace lists processes the session must not see. A proc
 * mount is the session's own when it is a bind of our /proc (same device),
 * or when it is a whole procfs in which "self" is 1: only in a procfs of
 * our PID namespace are we PID 1 (in the host's, self is our host PID; in
 * any other namespace's it does not resolve). Only root can mount in this
 * namespace, so a procfs that root mounts from inside the session stays.
 * Every other proc mount is detached (MNT_DETACH, which takes its
 * submounts along) in our namespace only; the host keeps it. The watch is
 * poll() on /proc/self/mountinfo, which reports POLLPRI only when the
 * mount table changes, so it costs no wakeups while the session idles.
 *
 * main sweeps once before READY (proc_watch_start); the loop (loop.c)
 * then polls the mount table in either mode (proc_watch_pollfd,
 * proc_watch_check). Functions return 0, or -1 with errno set, unless
 * said otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include "init.h"

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
int mountinfo_parse(char *line, struct mount_entry *e)
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
int procfs_is_ours(int fd)
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
int proc_watch_start(struct proc_watch *w)
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

