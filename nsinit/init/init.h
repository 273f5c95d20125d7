/*
 * init.h - what init.c (the PID-1 helper's main, setup and per-session
 * loop) and user.c (its per-user mode) share. Both are linked into the one
 * static program pam_unshare-init.
 */
#ifndef PAM_UNSHARE_INIT_H
#define PAM_UNSHARE_INIT_H

#include <sys/types.h>

/* init.c: reap every child that has exited. */
void reap_children(void);

/* init.c: 1 if a process other than PID 1 runs in the namespace (zombies
 * do not count), else 0. */
int namespace_busy(void);

/* init.c: drain the signalfd, reaping on SIGCHLD. Returns 1 if SIGTERM,
 * SIGINT or SIGHUP was among the signals. */
int signals_drain(int sig_fd);

/* The most sessions (and not yet identified connections) one per-user
 * namespace serves at once; more connections are refused, and the module
 * refuses those logins. Static, so the helper never allocates. */
#define USER_MAX_SLOTS 512

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
	int sig_fd;                 /* the signalfd set up by init.c */
	int linger;                 /* -L */
	long first_host_pid;        /* -H */
	const char *first_service;  /* SERVICE from argv */
	int listen_fd;              /* NSINIT_FD_LISTEN, or -1 once withdrawn */
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
