/*
 * trust.c - see trust.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust.h"

/* Set t->problem from a format; returns -1. */
__attribute__((format(printf, 2, 3))) static int untrusted(struct pu_trust *t,
							    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->problem, sizeof(t->problem), fmt, ap);
	va_end(ap);
	return -1;
}

/* A directory on the way may be root's alone, or sticky. */
static int trusted_dir(const struct stat *st)
{
	return st->st_uid == 0 &&
	       (!(st->st_mode & (S_IWGRP | S_IWOTH)) || (st->st_mode & S_ISVTX));
}

/*
 * Walk the directories of t->real from / down, each opened with O_NOFOLLOW
 * below the one before, and check each; the last must hold, under the
 * file's name, the file whose stat is file. Returns 0 or -1 as
 * pu_trust_fd.
 */
static int check_dirs(struct pu_trust *t, const struct stat *file)
{
	const char *base = strrchr(t->real, '/') + 1; /* the file's name */
	const char *next = t->real + 1;               /* the next component */
	char name[PATH_MAX] = "/";                    /* the directory at dir */
	struct stat st;
	int dir, sub, rc = -1;

	dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return untrusted(t, "directory /: %s", strerror(errno));
	for (;;) {
		const char *end;

		if (fstat(dir, &st) < 0)
			goto failed;
		if (!trusted_dir(&st)) {
			untrusted(t, "directory %s must be owned by root and not "
				  "writable by group or others", name);
			goto out;
		}
		if (next >= base)
			break;
		/* name becomes the real path up to the end of the next
		 * component; the component itself is its tail. */
		end = strchr(next, '/');
		memcpy(name, t->real, (size_t)(end - t->real));
		name[end - t->real] = '\0';
		sub = openat(dir, name + (next - t->real),
			     O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			goto failed;
		close(dir);
		dir = sub;
		next = end + 1;
	}
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != file->st_dev || st.st_ino != file->st_ino) {
		untrusted(t, "replaced while being checked");
		goto out;
	}
	rc = 0;
	goto out;
failed:
	untrusted(t, "directory %s: %s", name, strerror(errno));
out:
	close(dir);
	return rc;
}

int pu_trust_fd(int fd, int executable, struct pu_trust *t)
{
	char link[32];
	struct stat st;
	unsigned perm;
	ssize_t n;

	t->problem[0] = t->real[0] = '\0';
	if (fstat(fd, &st) < 0)
		return untrusted(t, "%s", strerror(errno));
	perm = st.st_mode & 07777;
	if (!S_ISREG(st.st_mode))
		return untrusted(t, "not a regular file");
	if (st.st_uid != 0)
		return untrusted(t, "owned by uid %u, must be owned by root",
				 (unsigned)st.st_uid);
	if (perm & (S_IWGRP | S_IWOTH))
		return untrusted(t, "mode %04o: must not be writable by group or others",
				 perm);
	if (executable && !(perm & S_IXUSR))
		return untrusted(t, "mode %04o: not executable", perm);
	/* The path the descriptor really reached, every symlink resolved. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	/* A path too long for real is cut short, and then fails the walk. */
	n = readlink(link, t->real, sizeof(t->real) - 1);
	if (n < 0) {
		t->real[0] = '\0';
		return untrusted(t, "cannot find its real path in /proc/self/fd: %s",
				 strerror(errno));
	}
	t->real[n] = '\0';
	/* Not below /: a pipe, a socket, an anonymous inode. A file unlinked
	 * since ("/x (deleted)") is below / and fails the walk's last step. */
	if (t->real[0] != '/')
		return untrusted(t, "not a path below /");
	return check_dirs(t, &st);
}
