/*
 * front.c - pam_unshare.so, the module that pam.d files name.
 *
 * The session work is done by a Go c-shared library (built from
 * pam_unshare/, installed at PU_GO_MODULE). A Go library starts the Go
 * runtime from an ELF constructor the moment it is loaded: threads, signal
 * handlers and a few MiB of memory, in every process that loads the PAM
 * stack. This front module is plain C, so pam_start, auth and account
 * stacks, failed logins and exempt users never start Go: the library is
 * loaded only when pam_sm_open_session runs.
 *
 * It also owns two rules of the PAM boundary:
 *
 *  - Load only what root put in place. The library is opened once, checked
 *    through that descriptor (root-owned regular file, not writable by group
 *    or others, nor is any directory above its real path: pu_trust_fd,
 *    nsinit/trust.c, the very code the Go library runs on the PID-1 helper
 *    and pam-unshare doctor on every file it checks) and loaded through the
 *    same descriptor (/proc/self/fd/N), so nothing can be swapped between
 *    the check and the load. Any failure refuses the session with
 *    PAM_SYSTEM_ERR and one syslog line naming the cause.
 *
 *  - No Go in a forked copy of the host. Only the forking thread survives
 *    fork(), and the Go runtime hangs without its threads. Hosts do fork
 *    and then call PAM in the child: util-linux su calls
 *    pam_end(PAM_DATA_SILENT) there. The process that opened the session
 *    is recorded with pam_set_data; pam_sm_close_session in any other
 *    process returns PAM_IGNORE without touching Go, and the record's
 *    cleanup (run by pam_end) is no code at all. The Go library's own
 *    pam_set_data cleanup (pam_unshare/glue.c) is C and makes the same
 *    check before it calls into Go.
 *
 * The library must be of this build: it exports PU_GO_ABI_FUNC, which
 * must return PU_GO_ABI (both in pam_unshare/abi/abi.h, the interface's
 * one header). That also makes sure that the object dlopen returned is
 * ours: glibc matches an already loaded object by its name, and
 * "/proc/self/fd/N" is a name that another loader could have used for
 * another file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "../nsinit/trust.h"
#include "../pam_unshare/abi/abi.h"

#ifndef PU_GO_MODULE
#error "PU_GO_MODULE (the Go library's installed path) is set by the Makefile"
#endif

/* The pam_set_data key for the pid that opened the session. */
#define OWNER_KEY "pam_unshare:front-owner"

typedef int (*pam_sm_fn)(pam_handle_t *, int, int, const char **);

/* The loaded library; set once per process, never unloaded (the Go linker
 * marks the library NODELETE). `loaded_by` is the pid that loaded it: a
 * forked copy sees a handle whose runtime has no threads. */
static struct {
	pam_sm_fn open, close;
	pid_t loaded_by;
} go;
static pthread_mutex_t go_lock = PTHREAD_MUTEX_INITIALIZER;

/* At most this many threads in the host when the library is loaded, for
 * the Go runtime to start on one CPU (see go_dlopen); sshd, su, sudo and
 * login have one. */
#define MAX_HOST_THREADS 64

/* Fill tids with the threads of this process; returns how many, or -1 if
 * there are more than max or /proc/self/task cannot be read. */
static int list_threads(pid_t *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == max) {
			n = -1;
			break;
		}
		tids[n++] = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return n;
}

/*
 * SIGCHLD is the one asynchronous signal the Go runtime never lets its
 * threads block (it is marked "unblock" in its signal table). A host that
 * blocks every signal on its thread, forks, and only then installs its
 * SIGCHLD handler (sudo does, in every command it runs without a
 * terminal) relies on the child's SIGCHLD staying pending until it
 * unblocks. With the runtime's threads in the process the kernel hands the
 * signal to one of them instead, under the disposition of that moment,
 * SIG_DFL, which discards it: the host never learns that its command
 * exited and waits forever.
 *
 * So while the host has no SIGCHLD handler of its own, this one stands in
 * for SIG_DFL: on a thread of the runtime it passes the signal on to the
 * thread that loaded the library (the host's), where it stays pending
 * until the host unblocks it; on the host's own thread it does nothing,
 * as SIG_DFL would. The host replaces it as soon as it installs a handler
 * of its own. Forked children get SIG_DFL back (reset_sigchld), so only
 * this process ever runs it. It is async-signal-safe: getpid, gettid and
 * tgkill only.
 */
