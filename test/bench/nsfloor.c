/*
 * nsfloor - the syscall floor of an isolated session: a host that does only
 * what a session needs, with no PAM, no Go and no checks, so that the
 * benchmark can give every latency as a ratio to what the kernel itself
 * costs.
 *
 *   nsfloor [-c X -s X -u X] [-n N] [-m fork|nofork] [-t] [-x]
 *           [-- CMD ARGS...]
 *
 * The command line is pamhost's (test/pamhost.c), so that bench.sh runs
 * both the same way; -c, -s and -u are accepted and ignored. For each of
 * N sessions, in this one process:
 *   open:  unshare(CLONE_NEWPID | CLONE_NEWNS); make / a slave mount; fork
 *          PID 1, which detaches the old /proc, mounts a new one and writes
 *          one byte to a ready pipe; wait for that byte.
 *   fork mode: fork the leader (PID 2), which execs CMD; wait for it.
 *   close: close PID 1's control pipe (it exits, which ends the
 *          namespace), reap it, and setns back to the original PID and
 *          mount namespaces.
 * With -x, PID 1 first execs this program again (as "nsfloor --pid1",
 * its pipes on descriptors 3 and 4), as the module's PID 1 is a program
 * of its own: the difference is what an exec of a small static program
 * adds to the floor. (Built with musl-gcc -static, as the helper is, when
 * it is installed.)
 * Output is pamhost's: one line per session on stderr
 *   session I open=PAM_SUCCESS close=PAM_SUCCESS child=EXIT open_us=U
 *   total_us=T start_open_us=S
 * (the PAM words are kept so that the same patterns read both hosts; S is
 * U here: there is no pam_start), and with -t on stdout
 *   I,OPEN_US,TOTAL_US,ISOLATED
 * ISOLATED is 1 when the leader saw getpid() == 2 and /proc/self == "2".
 * Root only. Exit status 0 if every session worked, 1 otherwise, 2 on a
 * usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
	fprintf(stderr, "nsfloor: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* PID 1: a fresh /proc, ready, then wait until the host closes ctl. Runs
 * in a forked copy of a single-threaded process: only system calls. */
static void pid1(int ready, int ctl)
{
	char c = 'R';

	if (umount2("/proc", MNT_DETACH) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		c = 'E';
	if (write(ready, &c, 1) != 1 || c != 'R')
		_exit(1);
	close(ready);
	while (read(ctl, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* This program's path, read before any fork (-x execs it). */
static char self_exe[4096];

/* PID 1 with -x: the same, from a fresh program image. */
static void exec_pid1(int ready, int ctl)
{
	static char *argv[] = { "nsfloor", "--pid1", NULL };
	char c = 'E';

	if (dup2(ready, 3) == 3 && dup2(ctl, 4) == 4)
		execve(self_exe, argv, environ);
	(void)!write(ready, &c, 1);
	_exit(127);
}

/* The leader: report whether it is PID 2 with its own /proc, exec CMD. */
static void leader(int report, char **cmd)
{
	char buf[16] = "";
	char c = '0';
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (getpid() == 2 && n == 1 && buf[0] == '2')
		c = '1';
	if (write(report, &c, 1) != 1)
		_exit(126);
	close(report);
	execve(cmd[0], cmd, environ);
	_exit(127);
}

int main(int argc, char **argv)
{
	static char *no_cmd[] = { "/bin/true", NULL };
	char **cmd = no_cmd;
	long n = 1;
	int opt, csv = 0, fork_mode = 1, failed = 0, exec = 0;

	if (argc == 2 && strcmp(argv[1], "--pid1") == 0)
		pid1(3, 4);
	while ((opt = getopt(argc, argv, "+c:s:u:n:m:tx")) != -1) {
		switch (opt) {
		case 'c': case 's': case 'u': break;
		case 'n': n = atol(optarg); break;
		case 'm':
			if (strcmp(optarg, "nofork") == 0)
				fork_mode = 0;
			else if (strcmp(optarg, "fork") != 0)
				goto usage;
			break;
		case 't': csv = 1; break;
		case 'x': exec = 1; break;
		default: goto usage;
		}
	}
	if (n < 1)
		goto usage;
	if (exec && readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) <= 0)
		die("readlink /proc/self/exe");
	if (optind < argc)
		cmd = argv + optind;
	if (cmd[0][0] != '/') {
		fprintf(stderr, "nsfloor: CMD must be an absolute path\n");
		return 2;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (long i = 0; i < n; i++) {
		int pidns, mntns, ready[2], ctl[2], rep[2], st, child = 0;
		long long t0, open_us, total_us;
		char c = 0, iso = '0';
		pid_t p1, p2;

		t0 = now_us();
		pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
		if (pidns < 0 || mntns < 0)
			die("open /proc/self/ns");
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
			die("unshare");
		if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
			die("mount / slave");
		if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0)
			die("pipe");
		p1 = fork();
		if (p1 < 0)
			die("fork PID 1");
		if (p1 == 0) {
			close(ready[0]);
			close(ctl[1]);
			if (exec)
				exec_pid1(ready[1], ctl[0]);
			pid1(ready[1], ctl[0]);
		}
		close(ready[1]);
		close(ctl[0]);
		if (read(ready[0], &c, 1) != 1 || c != 'R') {
			fprintf(stderr, "nsfloor: PID 1 did not mount /proc\n");
			return 1;
		}
		close(ready[0]);
		open_us = now_us() - t0;

		if (fork_mode) {
			if (pipe2(rep, O_CLOEXEC) < 0)
				die("pipe");
			p2 = fork();
			if (p2 < 0)
				die("fork the leader");
			if (p2 == 0) {
				close(rep[0]);
				leader(rep[1], cmd);
			}
			close(rep[1]);
			if (read(rep[0], &iso, 1) != 1)
				iso = '0';
			close(rep[0]);
			while (waitpid(p2, &st, 0) < 0)
				if (errno != EINTR)
					die("waitpid");
			child = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		}

		close(ctl[1]);
		while (waitpid(p1, &st, 0) < 0)
			if (errno != EINTR)
				die("waitpid");
		if (setns(pidns, CLONE_NEWPID) < 0 ||
		    setns(mntns, CLONE_NEWNS) < 0)
			die("setns");
		close(pidns);
		close(mntns);
		total_us = now_us() - t0;
		if (child != 0)
			failed = 1;
		fprintf(stderr, "session %ld open=PAM_SUCCESS close=PAM_SUCCESS "
			"child=%d open_us=%lld total_us=%lld start_open_us=%lld\n",
			i, child, open_us, total_us, open_us);
		if (csv)
			printf("%ld,%lld,%lld,%c\n", i, open_us, total_us, iso);
	}
	return failed;
usage:
	fprintf(stderr, "usage: nsfloor [-n N] [-m fork|nofork] [-t] [-x] "
		"[-- CMD ARGS...]\n");
	return 2;
}
