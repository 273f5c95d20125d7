/*
 * pamhost - a minimal PAM application that opens sessions the way su does,
 * for tests and benchmarks of session modules.
 *
 *   pamhost -c CONFDIR -s SERVICE -u USER [-n N]
 *           [-m fork|nofork|noclose|childclose|noopen|sudochld] [-t] [-e] [-S]
 *           [-- CMD ARGS...]
 *
 * For each of N sessions, all in this one process:
 *   pam_start_confdir -> pam_open_session -> (fork mode) fork a child that
 *   execs CMD, wait for it -> pam_close_session -> pam_end.
 * In nofork mode the session is opened and closed with no child, as
 * pamtester does, which is the case where a session module sees no PID 2.
 * In noclose mode the child runs but pam_close_session is skipped: the
 * host goes straight to pam_end, as a careless application would, and the
 * module's pam_set_data cleanup must end the session.
 * In childclose mode the forked child first calls pam_close_session and
 * then pam_end on its copy of the handle, before it execs CMD, as some
 * hosts do (util-linux su calls pam_end in its child): a module must not
 * end the parent's session from there, nor run Go in that forked copy.
 * The stderr line then also has child_close=RC child_pid=PID.
 * In sudochld mode the child is forked the way sudo runs a command without
 * a terminal: every signal blocked, fork, install the SIGCHLD handler,
 * unblock. To make the race certain, the handler is installed only once
 * the child has exited and its SIGCHLD has left the process's shared
 * queue. The line then also has sigchld=caught (the handler ran) or
 * sigchld=lost (the host would wait forever for an exited command).
 * In noopen mode no session is opened: pam_authenticate and pam_acct_mgmt
 * run, then CMD is forked with the host's pid in PAMHOST_PID, waited for,
 * and pam_end follows; the line is
 *   session I auth=RC account=RC child=EXIT
 * This is a failed or session-less login: CMD can look at what loading
 * the stack cost the host (/proc/$PAMHOST_PID/status, maps).
 *
 * Output, one line per session on stderr:
 *   session I open=RC close=RC child=EXIT open_us=U total_us=T start_open_us=S
 * S is from before pam_start to the return of pam_open_session: what a
 * login waits for its session, module loading included (a module that is
 * itself a Go library starts its runtime in pam_start).
 * and with -t one CSV line per session on stdout:
 *   I,OPEN_US,TOTAL_US,ISOLATED
 * ISOLATED is 1 when the child, before exec, saw getpid() == 2 and
 * readlink("/proc/self") == "2": it is PID 2 of a new PID namespace and the
 * /proc it sees belongs to that namespace. CMD inherits stdout, so its
 * output and the CSV lines share it. CMD must be an absolute path.
 * After a failed open there is no child and no close, as in su: the line
 * then shows close=NONE child=-1.
 *
 * -e (an extension for the benchmark) measures teardown: after pam_close_session returns, wait until no
 * process is left in the child's PID namespace, and add close_us=C
 * empty_us=E to the stderr line and CLOSE_US,EMPTY_US to the CSV line.
 * EMPTY_US is counted from the return of pam_close_session; it is -1 when
 * the child was not isolated or the namespace did not empty within 10 s.
 *
 * -S stops the child (SIGSTOP) after it has reported and closed its report
 * pipe, before exec: a test lists /proc/PID/fd of the stopped child and
 * sends SIGCONT. That listing is what a host's forked child inherits from
 * the PAM stack when it never execs, as sshd's post-auth child (PID 2 of
 * the session, running as the user) never does. Nothing of pamhost's own
 * is open in it but stdin, stdout and stderr.
 *
 * The conversation function fails every prompt: session modules must not
 * prompt. Informational messages are printed to stderr.
 *
 * Exit status: 0 if every open and close returned PAM_SUCCESS and every
 * child exited 0; 1 otherwise; 2 on a usage error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Longest "pid:[N]" link text we accept; real ones are about 16 bytes. */
#define NSLINK_MAX 64

/* What the child reports to the parent before exec, over a CLOEXEC pipe. */
struct child_report {
	char isolated;		/* '1' if PID 2 with its own /proc, else '0' */
	char nspid[NSLINK_MAX];	/* readlink("/proc/self/ns/pid"), NUL-ended */
	int close_rc;		/* childclose mode: its pam_close_session */
};

/* childclose mode: the handle the child closes and ends (see above). */
static pam_handle_t *child_closes;

