/*
 * handshake.h - the wire contract between the host side of nsinit (Go, in
 * nsinit.go, helperargs.go, user.go) and the PID-1 helper (C, in init/).
 *
 * Both sides include this header, so each constant has exactly one
 * definition. Go reads them through cgo as C.NSINIT_*.
 */
#ifndef NSINIT_HANDSHAKE_H
#define NSINIT_HANDSHAKE_H

/* The helper's process name (comm), what ps -e and pgrep -x show. The helper
 * sets it with prctl(PR_SET_NAME); Go reads it as nsinit.HelperComm, and
 * pam-unshare status and the tests find helpers by it. At most 15 bytes. */
#define NSINIT_HELPER_COMM "pam_unshare"

/*
 * The helper's command line: one table for both sides. The host writes it
 * (HelperArgs.Argv, helperargs.go), the helper parses it (config_parse,
 * init/args.c) into struct nsinit_config, and pam-unshare status reads it
 * back from /proc/PID/cmdline (ParseHelperArgv). Both parsers read the
 * same grammar and refuse the same words; TestHelperArgvCParser runs the C
 * parser on what the Go side writes.
 *
 *   pam_unshare-init [-g GRACE_MS] [-m slave|private] [-P] [-u UID:GID]
 *                    [-U [-H HOST_PID] [-L]] [--] SERVICE USER
 *
 * Each option is a word of its own, and a value is the next word. "--", or
 * the first word that is not an option, ends the options; exactly SERVICE
 * and USER follow (labels only, for ps and status). Numbers are whole
 * decimal numbers, digits only. Go reads the letters as C.NSINIT_OPT_*.
 */
enum nsinit_opt {
	/* -g GRACE_MS: the grace period of the teardown, 0 to
	 * NSINIT_GRACE_MAX_MS; NSINIT_GRACE_DEFAULT_MS without -g. */
	NSINIT_OPT_GRACE = 'g',
	/* -m NSINIT_PROPAGATION_SLAVE (the default) or _PRIVATE: what / becomes
	 * in the session's mount namespace. */
	NSINIT_OPT_PROPAGATION = 'm',
	/* -P: no pidfds; poll PID 2 and the host once a second instead. */
	NSINIT_OPT_NO_PIDFD = 'P',
	/* -u UID:GID: relay the systemd user manager of UID (init/relay.c). */
	NSINIT_OPT_RELAY = 'u',
	/* -U: per-user mode (scope=user, init/user.c); needs pidfds. */
	NSINIT_OPT_PER_USER = 'U',
	/* -H HOST_PID: the first host's PID, 1 to INT_MAX (status only). */
	NSINIT_OPT_HOST_PID = 'H',
	/* -L: linger; only with -U. */
	NSINIT_OPT_LINGER = 'L',
};

/* The grace period without -g, and the module's default for grace=
 * (options.DefaultGrace reads it through nsinit.DefaultGrace). */
#define NSINIT_GRACE_DEFAULT_MS 1000
/* The largest -g the helper takes: a sanity bound only. The module's own
 * limit is options.MaxGrace (pam_unshare/options), 60 s. */
#define NSINIT_GRACE_MAX_MS 86400000L
/* The values of -m, and of the module's option propagation=. */
#define NSINIT_PROPAGATION_SLAVE "slave"
#define NSINIT_PROPAGATION_PRIVATE "private"

/* The helper's configuration, as config_parse (init/args.c) reads it from
 * the command line; HelperArgs (helperargs.go) is its Go form. */
struct nsinit_config {
	long grace_ms;            /* -g */
	int propagation_private;  /* -m private; 0: slave */
	int no_pidfd;             /* -P */
	int relay;                /* -u given */
	unsigned int relay_uid;   /* -u UID */
	unsigned int relay_gid;   /* -u GID */
	int per_user;             /* -U */
	long host_pid;            /* -H; 0: absent */
	int linger;               /* -L */
	const char *service;      /* SERVICE */
	const char *user;         /* USER */
};

/*
 * File descriptors the helper starts with. The host spawns the helper with
 * these numbers and nothing else; the helper closes every other descriptor.
 */
/* One end of a SOCK_SEQPACKET socketpair; the host keeps the other end. */
#define NSINIT_FD_CONTROL 3
/* A pidfd for the host process (the one that opened the PAM session), or
 * absent when the kernel has no pidfd_open. Readable once the host exits. */
#define NSINIT_FD_HOST 4
/* Per-user mode only (-U): the listening SOCK_SEQPACKET socket bound at
 * the user's rendezvous path (nsinit/user.go), where later sessions of the
 * user and the pam-unshare command connect. */
#define NSINIT_FD_LISTEN 5

/*
 * Messages on the control socket. Every message is one struct
 * nsinit_msg; SOCK_SEQPACKET keeps them whole.
 */
/* helper -> host: the new /proc is mounted; the session may start. */
#define NSINIT_MSG_READY 'R'
/* helper -> host: setup failed at step `step` with errno `err`. The helper
 * exits right after sending it. */
#define NSINIT_MSG_FAILED 'F'
/* host -> helper: pam_close_session ran; tear the namespace down. In
 * per-user mode: this session leaves; the namespace ends only when it was
 * the last one and linger is off. */
#define NSINIT_MSG_TERMINATE 'T'

