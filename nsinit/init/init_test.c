/*
 * init_test.c - unit tests of the helper's small functions. Prints TAP.
 *
 * Built by "make test-unit" (and with sanitizers by "make test-sanitize")
 * from this file and every file of the helper but main.c: it tests the
 * functions init.h declares. Needs no root and changes nothing: /proc is
 * only read, and fixtures go to a temporary directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "../handshake.h"
#include "init.h"

static int tests, failed;

static void ok(int cond, const char *desc)
{
	tests++;
	if (!cond)
		failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tests, desc);
}

static char fixture[256]; /* the fixture /proc */

/* Write fixture/PID/stat with the given contents (NULL: no stat file). */
static void fake_stat(long pid, const char *stat)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%ld", fixture, pid);
	mkdir(path, 0755);
	if (!stat)
		return;
	snprintf(path, sizeof(path), "%s/%ld/stat", fixture, pid);
	f = fopen(path, "w");
	if (!f || fputs(stat, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* The fields after the state, as the kernel writes them (numbers only). */
#define TAIL " 1 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 4242 2473984 100\n"

/* /proc/PID/stat lines, and whether pid_running must take them for a
 * running process. The command name may hold spaces, parentheses and
 * newlines; only the last ')' ends it. */
static const struct {
	const char *stat; /* NULL: a process directory without stat */
	int running;
	const char *desc;
} stat_cases[] = {
	{ "(bash) S" TAIL, 1, "a sleeping process runs" },
	{ "(bash) Z" TAIL, 0, "a zombie does not run" },
	{ "(bash) X" TAIL, 0, "a dead (X) process does not run" },
	{ "(my prog) R" TAIL, 1, "spaces in the command name" },
	{ "(a) Z (b) S" TAIL, 1, "\") Z\" inside the command name is not the state" },
	{ "(x) R) Z" TAIL, 0, "\") R\" inside the name of a zombie is not the state" },
	{ "((sd-pam)) S" TAIL, 1, "parentheses around the command name" },
	{ "(a\nb) S" TAIL, 1, "a newline in the command name" },
	{ "()) D" TAIL, 1, "a command name that is one ')'" },
	{ "(cut off", 0, "a line without ')' does not count" },
	{ "(bash)", 0, "a line that ends after the name does not count" },
	{ "", 0, "an empty stat file does not count" },
	{ NULL, 0, "a process directory without stat does not count" },
};

static void test_pid_running_fixtures(void)
{
	char line[1024], desc[256];
	long pid = 10;

	proc_dir = fixture;
	for (size_t i = 0; i < sizeof(stat_cases) / sizeof(stat_cases[0]); i++, pid++) {
		const char *stat = stat_cases[i].stat;

		snprintf(line, sizeof(line), "%ld %s", pid, stat ? stat : "");
		fake_stat(pid, !stat ? NULL : *stat ? line : "");
		snprintf(desc, sizeof(desc), "pid_running: %s", stat_cases[i].desc);
		ok(pid_running(pid) == stat_cases[i].running, desc);
	}
	ok(pid_running(pid) == 0, "pid_running: a missing process does not run");
	/* The fields after the name are numbers; a read cut short in them
	 * still has the state. */
	snprintf(line, sizeof(line), "%ld (x) S", ++pid);
	while (strlen(line) < 600)
		strcat(line, " 0");
	fake_stat(pid, line);
	ok(pid_running(pid) == 1, "pid_running: a line longer than the read buffer");
}

static void test_namespace_busy_fixtures(void)
{
	char path[PATH_MAX];

	snprintf(fixture + strlen(fixture), sizeof(fixture) - strlen(fixture), "/ns");
	mkdir(fixture, 0755);
	proc_dir = fixture;
	fake_stat(1, "1 (pam_unshare) S" TAIL);
	fake_stat(2, "2 (bash) Z" TAIL);
	snprintf(path, sizeof(path), "%s/self", fixture);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sys", fixture);
	mkdir(path, 0755);
	ok(namespace_busy() == 0, "namespace_busy: PID 1 and a zombie are not a busy namespace");
	fake_stat(35, "35 (a) Z (b) S" TAIL);
	ok(namespace_busy() == 1, "namespace_busy: one more process that runs is");
	proc_dir = "/nonexistent-proc";
	ok(namespace_busy() == 0, "namespace_busy: an unreadable /proc is taken as empty");
}

/* pid_running on this machine's /proc: a real process renamed to the worst
 * name it can have, alive, then a zombie, then reaped. */
static void test_pid_running_real(void)
{
	int ready[2];
	char c;
	pid_t child;
	siginfo_t si;

	proc_dir = "/proc";
	ok(pid_running(getpid()) == 1, "pid_running: this process runs");
	if (pipe(ready) < 0) {
		perror("pipe");
		exit(2);
	}
	child = fork();
	if (child == 0) {
		prctl(PR_SET_NAME, "x) Z (y) X", 0, 0, 0);
		(void)write(ready[1], "r", 1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (child < 0 || read(ready[0], &c, 1) != 1) {
		perror("fork");
		exit(2);
	}
	close(ready[0]);
	ok(pid_running(child) == 1, "pid_running: a process named \"x) Z (y) X\" runs");
	kill(child, SIGKILL);
	/* Wait for its exit, but leave it a zombie. */
	waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT);
	ok(pid_running(child) == 0, "pid_running: the same process as a zombie does not run");
	waitpid(child, NULL, 0);
	ok(pid_running(child) == 0, "pid_running: the same process reaped does not run");
}

/* config_parse on argv (NULL-terminated, without argv[0]); returns its
 * result and leaves what it parsed in *st. *st is filled with garbage
 * first, so every default it has after a parse is one the parser set. */
static int parse(struct nsinit_config *st, const char *const *args)
{
	char *argv[16] = { "pam_unshare-init" };
	int argc = 1;

	while (*args && argc < 15)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	memset(st, 0xa5, sizeof(*st));
	return config_parse(argc, argv, st);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_config_parse(void)
{
	struct nsinit_config st;

	ok(parse(&st, ARGS("su", "alice")) == 0 && st.grace_ms == NSINIT_GRACE_DEFAULT_MS && !st.propagation_private && !st.no_pidfd &&
		   !st.relay && !st.per_user && !st.linger && st.host_pid == 0 && strcmp(st.service, "su") == 0 &&
		   strcmp(st.user, "alice") == 0,
	   "config_parse: SERVICE USER alone keeps the defaults");
	/* What nsinit's HelperArgs.Argv writes. */
	ok(parse(&st, ARGS("-g", "2500", "-m", "private", "-P", "--", "sshd", "bob")) == 0 && st.grace_ms == 2500 &&
		   st.propagation_private && st.no_pidfd,
	   "config_parse: -g -m private -P -- SERVICE USER");
	ok(parse(&st, ARGS("-m", "slave", "-g", "0", "su", "alice")) == 0 && st.grace_ms == 0 && !st.propagation_private,
	   "config_parse: -m slave, -g 0");
	ok(parse(&st, ARGS("-g", "1000", "--", "-", "-odd-user")) == 0, "config_parse: labels after -- may start with -");
	ok(parse(&st, ARGS("-m", "shared", "su", "alice")) < 0, "config_parse: -m shared is refused");
	ok(parse(&st, ARGS("-g", "-5", "su", "alice")) < 0, "config_parse: a negative grace period is refused");
	/* -g is whole decimal milliseconds up to NSINIT_GRACE_MAX_MS; strtol alone
	 * would take each of these (as 12, 5, 5, 0, a clamped LONG_MAX, 0). */
	{
		static const char *const bad_grace[] = { "12x", " 5", "+5", "0x10", "99999999999999999999", "" };

		for (size_t i = 0; i < sizeof(bad_grace) / sizeof(bad_grace[0]); i++) {
			char desc[80];

			snprintf(desc, sizeof(desc), "config_parse: -g '%s' is refused", bad_grace[i]);
			ok(parse(&st, ARGS("-g", bad_grace[i], "su", "alice")) < 0, desc);
		}
	}
	ok(parse(&st, ARGS("-g", "86400000", "su", "alice")) == 0 && st.grace_ms == NSINIT_GRACE_MAX_MS,
	   "config_parse: -g NSINIT_GRACE_MAX_MS is taken");
	ok(parse(&st, ARGS("-g", "86400001", "su", "alice")) < 0, "config_parse: -g above NSINIT_GRACE_MAX_MS is refused");
	ok(parse(&st, ARGS("-x", "su", "alice")) < 0, "config_parse: an unknown option is refused");
	ok(parse(&st, ARGS("-g")) < 0, "config_parse: -g without a value is refused");
	ok(parse(&st, ARGS("su")) < 0, "config_parse: USER missing is refused");
	ok(parse(&st, ARGS("su", "alice", "extra")) < 0, "config_parse: a third word is refused");
	ok(parse(&st, ARGS("-g", "1000", "-U", "-H", "42", "-L", "--", "sshd", "bob")) == 0 && st.per_user && st.linger &&
		   st.host_pid == 42,
	   "config_parse: per-user mode -U -H PID -L");
	/* -H is a PID, as ParseHelperArgv takes it: 1 to INT_MAX, digits only. */
	{
		static const char *const bad_pids[] = { "0", "-1", "+5", "12x", " 5", "2147483648", "" };

		for (size_t i = 0; i < sizeof(bad_pids) / sizeof(bad_pids[0]); i++) {
			char desc[64];

			snprintf(desc, sizeof(desc), "config_parse: -H '%s' is refused", bad_pids[i]);
			ok(parse(&st, ARGS("-U", "-H", bad_pids[i], "su", "alice")) < 0, desc);
		}
	}
	ok(parse(&st, ARGS("-U", "-H", "2147483647", "su", "alice")) == 0 && st.host_pid == 2147483647,
	   "config_parse: -H INT_MAX is taken");
	/* One option a word, as the Go side writes and reads them. */
	ok(parse(&st, ARGS("-UL", "su", "alice")) < 0, "config_parse: bundled options are refused");
	ok(parse(&st, ARGS("-g5", "su", "alice")) < 0, "config_parse: a value in the option's word is refused");
	ok(parse(&st, ARGS("su", "-P", "alice")) < 0, "config_parse: an option after the first label is read as a third label");
	ok(parse(&st, ARGS("-L", "su", "alice")) < 0, "config_parse: -L without -U is refused");
	ok(parse(&st, ARGS("-U", "-P", "su", "alice")) < 0, "config_parse: -U with the polling fallback -P is refused");
	ok(parse(&st, ARGS("-u", "1000:100", "sshd", "alice")) == 0 && st.relay && st.relay_uid == 1000 &&
		   st.relay_gid == 100,
	   "config_parse: -u UID:GID asks for the relay");
	ok(parse(&st, ARGS("sshd", "alice")) == 0 && !st.relay, "config_parse: no -u, no relay");
	{
		static const char *const bad_ids[] = { "1000", "1000:", ":100", "1000:100:1", "-1:100", "1000:+1",
						       "10 00:1", "4294967295:1", "1:99999999999", "x:1", "" };

		for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
			char desc[64];

			snprintf(desc, sizeof(desc), "config_parse: -u '%s' is refused", bad_ids[i]);
			ok(parse(&st, ARGS("-u", bad_ids[i], "su", "alice")) < 0, desc);
		}
	}
}

/* /proc/self/mountinfo lines (proc(5)) and what mountinfo_parse must make
 * of them; a NULL fstype: the line must be refused. */
static const struct {
	const char *line;
	unsigned long long id;
	unsigned int major, minor;
	const char *root, *mount_point, *fstype;
	const char *desc;
} mountinfo_cases[] = {
	{ "22 1 0:21 / /proc rw,nosuid - proc proc rw", 22, 0, 21, "/", "/proc", "proc",
	  "no optional fields" },
	{ "36 35 98:0 /mnt1 /mnt2 rw,noatime shared:1 master:2 - ext3 /dev/root rw,errors=continue", 36, 98, 0,
	  "/mnt1", "/mnt2", "ext3", "two optional fields" },
	{ "7 1 0:5 / /srv/a\\040b\\011c\\134d\\012e rw - proc proc rw", 7, 0, 5, "/",
	  "/srv/a b\tc\\d\ne", "proc", "octal escapes of space, tab, backslash and newline are undone" },
	{ "8 1 0:5 /sys /x\\9y\\04 rw - proc proc rw", 8, 0, 5, "/sys", "/x\\9y\\04", "proc",
	  "a backslash without three octal digits stays; a root below / is kept" },
	{ "9 1 0:5 / /x rw master:1", 0, 0, 0, NULL, NULL, NULL, "no separator: refused" },
	{ "9 1 0x5 / /x rw - proc proc rw", 0, 0, 0, NULL, NULL, NULL, "a device without ':': refused" },
	{ "9x 1 0:5 / /x rw - proc proc rw", 0, 0, 0, NULL, NULL, NULL, "a mount ID that is not a number: refused" },
	{ "9 1 0:5 / /x", 0, 0, 0, NULL, NULL, NULL, "a truncated line: refused" },
	{ "", 0, 0, 0, NULL, NULL, NULL, "an empty line: refused" },
};

static void test_mountinfo_parse(void)
{
	char line[256], desc[256];

	for (size_t i = 0; i < sizeof(mountinfo_cases) / sizeof(mountinfo_cases[0]); i++) {
		struct mount_entry e;
		int rc;

		snprintf(line, sizeof(line), "%s", mountinfo_cases[i].line);
		snprintf(desc, sizeof(desc), "mountinfo_parse: %s", mountinfo_cases[i].desc);
		rc = mountinfo_parse(line, &e);
		if (!mountinfo_cases[i].fstype) {
			ok(rc < 0, desc);
			continue;
		}
		ok(rc == 0 && e.id == mountinfo_cases[i].id &&
			   e.dev == makedev(mountinfo_cases[i].major, mountinfo_cases[i].minor) &&
			   strcmp(e.root, mountinfo_cases[i].root) == 0 &&
			   strcmp(e.mount_point, mountinfo_cases[i].mount_point) == 0 &&
			   strcmp(e.fstype, mountinfo_cases[i].fstype) == 0,
		   desc);
	}
}

/* Not being PID 1, we find ourselves under another number in /proc: to
 * procfs_is_ours it is a procfs of another PID namespace. */
static void test_procfs_is_ours(void)
{
	int fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);

	ok(fd >= 0 && !procfs_is_ours(fd), "procfs_is_ours: a procfs in which we are not PID 1 is not ours");
	if (fd >= 0)
		close(fd);
}

/* The poll loops of both modes take their timeout through
 * proc_watch_pollfd: no timer unless a failed sweep is due for a retry. */
static void test_proc_watch_pollfd(void)
{
	struct proc_watch w = { .mounts_fd = 7 };
	int timeout = -1;
	struct pollfd p = proc_watch_pollfd(&w, &timeout);

	ok(p.fd == 7 && p.events == POLLPRI && timeout == -1,
	   "proc_watch_pollfd: POLLPRI on the mount table, and no timeout while no retry is due");
	w.retry_ms = 40;
	proc_watch_pollfd(&w, &timeout);
	ok(timeout == 40, "proc_watch_pollfd: a due retry sets a timeout where there was none");
	timeout = 5;
	proc_watch_pollfd(&w, &timeout);
	ok(timeout == 5, "proc_watch_pollfd: a shorter timeout stays");
	timeout = 1000;
	proc_watch_pollfd(&w, &timeout);
	ok(timeout == 40, "proc_watch_pollfd: a longer timeout is cut to the retry");
}

/* A listener that accept() failed on for lack of a resource leaves the
 * poll set until its backoff ends or a descriptor frees; other errors
 * never pause it. */
static void test_listen_pause(void)
{
	struct listen_pause p = { .what = "test" };
	int timeout = -1, paused_ok = 1;
	struct pollfd pfd = listen_pollfd(9, &p, &timeout);

	ok(pfd.fd == 9 && pfd.events == POLLIN && timeout == -1, "listen_pollfd: polled, no timeout, while not paused");
	ok(!listen_failed(&p, EPERM) && !listen_failed(&p, ECONNABORTED) && p.resume_at == 0,
	   "listen_failed: a refused peer or an aborted connection does not pause");
	ok(listen_failed(&p, EMFILE) && p.wait_ms == LISTEN_PAUSE_FIRST_MS, "listen_failed: EMFILE pauses, first backoff");
	pfd = listen_pollfd(9, &p, &timeout);
	ok(pfd.fd == -1 && timeout > 0 && timeout <= LISTEN_PAUSE_FIRST_MS,
	   "listen_pollfd: a paused listener is left out of poll, and the timeout is cut to its backoff");
	timeout = 3;
	listen_pollfd(9, &p, &timeout);
	ok(timeout == 3, "listen_pollfd: a shorter timeout stays");
	for (int i = 0; i < 20; i++)
		paused_ok &= listen_failed(&p, i % 2 ? ENFILE : ENOBUFS);
	ok(paused_ok && listen_failed(&p, ENOMEM) && p.wait_ms == LISTEN_PAUSE_MAX_MS,
	   "listen_failed: ENFILE, ENOBUFS and ENOMEM pause too, the backoff doubles up to its maximum");
	listen_wake(&p);
	timeout = -1;
	pfd = listen_pollfd(9, &p, &timeout);
	ok(pfd.fd == 9 && timeout == -1, "listen_wake: a freed descriptor ends the pause at once");
	ok(p.wait_ms == LISTEN_PAUSE_MAX_MS, "listen_wake: the run of failures goes on (no second log line)");
	listen_served(&p);
	ok(p.wait_ms == 0 && p.resume_at == 0, "listen_served: an accepted connection ends the run");
	p.resume_at = now_ms() - 1;
	p.wait_ms = 40;
	pfd = listen_pollfd(9, &p, &timeout);
	ok(pfd.fd == 9 && p.resume_at == 0, "listen_pollfd: a pause whose time has come ends");
}

/* The relay's cap: at most RELAY_MAX_CONNS children; a reaped child frees
 * its place; the log line comes back only once all have ended. */
static void test_relay_cap(void)
{
	struct relay r = { .listen_fd = -1 };
	int room = 1;

	for (int i = 0; i < RELAY_MAX_CONNS; i++) {
		room &= relay_room(&r);
		relay_kid_add(&r, 100 + i);
	}
	ok(room && r.nkids == RELAY_MAX_CONNS, "relay_room: room for RELAY_MAX_CONNS children");
	ok(!relay_room(&r) && r.full_logged, "relay_room: no room for one more, and it is logged");
	relay_kid_add(&r, 999);
	ok(r.nkids == RELAY_MAX_CONNS, "relay_kid_add: never past the cap");
	relay_reaped(&r, 12345);
	ok(r.nkids == RELAY_MAX_CONNS, "relay_reaped: a child that is not a relay child frees nothing");
	relay_reaped(&r, 100);
	ok(r.nkids == RELAY_MAX_CONNS - 1 && relay_room(&r), "relay_reaped: a relay child's end frees its place");
	ok(r.full_logged, "relay_reaped: not logged again while the flood lasts");
	for (int i = 1; i < RELAY_MAX_CONNS; i++)
		relay_reaped(&r, 100 + i);
	ok(r.nkids == 0 && !r.full_logged, "relay_reaped: once every relay child has ended, the next flood is logged");
	relay_reaped(NULL, 100); /* no relay: nothing to do, no crash */
}

/* /proc/PID/limits as the kernel writes it. */
static const char limits_text[] =
	"Limit                     Soft Limit           Hard Limit           Units     \n"
	"Max cpu time              unlimited            unlimited            seconds   \n"
	"Max processes             40                   63432                processes \n"
	"Max open files            1024                 524288               files     \n"
	"Max locked memory         8388608              8388608              bytes     \n";

static void test_limits_find(void)
{
	struct rlimit lim;

	ok(limits_find(limits_text, "Max processes", &lim) == 0 && lim.rlim_cur == 40 && lim.rlim_max == 63432,
	   "limits_find: Max processes");
	ok(limits_find(limits_text, "Max open files", &lim) == 0 && lim.rlim_cur == 1024 && lim.rlim_max == 524288,
	   "limits_find: Max open files");
	ok(limits_find(limits_text, "Max cpu time", &lim) == 0 && lim.rlim_cur == RLIM_INFINITY &&
		   lim.rlim_max == RLIM_INFINITY,
	   "limits_find: unlimited");
	ok(limits_find(limits_text, "Max open", &lim) < 0, "limits_find: a name is matched whole");
	ok(limits_find(limits_text, "Max pending signals", &lim) < 0, "limits_find: a missing line");
	ok(limits_find("Max processes             40x   50\n", "Max processes", &lim) < 0,
	   "limits_find: a value that is not a number");
	ok(limits_find("Max processes             40\n", "Max processes", &lim) < 0, "limits_find: a missing hard limit");
	ok(limits_find("", "Max processes", &lim) < 0, "limits_find: empty text");
}

int main(void)
{
	char tmpl[] = "/tmp/init_test.XXXXXX";

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The functions under test log; keep the machine's log quiet. */
	setlogmask(LOG_MASK(LOG_EMERG));
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(fixture, sizeof(fixture), "%s", tmpl);
	test_pid_running_fixtures();
	test_namespace_busy_fixtures();
	test_pid_running_real();
	test_config_parse();
	test_mountinfo_parse();
	test_procfs_is_ours();
	test_proc_watch_pollfd();
	test_listen_pause();
	test_relay_cap();
	test_limits_find();
	printf("1..%d\n", tests);
	printf("%d passed, %d failed\n", tests - failed, failed);
	if (fork() == 0) {
		execlp("rm", "rm", "-rf", tmpl, (char *)NULL);
		_exit(127);
	}
	wait(NULL);
	return failed ? 1 : 0;
}
