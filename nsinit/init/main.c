/*
 * pam_unshare-init - PID 1 of an isolated PAM session.
 *
 * The host side (nsinit.Enter, in ../nsinit.go) unshares the PID and mount
 * namespaces on the thread that runs pam_open_session and spawns this
 * program, which thereby becomes PID 1 of the new PID namespace and shares
 * the new mount namespace with the host thread. main below is the list of
 * its steps; each step is a small function that returns 0, or -1 with
 * errno set. Setup failures are sent to the host, which logs them; after
 * READY, unexpected failures go to syslog.
 *
 * Why C and not Go: PID 1 must be single-threaded. Each thread of PID 1 takes
 * a PID number in the namespace, and a Go program has several threads, which
 * would push the session leader off PID 2.
 *
 * The files, and which calls which (never the other way):
 *   main.c       the steps: arguments, descriptors, ids, mounts, READY, the
 *                mode, teardown
 *   session.c    per-session mode: wait for the end of one session
 *   user.c       per-user mode (-U, scope=user): serve every session of a user
 *   loop.c       the one event loop both modes wait in, and the signals
 *   relay.c      the user manager's relay (-u), a source of the loop
 *   procwatch.c  proc mounts of other PID namespaces: sweep and watch
 *   pids.c       the namespace's processes: reaping, running or not
 *   args.c       the command line (grammar in ../handshake.h)
 *   fd.c         descriptor helpers and the clock
 * main.c calls the modes, the modes call loop.c, relay.c, procwatch.c and
 * pids.c, and everything may call fd.c. init.h declares what they share.
 *
 * Usage (always started by nsinit, never by hand): see "The helper's
 * command line" in ../handshake.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "../handshake.h"
#include "init.h"

/* How often teardown checks whether the namespace is empty yet. */
#define TEARDOWN_TICK_MS 10
/* Mounts stacked at /proc that setup detaches before it gives up. */
#define PROC_LAYERS_MAX 16

/* Report a setup failure to the host, and return main's exit code. Best
 * effort: if the host is gone there is nobody to tell. */
static int fail(int step, int err)
{
	struct nsinit_msg msg = { .type = NSINIT_MSG_FAILED, .step = (unsigned char)step, .version = NSINIT_PROTO_VERSION, .err = err };

	(void)send(NSINIT_FD_CONTROL, &msg, sizeof(msg), MSG_NOSIGNAL);
	return 1;
}

static int report_ready(void)
{
	struct nsinit_msg msg = { .type = NSINIT_MSG_READY, .version = NSINIT_PROTO_VERSION };

	return send(NSINIT_FD_CONTROL, &msg, sizeof(msg), MSG_NOSIGNAL) == sizeof(msg) ? 0 : -1;
}

/*
 * Keep only our own descriptors: stdin, stdout and stderr go to /dev/null
 * (they were the host's terminal or the sshd socket), and everything above
 * NSINIT_FD_HOST (NSINIT_FD_LISTEN in per-user mode) is closed.
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

/*
 * Make every user and group id root and drop supplementary groups. Under a
 * setuid host (su, sudo) we start with the invoking user's real uid, and
 * kill(2) lets a user signal any process whose real or saved uid is
 * theirs: that user could stop or kill the PID 1 of their own session from
 * outside. With all ids root only root can.
 */
