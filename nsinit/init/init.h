/*
 * init.h - what the files of the PID-1 helper pam_unshare-init share (the
 * list of files and who calls whom is at the top of main.c). They are
 * linked into the one static program; init_test.c links all of them but
 * main.c.
 */
#ifndef PAM_UNSHARE_INIT_H
#define PAM_UNSHARE_INIT_H

#include <poll.h>
#include <sys/types.h>

#include "../handshake.h"

struct relay;

/* ---- fd.c: descriptor helpers ------------------------------------------- */

/* fd.c: CLOCK_MONOTONIC in milliseconds, what every backoff counts in. */
long now_ms(void);

/* fd.c: close *fd if it is open, and set it to -1. */
void close_fd(int *fd);

/* fd.c: close every descriptor from `first` up. */
void close_from(int first);

/* ---- pids.c: the processes of our namespace ----------------------------- */

/* pids.c: reap every child that has exited, telling the relay (r, or
 * NULL) which of its children are gone. */
void reap_children(struct relay *r);

/* pids.c: 1 if a process other than PID 1 runs in the namespace (zombies
 * do not count), else 0. */
int namespace_busy(void);

/* pids.c: whether process `pid` of our namespace runs: 1 yes, 0 no
 * (absent, or a zombie). */
int pid_running(long pid);

/* pids.c: where the processes of our namespace are listed once main has
 * mounted our /proc. A variable only so that init_test.c can point it at
 * fixtures. */
extern const char *proc_dir;

/* ---- procwatch.c: proc mounts of other PID namespaces ------------------- */

/* The watch on our mount table for proc mounts of other PID namespaces.
 * main sweeps once before READY, in either mode; the loop then watches
 * with the two functions below. */
struct proc_watch {
	int mounts_fd;  /* our /proc/self/mountinfo, watched with POLLPRI */
	dev_t proc_dev; /* device of our own /proc */
	long retry_ms;  /* 0, or the wait before retrying a failed sweep */
};

/* procwatch.c: remember which procfs is our /proc, open the mount table
 * to watch, and sweep it once. Returns 0, or -1 with errno set. */
int proc_watch_start(struct proc_watch *w);

/* procwatch.c: the pollfd that watches the mount table. Lowers *timeout (-1:
 * none) to the wait before retrying a failed sweep, if one is due. */
struct pollfd proc_watch_pollfd(const struct proc_watch *w, int *timeout);

/* procwatch.c: after poll, with the revents of that pollfd: sweep if the mount
 * table changed or a retry is due. A failure goes to syslog and is
 * retried with a backoff. */
void proc_watch_check(struct proc_watch *w, short revents);

/* The fields of one /proc/self/mountinfo line that the sweep uses. The
 * strings point into the line. */
struct mount_entry {
	unsigned long long id; /* mount ID, as statx reports it */
	dev_t dev;             /* the filesystem's device */
	char *root;            /* the directory of the filesystem mounted here */
	char *mount_point;
	char *fstype;
};

/* procwatch.c: split one mountinfo line (proc(5)) into *e, undoing its
 * octal escapes in place. Returns 0, or -1 for a line of another shape. */
int mountinfo_parse(char *line, struct mount_entry *e);

/* procwatch.c: whether the procfs whose root is `fd` is of our PID
 * namespace (its "self" reads 1). */
int procfs_is_ours(int fd);

/* ---- fd.c: listeners that may pause ------------------------------------- */

/*
 * A listening socket that poll() may stop watching for a while. accept()
 * that fails for lack of a resource (EMFILE, ENFILE, ENOMEM, ENOBUFS)
 * leaves the connection queued, so a level-triggered poll on the listener
 * would return at once, forever: the helper would spin on a core. Such a
 * listener is paused instead: its pollfd gets fd -1 (poll skips it) until
 * a descriptor frees (listen_wake: a session left, a relay child ended) or
 * a backoff timer runs out (LISTEN_PAUSE_FIRST_MS doubling to
 * LISTEN_PAUSE_MAX_MS), whichever comes first; the queued connection then
 * gets another try. One syslog line per run of failures.
 */
struct listen_pause {
	const char *what; /* names the listener in the log line */
	long resume_at;   /* CLOCK_MONOTONIC ms at which polling resumes; 0: not paused */
	long wait_ms;     /* the last backoff; 0 outside a run of failures */
};
#define LISTEN_PAUSE_FIRST_MS 10
#define LISTEN_PAUSE_MAX_MS 1000

/* fd.c: the pollfd of listener `fd` (POLLIN; fd -1 while paused).
 * Lowers *timeout (-1: none) to when a pause ends. */
struct pollfd listen_pollfd(int fd, struct listen_pause *p, int *timeout);