/* PAM return code names, indexed by value (Linux-PAM _pam_types.h). */
static const char *const rc_names[] = {
	"PAM_SUCCESS", "PAM_OPEN_ERR", "PAM_SYMBOL_ERR", "PAM_SERVICE_ERR",
	"PAM_SYSTEM_ERR", "PAM_BUF_ERR", "PAM_PERM_DENIED", "PAM_AUTH_ERR",
	"PAM_CRED_INSUFFICIENT", "PAM_AUTHINFO_UNAVAIL", "PAM_USER_UNKNOWN",
	"PAM_MAXTRIES", "PAM_NEW_AUTHTOK_REQD", "PAM_ACCT_EXPIRED",
	"PAM_SESSION_ERR", "PAM_CRED_UNAVAIL", "PAM_CRED_EXPIRED",
	"PAM_CRED_ERR", "PAM_NO_MODULE_DATA", "PAM_CONV_ERR",
	"PAM_AUTHTOK_ERR", "PAM_AUTHTOK_RECOVERY_ERR",
	"PAM_AUTHTOK_LOCK_BUSY", "PAM_AUTHTOK_DISABLE_AGING", "PAM_TRY_AGAIN",
	"PAM_IGNORE", "PAM_ABORT", "PAM_AUTHTOK_EXPIRED",
	"PAM_MODULE_UNKNOWN", "PAM_BAD_ITEM", "PAM_CONV_AGAIN", "PAM_INCOMPLETE",
};

static const char *rc_name(int rc)
{
	if (rc >= 0 && (size_t)rc < sizeof(rc_names) / sizeof(rc_names[0]))
		return rc_names[rc];
	return "PAM_UNKNOWN_RC";
}

/* Microseconds on the monotonic clock. */
static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Print informational messages; fail any prompt with PAM_CONV_ERR, since a
 * session module has no business asking the user anything.
 */
