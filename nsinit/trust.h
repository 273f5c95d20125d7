/*
 * trust.h - the one rule for the files pam_unshare loads or runs: only
 * root could have put them in place. Implemented in trust.c.
 *
 * Two callers, one implementation:
 *  - front/front.c, before it loads the Go library. It is C because it
 *    runs before any Go is loaded: the Go library cannot vouch for itself.
 *  - trust.go (cgo), for the PID-1 helper before the module runs it, and
 *    for pam-unshare doctor, which reports the same check on the module,
 *    the Go library and the helper.
 * So doctor's verdict on a file is the verdict the module reaches at login.
 *
 * Each caller opens the file itself (the front for dlopen, trust.go with
 * O_PATH for fexecve-style exec) and names it in its own messages; the
 * rule is about the file that descriptor holds.
 */
#ifndef NSINIT_TRUST_H
#define NSINIT_TRUST_H

#include <limits.h>

/* Room for a problem: a directory path and some words. */
#define PU_TRUST_PROBLEM_MAX (PATH_MAX + 256)

/* What pu_trust_fd found. */
struct pu_trust {
	/* What is wrong, one phrase without a trailing period; "" if nothing. */
	char problem[PU_TRUST_PROBLEM_MAX];
	/* The file's real path (every symlink resolved), once read back; ""
	 * before that. When set, problem is about this path: a caller whose
	 * configured path differs may say "real path ...". */
	char real[PATH_MAX];
};

/*
 * pu_trust_fd checks the file open on fd (any open mode, O_PATH too): a
 * regular file (and executable by its owner, if executable is non-zero),
 * owned by root and not writable by group or others; and so is every
 * directory on its real path, read back from /proc/self/fd (sticky
 * directories such as /tmp may be writable by all: others cannot replace
 * a root-owned entry in them). A root-made symlink into a directory a user
 * can write is therefore refused.
 *
 * The directories are walked from / with openat(O_NOFOLLOW), each one
 * fstat'ed, and the last must still hold, under the file's name, the very
 * file open on fd: nothing checked is looked up by name twice.
 *
 * Returns 0 if the file is trusted, else -1 with t->problem set. No
 * allocation and no static state: callable from any thread, with t on the
 * caller's stack.
 */
int pu_trust_fd(int fd, int executable, struct pu_trust *t);

#endif
