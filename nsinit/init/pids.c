/*
 * pids.c - the processes of our namespace: reaping what the kernel
 * reparents to PID 1, and telling whether a process still runs. Read
 * through our own /proc, so only after main has mounted it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

const char *proc_dir = "/proc";

/* Reap every child that has exited: orphans the kernel reparented to us,
 * and relay children, whose slots free. */
void reap_children(struct relay *r)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		relay_reaped(r, pid);
}

int pid_running(long pid)
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

/* Zombies do not count (for PID 2 the parent that must reap it is the
 * host, outside the namespace). */
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