static int creds_root(void)
{
	if (setgroups(0, NULL) < 0)
		return -1;
	if (setresgid(0, 0, 0) < 0)
		return -1;
	return setresuid(0, 0, 0);
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

/* Take our name, leave the host's session, terminal and working
 * directory, and connect to syslog. Nothing here can fail the session. */
static void process_detach(void)
{
	(void)prctl(PR_SET_NAME, NSINIT_HELPER_COMM, 0, 0, 0);
	(void)setsid();
	if (chdir("/") < 0) {
		/* not fatal: we only hold the directory busy */
	}
	/* Connected now (LOG_NDELAY), not at the first line: a helper out of
	 * descriptors must still be able to say so. */
	openlog("pam_unshare-init", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
	nofile_raise();
}

/* Make our copy of the mount tree stop propagating to the host, then put a
 * /proc of the new PID namespace in place. The host's /proc is detached only
 * in our mount namespace; MNT_DETACH also takes submounts such as
 * binfmt_misc, which would make a plain umount fail with EBUSY.
 * On failure *step names the failed step. */
static int mounts_setup(int propagation_private, int *step)
{
	*step = NSINIT_STEP_PROPAGATION;
	if (mount(NULL, "/", NULL, MS_REC | (propagation_private ? MS_PRIVATE : MS_SLAVE), NULL) < 0)
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
static void teardown(long grace_ms, int sig_fd, struct relay *r)
{
	long deadline = now_ms() + grace_ms;

	/* kill(-1) from PID 1 reaches everything in the namespace but us. */
	kill(-1, SIGTERM);
	kill(-1, SIGHUP);
	kill(-1, SIGCONT);
	for (;;) {
		struct pollfd pfd = { .fd = sig_fd, .events = POLLIN };
		long left;

		reap_children(r);
		if (!namespace_busy())
			return;
		left = deadline - now_ms();
		if (left <= 0)
			return;
		if (poll(&pfd, 1, left < TEARDOWN_TICK_MS ? (int)left : TEARDOWN_TICK_MS) > 0)
			(void)signals_drain(sig_fd, r);
	}
}

int main(int argc, char **argv)
{
	struct nsinit_config cfg;
	struct proc_watch procs = { .mounts_fd = -1 };
	struct relay relay = { 0 };
	/* Static: zeroed without touching their pages, which stay unmapped
	 * until sessions use them. */
	static struct loop loop;
	static struct user_ns u;
	int step, use_pidfd;
	/* NSINIT_FD_HOST is present only if the host could make a pidfd. */
	int have_host_fd = fcntl(NSINIT_FD_HOST, F_GETFD) >= 0;

	/* Arguments first: they say whether NSINIT_FD_LISTEN is ours. */
	if (config_parse(argc, argv, &cfg) < 0)
		return fail(NSINIT_STEP_USAGE, EINVAL);
	if (cfg.per_user && (!have_host_fd || fcntl(NSINIT_FD_LISTEN, F_GETFD) < 0))
		return fail(NSINIT_STEP_USAGE, EBADF);
	if (fds_sanitize(have_host_fd, cfg.per_user) < 0)
		return fail(NSINIT_STEP_USAGE, errno);
	if (creds_root() < 0)
		return fail(NSINIT_STEP_CREDENTIALS, errno);
	if (getpid() != 1)
		return fail(NSINIT_STEP_NOT_PID1, EINVAL);
	use_pidfd = have_host_fd && !cfg.no_pidfd;
	if (have_host_fd && !use_pidfd)
		close(NSINIT_FD_HOST); /* -P: behave as if the kernel had no pidfds */
	process_detach();

	if (mounts_setup(cfg.propagation_private, &step) < 0)
		return fail(step, errno);
	/* Before READY: the session never starts with a foreign procfs. */
	if (proc_watch_start(&procs) < 0)
		return fail(NSINIT_STEP_PROC_MOUNTS, errno);
	/* Before READY too, so that the session's first command can already
	 * use systemctl --user. A failure is logged and not fatal. */
	relay.wanted = cfg.relay;
	relay.uid = (uid_t)cfg.relay_uid;
	relay.gid = (gid_t)cfg.relay_gid;
	(void)relay_start(&relay);
	loop.procs = &procs;
	loop.relay = &relay;
	loop.sig_fd = signals_setup();
	if (loop.sig_fd < 0)
		return fail(NSINIT_STEP_SIGNALS, errno);

	if (cfg.per_user) {
		loop.what = "the namespace";
		u.loop = &loop;
		u.linger = cfg.linger;
		u.first_host_pid = cfg.host_pid;
		u.first_service = cfg.service;
		if (user_setup(&u) < 0)
			return fail(NSINIT_STEP_PIDFD, errno); /* or listen() */
		if (report_ready() < 0)
			return 1; /* the host gave up waiting; end quietly */
		if (user_serve(&u) == USER_END_TEARDOWN)
			teardown(cfg.grace_ms, loop.sig_fd, &relay);
		return 0;
	}
	loop.what = "the session";
	if (report_ready() < 0)
		return 1; /* the host gave up waiting; end quietly */
	session_serve(&loop, use_pidfd, use_pidfd ? NSINIT_FD_HOST : -1);
	teardown(cfg.grace_ms, loop.sig_fd, &relay);
	return 0;
}