/* fd.c: accept() on the listener failed with `err`. A lack of a
 * resource pauses it (logged at the first failure of a run); anything
 * else concerns only that one connection. Returns 1 if paused. */
int listen_failed(struct listen_pause *p, int err);

/* fd.c: accept() on the listener succeeded: a run of failures is over. */
void listen_served(struct listen_pause *p);

/* fd.c: a descriptor (or a process) was freed: a paused listener is
 * tried again in the next round. */
void listen_wake(struct listen_pause *p);

/* fd.c: accept one connection on `listen_fd` whose peer (SO_PEERCRED)
 * has uid `uid`; one from anyone else is closed at once (EPERM). A lack
 * of a resource pauses the listener (listen_failed); a success ends a run
 * of failures (listen_served). Returns the connection (close-on-exec,
 * non-blocking), or -1 with errno set. */
int listen_accept(int listen_fd, uid_t uid, struct listen_pause *p);

/* ---- relay.c: the user manager's relay ---------------------------------- */

/* The most connections the relay serves at once, per helper (so per
 * session, or per user with scope=user): one relay child each. A
 * `systemctl --user` command holds one connection while it runs, and
 * `systemd-run --user --wait` none when there is a user bus (measured in
 * the VM scenario relay_flood), so this is room for 16 such commands at
 * once. Connections over it are accepted and
 * closed at once, not queued. Tests read the number from here. */
#define RELAY_MAX_CONNS 16

/* The relay of the user's systemd manager (relay.c; -u UID:GID). */
struct relay {
	int wanted;       /* -u given (main sets these three) */
	uid_t uid;        /* the session's user: the relay runs as them */
	gid_t gid;
	int on;           /* wanted, and set up; 0 after a failure */
	int stash_fd;     /* the mount namespace that holds our socket */
	int home_fd;      /* our own mount namespace, to come back to */
	int listen_fd;    /* our socket */
	dev_t dev;        /* our socket's inode, to know a covered path */
	ino_t ino;
	int real_fd;      /* O_PATH of the manager's socket we covered, or -1 */
	int watch_fd;     /* inotify, made when first needed, or -1 */
	int watch_wd;     /* its watch while waiting for that socket, or -1 */
	int watch_failed; /* inotify failed once (logged) */
	int cover_failed; /* the last cover failed (logged) */
	struct listen_pause pause; /* of listen_fd */
	int nkids;        /* relay children alive: kids[0..nkids) */
	pid_t kids[RELAY_MAX_CONNS];
	int full_logged;  /* the cap was hit (logged) and not all ended since */
};

/* The relay child's process name, as ps shows it in the session. */
#define RELAY_COMM "pam_unshare-bus"

/* relay.c: set up the relay if -u was given, and cover the manager's
 * socket if it is there. Returns 0, or -1 after logging why the session
 * goes on without it. Needs our own /proc. */
int relay_start(struct relay *r);

/* relay.c: look for the manager's socket again and cover it if it is not
 * covered; call after the mount table changed or a login joined. */
void relay_refresh(struct relay *r);

/* relay.c: the pollfds of our listening socket (only if `accepting` and
 * not paused; a pause lowers *timeout as listen_pollfd does) and of the
 * inotify watch; fd -1 when there is none, which poll() skips. */
struct pollfd relay_listen_pollfd(struct relay *r, int accepting, int *timeout);
struct pollfd relay_watch_pollfd(const struct relay *r);

/* relay.c: after poll, with the revents of those two pollfds: accept and
 * serve a connection, or look for the socket again. */
void relay_check(struct relay *r, short listen_revents, short watch_revents);

/* relay.c: whether another relay child may start (fewer than
 * RELAY_MAX_CONNS run). When not, says so in syslog once, until every
 * relay child has ended. */
int relay_room(struct relay *r);

/* relay.c: count child `pid` as a relay child (relay_room said yes). */
void relay_kid_add(struct relay *r, pid_t pid);

struct rlimit;
/* relay.c: the soft and hard limit named `name` ("Max processes") in
 * `text`, the contents of /proc/PID/limits, into *lim. Returns 0, or -1 if
 * there is no such line or its values are not numbers or "unlimited". */
int limits_find(const char *text, const char *name, struct rlimit *lim);

/* relay.c: child `pid` was reaped; if it was a relay child, its slot
 * frees. r may be NULL (no relay). */
void relay_reaped(struct relay *r, pid_t pid);

/* ---- loop.c: the event loop ------------------------------------------- */

/* loop.c: route SIGCHLD, SIGTERM, SIGINT and SIGHUP to a signalfd.
 * Returns it, or -1 with errno set. */
int signals_setup(void);

/* loop.c: drain the signalfd, reaping on SIGCHLD (reap_children). Returns
 * 1 if SIGTERM, SIGINT or SIGHUP was among the signals. */
int signals_drain(int sig_fd, struct relay *r);

