/*
 * config_print.c - a test program, not part of the helper: run the
 * helper's own parser (args.c) on this program's command line and print
 * the struct nsinit_config it makes, one "field=value" line each, or exit
 * 1 if it refuses the command line. TestHelperArgvCParser
 * (../helperargs_test.go) builds it from args.c and this file and runs it
 * with the command lines HelperArgs.Argv writes.
 */
#include <stdio.h>

#include "../handshake.h"
#include "init.h"

int main(int argc, char **argv)
{
	struct nsinit_config c;

	if (config_parse(argc, argv, &c) < 0)
		return 1;
	printf("grace_ms=%ld\npropagation=%s\nno_pidfd=%d\nrelay=%d\nrelay_uid=%u\nrelay_gid=%u\n"
	       "per_user=%d\nhost_pid=%ld\nlinger=%d\nservice=%s\nuser=%s\n",
	       c.grace_ms, c.propagation_private ? NSINIT_PROPAGATION_PRIVATE : NSINIT_PROPAGATION_SLAVE, c.no_pidfd,
	       c.relay, c.relay_uid, c.relay_gid, c.per_user, c.host_pid, c.linger, c.service, c.user);
	return 0;
}