static pid_t sigchld_pid, sigchld_tid;

static void forward_sigchld(int sig, siginfo_t *info, void *context)
{
	int saved = errno;

	(void)info;
	(void)context;
	if (getpid() == sigchld_pid && (pid_t)syscall(SYS_gettid) != sigchld_tid)
		syscall(SYS_tgkill, sigchld_pid, sigchld_tid, sig);
	errno = saved;
}

/* pthread_atfork child handler: a forked copy is a new host, single
 * threaded; it gets SIG_DFL back where it had the stand-in. */
static void reset_sigchld(void)
{
	struct sigaction cur;

	if (sigaction(SIGCHLD, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
	    cur.sa_sigaction == forward_sigchld)
		signal(SIGCHLD, SIG_DFL);
}

/*
 * Install forward_sigchld where the host's SIGCHLD is SIG_DFL (a host that
 * ignores SIGCHLD or has a handler keeps it). The handler's code must
 * outlive this module: libpam unloads it at pam_end, so it is first made
 * NODELETE, and nothing is installed if that fails.
 */
static void install_sigchld_forwarder(void)
{
	struct sigaction cur, sa;
	Dl_info self;

	if (sigaction(SIGCHLD, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) ||
	    cur.sa_handler != SIG_DFL)
		return;
	if (!dladdr((void *)forward_sigchld, &self) || !self.dli_fname ||
	    !dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE))
		return;
	if (pthread_atfork(NULL, NULL, reset_sigchld) != 0)
		return;
	sigchld_pid = getpid();
	sigchld_tid = (pid_t)syscall(SYS_gettid);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward_sigchld;
	/* SA_ONSTACK: it may run on a runtime thread, whose own stack is too
	 * small for C; SA_RESTART: the host's calls are not cut short. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
}

/*
 * dlopen path, and wait for the Go runtime to be up (`abi` is the first Go
 * call; a cgo export waits for the runtime's initialisation).
 *
 * The runtime sizes itself from the CPU affinity of the thread that starts
 * it: with N CPUs it runs N Ps and starts more threads. Its work here is
 * done on the host's thread, one session at a time, so one P is enough:
 * started on one CPU it runs one fewer thread and about 130 KiB less
 * memory per host (measured with make bench). GOMAXPROCS in the
 * environment cannot do this: the runtime of a library reads the
 * environment the process started with. So this thread is bound to the
 * CPU it is on while the runtime starts, and then it and every thread the
 * runtime started get the caller's affinity back.
 *
 * The runtime's threads must also never take the host's signals. A
 * process-directed signal (SIGCHLD, SIGTERM, ...) goes to any thread that
 * does not block it, and hosts are written for one thread: sudo blocks
 * signals while it sets up its handlers and relies on them staying
 * pending; a SIGCHLD taken by a runtime thread in that window is handled
 * under the old disposition and lost, and sudo waits forever for a
 * command that has exited. The runtime gives every thread it starts the
 * signal mask of the thread that started it (minus the signals it needs
 * itself: the synchronous ones and its preemption signal), so all signals
 * are blocked on this thread while the runtime starts, and the host's
 * mask is restored afterwards. SIGCHLD, which the runtime unblocks on its
 * threads whatever the mask, is handled by install_sigchld_forwarder.
 */
static void *go_dlopen(const char *path, int (**abi)(void))
{
	pid_t before[MAX_HOST_THREADS], after[MAX_HOST_THREADS + 16];
	int nbefore, nafter, cpu = sched_getcpu(), pinned = 0;
	cpu_set_t saved, one;
	sigset_t all, host_mask;
	void *h;

	nbefore = list_threads(before, MAX_HOST_THREADS);
	if (nbefore > 0 && cpu >= 0 &&
	    sched_getaffinity(0, sizeof(saved), &saved) == 0) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &host_mask);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	*(void **)abi = h ? dlsym(h, PU_GO_ABI_SYMBOL) : NULL;
	if (*abi)
		(*abi)(); /* the runtime is up once this returns */
	pthread_sigmask(SIG_SETMASK, &host_mask, NULL);
	if (*abi)
		install_sigchld_forwarder();
	if (!pinned)
		return h;
	sched_setaffinity(0, sizeof(saved), &saved);
	nafter = list_threads(after, MAX_HOST_THREADS + 16);
	for (int i = 0; i < nafter; i++) {
		int old = 0;

		for (int j = 0; j < nbefore && !old; j++)
			old = after[i] == before[j];
		if (!old)
			sched_setaffinity(after[i], sizeof(saved), &saved);
	}
	return h;
}

