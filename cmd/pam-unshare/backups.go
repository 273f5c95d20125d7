package main

// The __migrate-backups command (internal/pamconf keeps the backups), and
// what disable leaves running.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/nsinit"
)

// migrateBackupsCmd is the hidden command the Debian postinst runs on
// upgrade, to move the backups an older release left in /etc/pam.d.
const migrateBackupsCmd = "__migrate-backups"

// cmdMigrateBackups is __migrate-backups [--pamd DIR].
func cmdMigrateBackups(args []string, stdout, stderr io.Writer) error {
	flags := newFlags(migrateBackupsCmd, stderr)
	pamd := flags.String("pamd", pamconf.DefaultDir, "move the backups left in `DIR`")
	if err := parseFlagsOnly(flags, args, stdout, stderr); err != nil {
		return err
	}
	err := pamconf.MigrateBackups(*pamd, false, stdout)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no pam.d at all: nothing to move
	}
	return err
}

// liveNote is the line disable prints while isolated namespaces live on:
// disable changes only future sessions, and never ends a running one.
func liveNote(sessions []session) string {
	if len(sessions) == 0 {
		return ""
	}
	what := "isolated sessions or per-user namespaces are"
	if len(sessions) == 1 {
		what = "isolated session or per-user namespace is"
	}
	return fmt.Sprintf("%s: %d %s still live; they end on their own when their processes end "+
		"(\"%s status\" lists them, \"%s stop USER\" ends a user's)", progName, len(sessions), what, progName, progName)
}

// liveSessions finds the live namespaces the way status does.
func liveSessions(r pamconf.Resolver) []session {
	procs, err := readProcs("/proc")
	if err != nil {
		return nil
	}
	return findSessions(procs, helperPaths(r, nsinit.DefaultHelperPath), 0)
}