/*
 * Per-user mode (-U): messages on connections accepted on NSINIT_FD_LISTEN.
 * The helper accepts only peers whose SO_PEERCRED uid is 0, and a fresh
 * connection is the only place JOIN, STATUS and STOP are honoured.
 */
/* host -> helper: count me as a session. Carries the host's own pidfd
 * (SCM_RIGHTS), the host's PID as the host sees it in `pid` and the PAM
 * service in `label` (both for status only). */
#define NSINIT_MSG_JOIN 'J'
/* helper -> host: joined and counted. Carries the helper's own pidfd
 * (SCM_RIGHTS) for setns(CLONE_NEWPID|CLONE_NEWNS). */
#define NSINIT_MSG_JOINED 'A'
/* helper -> host, per-user mode: answer to NSINIT_MSG_TERMINATE when the
 * namespace lives on (other sessions, or linger). When it ends instead,
 * the host gets end-of-file once the helper has exited. */
#define NSINIT_MSG_LEFT 'L'
/* admin -> helper: report. The helper answers with one NSINIT_MSG_STATUS
 * (`err` = number of sessions, `step` = 1 with linger) followed by one
 * NSINIT_MSG_SESSION per session (`pid`, `label`), then closes. */
#define NSINIT_MSG_STATUS 'S'
#define NSINIT_MSG_SESSION 'E'
/* admin -> helper: end the namespace now (pam-unshare stop). The helper
 * withdraws the rendezvous, tears down, and the connection reaches
 * end-of-file when it has exited. */
#define NSINIT_MSG_STOP 'K'

/* Setup steps the helper reports in a NSINIT_MSG_FAILED message. */
#define NSINIT_STEP_PROPAGATION 1 /* mount(MS_REC|MS_SLAVE or MS_PRIVATE) on / */
#define NSINIT_STEP_UMOUNT_PROC 2 /* umount2("/proc", MNT_DETACH) */
#define NSINIT_STEP_MOUNT_PROC 3  /* mount("proc", "/proc", "proc", ...) */
#define NSINIT_STEP_SIGNALS 4     /* sigprocmask + signalfd */
#define NSINIT_STEP_NOT_PID1 5    /* the helper is not PID 1 of a new namespace */
#define NSINIT_STEP_USAGE 6       /* bad command line (a bug, not a user error) */
#define NSINIT_STEP_CREDENTIALS 7 /* setgroups/setresgid/setresuid to root */
#define NSINIT_STEP_PIDFD 8       /* per-user mode: pidfd_open of ourselves, or listen() */
#define NSINIT_STEP_PROC_MOUNTS 9 /* detach every proc mount but the namespace's own */

/* nsinit_step_name says what failed at a NSINIT_STEP_* in words, for the
 * host's log line (nsinit.stepName in nsinit.go), or returns NULL for a
 * code that is not a step. */
static inline const char *nsinit_step_name(int step)
{
	switch (step) {
	case NSINIT_STEP_PROPAGATION:
		return "make / a slave or private mount";
	case NSINIT_STEP_UMOUNT_PROC:
		return "detach the host's /proc";
	case NSINIT_STEP_MOUNT_PROC:
		return "mount a new /proc";
	case NSINIT_STEP_SIGNALS:
		return "set up signals";
	case NSINIT_STEP_NOT_PID1:
		return "not PID 1 of a new PID namespace";
	case NSINIT_STEP_USAGE:
		return "bad command line";
	case NSINIT_STEP_CREDENTIALS:
		return "make its user and group ids root";
	case NSINIT_STEP_PIDFD:
		return "per-user setup (pidfd_open of itself, listen)";
	case NSINIT_STEP_PROC_MOUNTS:
		return "detach another proc mount (a view of another PID namespace)";
	}
	return 0;
}

/*
 * The protocol version, in the `version` byte of every message either side
 * sends (nsinit.ProtoVersion in user.go reads it). Builds before it existed
 * sent 0 there (the byte was padding, always zero) and speak the same
 * protocol as version 1. What every version keeps, so that a helper started
 * by an older package keeps serving logins after an upgrade and an old
 * module loaded in a long-running host (cron) can still join a new helper:
 * the 44-byte struct nsinit_msg, the message types below with their
 * meanings, and the rendezvous path. A version may add message types and
 * fields in `pad`; a peer ignores what it does not know. A change an older
 * peer cannot ignore must use another rendezvous path, so that the two
 * never meet. See "Upgrades" in README.md.
 *   0: before the version byte (pam_unshare up to this change)
 *   1: the version byte; the module checks the helper's PID namespace
 */
#define NSINIT_PROTO_VERSION 1

struct nsinit_msg {
	unsigned char type; /* NSINIT_MSG_* */
	unsigned char step; /* NSINIT_STEP_*, with NSINIT_MSG_FAILED */
	unsigned char version; /* the sender's NSINIT_PROTO_VERSION; 0 from older builds */
	unsigned char pad;
	int err; /* errno, with NSINIT_MSG_FAILED; a count, with NSINIT_MSG_STATUS */
	int pid; /* a host PID, with NSINIT_MSG_JOIN and NSINIT_MSG_SESSION */
	char label[32]; /* a PAM service, with NSINIT_MSG_JOIN and NSINIT_MSG_SESSION */
};

#endif