static int conv(int n, const struct pam_message **msg,
		struct pam_response **resp, void *data)
{
	(void)data;
	for (int i = 0; i < n; i++) {
		int style = msg[i]->msg_style;

		if (style != PAM_ERROR_MSG && style != PAM_TEXT_INFO)
			return PAM_CONV_ERR;
	}
	for (int i = 0; i < n; i++)
		fprintf(stderr, "pamhost: pam says: %s\n", msg[i]->msg);
	/* libpam frees the array and each resp (NULL here) on success. */
	*resp = calloc((size_t)n, sizeof(**resp));
	return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

/*
 * The forked child. The host is possibly multi-threaded (a Go module's
 * runtime lives in it), so only async-signal-safe calls here: getpid,
 * readlink, write, execve, _exit. Never returns.
 */
static void run_child(int report_fd, char **argv, int stop)
{
	struct child_report r;
	char self[16];
	ssize_t n;

	memset(&r, 0, sizeof(r));
	r.close_rc = -1;
	if (child_closes) {
		/* Not async-signal-safe, on purpose: this is what such hosts
		 * do, and what a module has to survive. */
		r.close_rc = pam_close_session(child_closes, 0);
		pam_end(child_closes, r.close_rc);
	}
	n = readlink("/proc/self", self, sizeof(self) - 1);
	r.isolated = (getpid() == 2 && n == 1 && self[0] == '2') ? '1' : '0';
	n = readlink("/proc/self/ns/pid", r.nspid, sizeof(r.nspid) - 1);
	if (n < 0)
		n = 0;
	r.nspid[n] = '\0';
	if (write(report_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(126);
	if (stop) {
		close(report_fd);
		raise(SIGSTOP);
	}
	/* report_fd is O_CLOEXEC: the parent sees EOF once exec succeeds. */
	execve(argv[0], argv, environ);
	_exit(127);
}

/*
 * Fork a child that execs argv and wait for it. Returns the exit code
 * (128+signal if killed, -1 if fork failed) and fills *rep from the
 * child's report (isolated '0' if the child never reported).
 */
static int run_session_child(char **argv, int stop, struct child_report *rep,
			     pid_t *child_pid)
{
	int fds[2], status;
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	memset(rep, 0, sizeof(*rep));
	rep->isolated = '0';
	if (pipe2(fds, O_CLOEXEC) < 0) {
		perror("pamhost: pipe2");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("pamhost: fork");
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		run_child(fds[1], argv, stop);
	}
	*child_pid = pid;
	close(fds[1]);
	while (got < sizeof(*rep)) {
		n = read(fds[0], (char *)rep + got, sizeof(*rep) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != sizeof(*rep)) {
		memset(rep, 0, sizeof(*rep));
		rep->isolated = '0';
		rep->close_rc = -1;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("pamhost: waitpid");
			return -1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static volatile sig_atomic_t sigchld_seen;

static void on_sigchld(int sig)
{
	(void)sig;
	sigchld_seen = 1;
}

/* 1 while SIGCHLD is in the process's shared pending set, read from the
 * host's own /proc/PID/status (opened before the session: in it, /proc
 * is the session's). */
static int sigchld_shared_pending(int statfd)
{
	char buf[4096], *p;
	ssize_t n = pread(statfd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "ShdPnd:");
	return p && (strtoull(p + 7, NULL, 16) & (1ULL << (SIGCHLD - 1)));
}

/* sudochld mode (see the top): fork argv as sudo does; *caught says
 * whether the SIGCHLD handler ran. Returns the child's exit status. */
static int run_sudo_order_child(char **argv, int statfd, int *caught)
{
	sigset_t all, old;
	struct sigaction sa, prev;
	siginfo_t si;
	int status;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid < 0) {
		perror("pamhost: fork");
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	/* Wait (at most 5 s) until some thread has taken the signal. */
	for (int i = 0; i < 5000 && sigchld_shared_pending(statfd); i++)
		usleep(1000);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sigemptyset(&sa.sa_mask);
	sigchld_seen = 0;
	sigaction(SIGCHLD, &sa, &prev);
	sigprocmask(SIG_SETMASK, &old, NULL); /* a pending SIGCHLD runs here */
	*caught = sigchld_seen;
	sigaction(SIGCHLD, &prev, NULL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("pamhost: waitpid");
			return -1;
		}
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Returns 1 if some process's /proc/PID/ns/pid reads nslink, else 0. */
static int ns_has_process(const char *nslink)
{
	char path[sizeof("/proc//ns/pid") + NAME_MAX], link[NSLINK_MAX];
	struct dirent *de;
	DIR *d = opendir("/proc");
	int found = 0;
	ssize_t n;

	if (!d)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		found = strcmp(link, nslink) == 0;
	}
	closedir(d);
	return found;
}

/*
 * Wait until no process is left in the PID namespace nslink, polling every
 * 100 us for at most 10 s. Returns the microseconds from the call to the
 * start of the first scan that found the namespace empty (0: it was
 * already empty), or -1 on timeout or when the namespace is unknown. A
 * scan of /proc takes a few hundred microseconds; counting from its start
 * keeps that cost out of the result.
 */
static long long wait_ns_empty(const char *nslink)
{
	long long start = now_us(), scan = start;
	const struct timespec tick = { 0, 100000 };

	if (nslink[0] == '\0')
		return -1;
	while (ns_has_process(nslink)) {
		if (now_us() - start > 10000000)
			return -1;
		nanosleep(&tick, NULL);
		scan = now_us();
	}
	return scan - start;
}

/*
 * noopen mode: authenticate and check the account, open no session, and
 * run CMD with PAMHOST_PID set to this process. Ends the transaction.
 * Returns 0 if both calls and CMD succeeded, else 1.
 */
static int session_less(long i, pam_handle_t *pamh, char **cmd)
{
	struct child_report rep;
	char pidenv[32];
	pid_t child_pid;
	int auth_rc, acct_rc, child;

	auth_rc = pam_authenticate(pamh, 0);
	acct_rc = pam_acct_mgmt(pamh, 0);
	snprintf(pidenv, sizeof(pidenv), "%ld", (long)getpid());
	setenv("PAMHOST_PID", pidenv, 1);
	child = run_session_child(cmd, 0, &rep, &child_pid);
	pam_end(pamh, acct_rc);
	fprintf(stderr, "session %ld auth=%s account=%s child=%d\n", i,
		rc_name(auth_rc), rc_name(acct_rc), child);
	return auth_rc != PAM_SUCCESS || acct_rc != PAM_SUCCESS || child != 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pamhost -c CONFDIR -s SERVICE -u USER [-n N] "
		"[-m fork|nofork|noclose|childclose|noopen|sudochld] [-t] [-e] [-S] "
		"[-- CMD ARGS...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *confdir = NULL, *service = NULL, *user = NULL;
	static char *default_cmd[] = { "/bin/ps", "-e", NULL };
	char **cmd = default_cmd;
	long n = 1;
	int fork_mode = 1, close_mode = 1, csv = 0, teardown = 0, stop = 0;
	int failed = 0, opt, child_close = 0, no_open = 0, sudo_order = 0;
	int statfd = -1;
	const struct pam_conv pc = { conv, NULL };

	/* '+': stop at the first non-option so CMD keeps its own flags. */
	while ((opt = getopt(argc, argv, "+c:s:u:n:m:teS")) != -1) {
		switch (opt) {
		case 'c': confdir = optarg; break;
		case 's': service = optarg; break;
		case 'u': user = optarg; break;
		case 'n': {
			char *end;

			n = strtol(optarg, &end, 10);
			if (*end != '\0' || n < 1)
				usage();
			break;
		}
		case 'm':
			if (strcmp(optarg, "fork") == 0)
				fork_mode = 1;
			else if (strcmp(optarg, "nofork") == 0)
				fork_mode = 0;
			else if (strcmp(optarg, "noclose") == 0)
				close_mode = 0;
			else if (strcmp(optarg, "childclose") == 0)
				child_close = 1;
			else if (strcmp(optarg, "noopen") == 0)
				no_open = 1;
			else if (strcmp(optarg, "sudochld") == 0)
				sudo_order = 1;
			else
				usage();
			break;
		case 't': csv = 1; break;
		case 'e': teardown = 1; break;
		case 'S': stop = 1; break;
		default: usage();
		}
	}
	if (!confdir || !service || !user)
		usage();
	if (optind < argc)
		cmd = argv + optind;
	if (cmd[0][0] != '/') {
		/* execve does no PATH search, and execvp is not safe after
		 * fork in a multi-threaded process. */
		fprintf(stderr, "pamhost: CMD must be an absolute path\n");
		exit(2);
	}
	/* Line-buffer both streams: each result line is one write(2), so
	 * lines from many hosts sharing a file do not interleave, and lines
	 * already printed survive if the process is killed. */
	setvbuf(stderr, NULL, _IOLBF, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sudo_order && (statfd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0) {
		perror("pamhost: /proc/self/status");
		return 1;
	}

	for (long i = 0; i < n; i++) {
		pam_handle_t *pamh = NULL;
		struct child_report rep = { .isolated = '0' };
		int open_rc, close_rc = -1, child = -1, rc;
		long long t0, t_open, open_us, total_us, start_open_us;
		long long close_us = -1, empty_us = -1;
		const char *close_name = "NONE";
		pid_t child_pid = -1;
		int caught = -1;

		t0 = now_us();
		rc = pam_start_confdir(service, user, &pc, confdir, &pamh);
		if (rc != PAM_SUCCESS) {
			fprintf(stderr, "pamhost: pam_start_confdir: %s\n",
				rc_name(rc));
			return 1;
		}
		if (no_open) {
			failed |= session_less(i, pamh, cmd);
			continue;
		}
		t_open = now_us();
		open_rc = pam_open_session(pamh, 0);
		open_us = now_us() - t_open;
		start_open_us = open_us + (t_open - t0);
		/* Like su: no child and no close after a failed open. */
		if (open_rc == PAM_SUCCESS) {
			child_closes = child_close ? pamh : NULL;
			if (sudo_order)
				child = run_sudo_order_child(cmd, statfd, &caught);
			else if (fork_mode)
				child = run_session_child(cmd, stop, &rep, &child_pid);
			else
				child = 0;
			t_open = now_us();
			if (close_mode) {
				close_rc = pam_close_session(pamh, 0);
				close_name = rc_name(close_rc);
			} else {
				close_rc = PAM_SUCCESS;
				close_name = "SKIPPED";
			}
			close_us = now_us() - t_open;
			/* Only an isolated child's namespace can empty. */
			if (teardown && rep.isolated == '1')
				empty_us = wait_ns_empty(rep.nspid);
		}
		pam_end(pamh, open_rc != PAM_SUCCESS ? open_rc : close_rc);
		total_us = now_us() - t0;
		if (open_rc != PAM_SUCCESS || close_rc != PAM_SUCCESS ||
		    child != 0)
			failed = 1;

		fprintf(stderr, "session %ld open=%s close=%s child=%d "
			"open_us=%lld total_us=%lld start_open_us=%lld", i,
			rc_name(open_rc), close_name, child, open_us, total_us,
			start_open_us);
		if (teardown)
			fprintf(stderr, " close_us=%lld empty_us=%lld",
				close_us, empty_us);
		if (child_close)
			fprintf(stderr, " child_close=%s child_pid=%ld",
				rep.close_rc < 0 ? "NONE" : rc_name(rep.close_rc),
				(long)child_pid);
		if (caught >= 0)
			fprintf(stderr, " sigchld=%s", caught ? "caught" : "lost");
		if (caught == 0)
			failed = 1;
		fputc('\n', stderr);
		if (csv) {
			printf("%ld,%lld,%lld,%c", i, open_us, total_us,
			       rep.isolated);
			if (teardown)
				printf(",%lld,%lld", close_us, empty_us);
			putchar('\n');
		}
	}
	return failed;
}