/* The most sessions (and not yet identified connections) one per-user
 * namespace serves at once; more connections are refused, and the module
 * refuses those logins. Static, so the helper never allocates. */
#define USER_MAX_SLOTS 512

/* The most poll sources of one round: per-user mode's two per slot (the
 * connection and its host's pidfd), its listener, and the four every mode
 * has. Per-session mode uses seven. */
#define LOOP_MAX_FDS (5 + 2 * USER_MAX_SLOTS)

/* Where loop_begin puts the sources every mode has. */
enum loop_shared_source {
	LOOP_SIGNALS,      /* the signalfd */
	LOOP_MOUNTS,       /* the mount table (procwatch.c) */
	LOOP_RELAY_LISTEN, /* the relay's listener (relay.c) */
	LOOP_RELAY_WATCH,  /* the relay's inotify watch */
};

/* One round's poll sources, and the state every round shares. */
struct loop {
	int sig_fd;               /* the signalfd (main sets these three) */
	struct proc_watch *procs; /* the watch main started before READY */
	struct relay *relay;      /* the relay main started before READY */
	const char *what;         /* "the session" or "the namespace", for syslog */
	int n;                    /* sources in this round: pfd[0..n) */
	int timeout;              /* of this round's poll, ms; -1: none */
	/* What each source is, as the mode said; before pfd, so that the
	 * few sources of a session stay on one page with the rest. */
	short tag[LOOP_MAX_FDS];
	struct pollfd pfd[LOOP_MAX_FDS];
};

/* How a round's wait ended. */
enum loop_wait {
	LOOP_READY, /* sources have events: handle them */
	LOOP_AGAIN, /* interrupted: start the round again */
	LOOP_END,   /* a termination signal, or poll failed (logged): the
		     * namespace must go */
};

/* loop.c: start a round with the sources every mode has and a wait of
 * `timeout` ms (-1: none), lowered to the next retry or pause they have
 * due. The relay's listener is polled only if `accepting`. */
void loop_begin(struct loop *l, int timeout, int accepting);

/* loop.c: add a mode's source (fd -1: skipped) with the mode's `tag`
 * (0 to SHRT_MAX).
 * Returns its index in l->pfd. */
int loop_add(struct loop *l, struct pollfd p, int tag);

/* loop.c: wait for the round's sources; drain the signals (reaping). */
enum loop_wait loop_wait(struct loop *l);

/* loop.c: after a round's wait, serve the mount table (sweep; look for the
 * manager's socket again after a change) and the relay. */
void loop_shared(struct loop *l);

/* ---- args.c, session.c: the command line, per-session mode -------------- */

/* args.c: parse the command line (grammar in ../handshake.h) into *c,
 * defaults included. Returns 0, or -1 with errno EINVAL. */
int config_parse(int argc, char **argv, struct nsinit_config *c);

/* session.c: wait for the end of the session. Returns when the namespace
 * must go. host_fd: the host's pidfd, or -1 (use_pidfd 0: poll). */
void session_serve(struct loop *l, int use_pidfd, int host_fd);

/* ---- user.c: per-user mode ---------------------------------------------- */

/* One connection on the rendezvous, or the first session's control socket. */
struct user_slot {
	int ctl_fd;    /* the connection; -1 when the slot is free */
	int host_fd;   /* pidfd of the host, once it joined; else -1 */
	int joined;    /* 1 once counted as a session (NSINIT_MSG_JOINED sent) */
	int pid;       /* the host's PID as the host sees it (status only) */
	char label[32]; /* the PAM service (status only) */
};

/* State of per-user mode. */
struct user_ns {
	struct loop *loop;          /* main's, with the signals, watch and relay */
	int linger;                 /* -L */
	long first_host_pid;        /* -H */
	const char *first_service;  /* SERVICE from argv */
	int listen_fd;              /* NSINIT_FD_LISTEN, or -1 once withdrawn */
	struct listen_pause pause;  /* of listen_fd */
	int self_fd;                /* pidfd of ourselves, sent to joiners */
	int nslots;                 /* slots[0..nslots) may be in use */
	struct user_slot slots[USER_MAX_SLOTS];
};

/* How user_serve ended. */
enum user_end {
	USER_END_TEARDOWN, /* the namespace must be torn down (TERM, grace) */
	USER_END_EMPTY,    /* lingering processes are all gone: just exit */
};

/* user.c: take NSINIT_FD_CONTROL and NSINIT_FD_HOST as the first session
 * and open our own pidfd. Returns 0, or -1 with errno set. */
int user_setup(struct user_ns *u);

/* user.c: serve the user's sessions until the namespace must end. The
 * rendezvous is withdrawn (its socket closed) before it returns, so no
 * login can join a namespace that is ending. */
enum user_end user_serve(struct user_ns *u);

#endif
