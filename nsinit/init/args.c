/*
 * args.c - the helper's command line, into struct nsinit_config.
 *
 * The grammar and the option letters are in ../handshake.h, the one table
 * both sides read. This parser and ParseHelperArgv (../helperargs.go) walk
 * the words the same way and refuse the same ones; the Go test
 * TestHelperArgvCParser builds this file alone with config_print.c and
 * runs it on the command lines HelperArgs.Argv writes. No getopt: glibc's
 * would reorder words and take bundled options ("-PU", "-g5") that the Go
 * side never writes or reads. Needs nothing but libc.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "../handshake.h"
#include "init.h"

/* The largest uid or gid: (uid_t)-1 means "no id" to the kernel. */
#define ID_MAX 4294967294LL

/* Read the decimal number in [s, end): digits only (no sign, no space),
 * at least one, at most `max`. Returns 0, or -1. */
static int parse_number(const char *s, const char *end, long long max, long long *v)
{
	long long n = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		int d = *s - '0';

		if (d < 0 || d > 9 || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

/* The value of an option: the next word. Returns it, or NULL if none. */
static const char *option_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* Set what option `opt` (a word starting with '-') says. Returns 0, or -1
 * for an unknown option or a bad value. */
static int option_set(struct nsinit_config *c, const char *opt, int argc, char **argv, int *i)
{
	const char *v = NULL;
	long long n, uid, gid;

	if (opt[1] == '\0' || opt[2] != '\0')
		return -1; /* one letter per word */
	switch (opt[1]) {
	case NSINIT_OPT_GRACE:
		if (!(v = option_value(argc, argv, i)) || parse_number(v, v + strlen(v), NSINIT_GRACE_MAX_MS, &n) < 0)
			return -1;
		c->grace_ms = (long)n;
		return 0;
	case NSINIT_OPT_PROPAGATION:
		if (!(v = option_value(argc, argv, i)))
			return -1;
		if (strcmp(v, NSINIT_PROPAGATION_SLAVE) == 0)
			c->propagation_private = 0;
		else if (strcmp(v, NSINIT_PROPAGATION_PRIVATE) == 0)
			c->propagation_private = 1;
		else
			return -1;
		return 0;
	case NSINIT_OPT_NO_PIDFD:
		c->no_pidfd = 1;
		return 0;
	case NSINIT_OPT_RELAY: { /* UID:GID */
		const char *colon;

		if (!(v = option_value(argc, argv, i)) || !(colon = strchr(v, ':')) ||
		    parse_number(v, colon, ID_MAX, &uid) < 0 ||
		    parse_number(colon + 1, colon + 1 + strlen(colon + 1), ID_MAX, &gid) < 0)
			return -1;
		c->relay = 1;
		c->relay_uid = (unsigned int)uid;
		c->relay_gid = (unsigned int)gid;
		return 0;
	}
	case NSINIT_OPT_PER_USER:
		c->per_user = 1;
		return 0;
	case NSINIT_OPT_HOST_PID:
		if (!(v = option_value(argc, argv, i)) || parse_number(v, v + strlen(v), INT_MAX, &n) < 0 || n == 0)
			return -1;
		c->host_pid = (long)n;
		return 0;
	case NSINIT_OPT_LINGER:
		c->linger = 1;
		return 0;
	}
	return -1;
}

int config_parse(int argc, char **argv, struct nsinit_config *c)
{
	int i;

	*c = (struct nsinit_config){ .grace_ms = NSINIT_GRACE_DEFAULT_MS };
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			break; /* the first label ("-" is one) */
		if (option_set(c, argv[i], argc, argv, &i) < 0)
			goto usage;
	}
	/* Linger only means something for a namespace that outlives a
	 * session; per-user mode needs pidfds to watch its hosts. */
	if ((c->linger && !c->per_user) || (c->per_user && c->no_pidfd))
		goto usage;
	/* SERVICE and USER: labels only. */
	if (argc - i != 2)
		goto usage;
	c->service = argv[i];
	c->user = argv[i + 1];
	return 0;
usage:
	errno = EINVAL;
	return -1;
}