/* Open, check and load the Go library, once per process. Returns 0, or
 * -1 after logging why. Called with go_lock held. */
static int load_go(pam_handle_t *pamh)
{
	struct pu_trust trust;
	char fdpath[32];
	int (*abi)(void);
	void *h;
	int fd;

	if (go.open && go.loaded_by == getpid())
		return 0;
	if (go.open) {
		pam_syslog(pamh, LOG_ERR, "called in a forked copy of the process that "
			   "started the Go runtime; refusing the session");
		return -1;
	}
	fd = open(PU_GO_MODULE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot open the Go module %s: %m; "
			   "refusing the session", PU_GO_MODULE);
		return -1;
	}
	if (pu_trust_fd(fd, 0, &trust) < 0) {
		pam_syslog(pamh, LOG_ERR, "untrusted Go module %s: %s; refusing the "
			   "session", PU_GO_MODULE, trust.problem);
		close(fd);
		return -1;
	}
	/* Opening the magic link reopens the very file checked above. */
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	h = go_dlopen(fdpath, &abi);
	close(fd);
	if (!h) {
		pam_syslog(pamh, LOG_ERR, "cannot load the Go module %s: %s; refusing "
			   "the session", PU_GO_MODULE, dlerror());
		return -1;
	}
	*(void **)&go.open = dlsym(h, "pam_sm_open_session");
	*(void **)&go.close = dlsym(h, "pam_sm_close_session");
	if (!abi || abi() != PU_GO_ABI || !go.open || !go.close) {
		go.open = go.close = NULL;
		pam_syslog(pamh, LOG_ERR, "the Go module %s is not from this build of "
			   "pam_unshare (interface %d expected); refusing the session",
			   PU_GO_MODULE, PU_GO_ABI);
		return -1;
	}
	go.loaded_by = getpid();
	return 0;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
				   const char **argv)
{
	int rc, loaded;

	pthread_mutex_lock(&go_lock);
	loaded = load_go(pamh);
	pthread_mutex_unlock(&go_lock);
	if (loaded < 0)
		return PAM_SYSTEM_ERR;
	rc = go.open(pamh, flags, argc, argv);
	if (rc != PAM_SUCCESS)
		return rc;
	/* The pid is the data itself: no allocation, and no cleanup code that
	 * pam_end could run in a forked copy. */
	if (pam_set_data(pamh, OWNER_KEY, (void *)(intptr_t)getpid(), NULL) !=
	    PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "cannot store the session owner; "
			   "refusing the session");
		go.close(pamh, flags, argc, argv);
		return PAM_SYSTEM_ERR;
	}
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
				    const char **argv)
{
	const void *owner = NULL;
	int rc;

	/* No session of ours in this transaction (none opened, an exempt user,
	 * a refused open): nothing to do, and no reason to load Go. */
	if (pam_get_data(pamh, OWNER_KEY, &owner) != PAM_SUCCESS || !owner)
		return PAM_IGNORE;
	/* A forked copy of the host: the session is the parent's, and Go
	 * cannot run here. Quietly, since syslog is not safe here either. */
	if ((pid_t)(intptr_t)owner != getpid())
		return PAM_IGNORE;
	rc = go.close(pamh, flags, argc, argv);
	pam_set_data(pamh, OWNER_KEY, NULL, NULL);
	return rc;
}
