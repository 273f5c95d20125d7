package main

// Backups of the service files enable and disable change, and what disable
// leaves running.
//
// libpam reads every file in /etc/pam.d as a service named after the file,
// a backup included, so the copies are kept where Debian keeps such things:
// /var/backups/pam-unshare/SERVICE.bak (directory mode 0700). Releases up to
// 0.1.0 kept them beside the service file as SERVICE.pam-unshare.bak;
// enable, disable and the package's postinst (__migrate-backups) move those.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pam-unshare/pam-unshare/nsinit"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/atomicfile"
)

// systemBackupDir holds the backups of the files in defaultPamd.
const systemBackupDir = "/var/backups/pam-unshare"

// backupSuffix names the backups releases up to 0.1.0 kept in pam.d.
const backupSuffix = ".pam-unshare.bak"

// migrateBackupsCmd is the hidden command the Debian postinst runs on
// upgrade, to move the backups an older release left in /etc/pam.d.
const migrateBackupsCmd = "__migrate-backups"

// backupDirFor returns where the backups of the files in pamd go: for
// ROOT/etc/pam.d, ROOT/var/backups/pam-unshare (so /etc/pam.d gets
// systemBackupDir, and a system image mounted at ROOT keeps its backups in
// its own tree); for any other directory DIR, DIR.pam-unshare-backups
// beside it, never inside it.
func backupDirFor(pamd string) string {
	pamd = filepath.Clean(pamd)
	if root, ok := strings.CutSuffix(pamd, "/etc/pam.d"); ok {
		return filepath.Join("/", root, systemBackupDir)
	}
	return pamd + ".pam-unshare-backups"
}

// backupPath is the backup of service svc of pamd.
func backupPath(pamd, svc string) string {
	return filepath.Join(backupDirFor(pamd), svc+".bak")
}

// makeBackupDir creates the backup directory, mode 0700: the backups hold
// the previous versions of security configuration.
func makeBackupDir(pamd string) error {
	dir := backupDirFor(pamd)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	return nil
}

// migrateBackups moves every SERVICE.pam-unshare.bak in pamd to the backup
// directory as SERVICE.bak. A backup already there was made later, by this
// release, and is kept; the older one is then deleted. With dryRun it only
// says what it would do. It prints one line per file.
func migrateBackups(pamd string, dryRun bool, stdout io.Writer) error {
	ents, err := os.ReadDir(pamd)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		svc, ok := strings.CutSuffix(e.Name(), backupSuffix)
		if !ok || svc == "" || !e.Type().IsRegular() {
			continue
		}
		old, dst := filepath.Join(pamd, e.Name()), backupPath(pamd, svc)
		_, err := os.Lstat(dst)
		newer := err == nil
		switch {
		case dryRun && newer:
			fmt.Fprintf(stdout, "would remove %s (a newer backup is %s)\n", old, dst)
		case dryRun:
			fmt.Fprintf(stdout, "would move %s to %s\n", old, dst)
		case newer:
			if err := os.Remove(old); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(stdout, "removed %s (a newer backup is %s)\n", old, dst)
		default:
			if err := moveFile(pamd, old, dst); err != nil {
				errs = append(errs, fmt.Errorf("moving %s: %w", old, err))
				continue
			}
			fmt.Fprintf(stdout, "moved %s to %s\n", old, dst)
		}
	}
	return errors.Join(errs...)
}

// moveFile moves old to dst, which may be on another file system (/etc and
// /var often are): a copy with old's mode and owner, then the removal.
func moveFile(pamd, old, dst string) error {
	st, err := os.Stat(old)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(old)
	if err != nil {
		return err
	}
	if err := makeBackupDir(pamd); err != nil {
		return err
	}
	if err := atomicfile.Write(dst, data, st); err != nil {
		return err
	}
	return os.Remove(old)
}

// cmdMigrateBackups is __migrate-backups [--pamd DIR].
func cmdMigrateBackups(args []string, stdout, stderr io.Writer) error {
	flags := newFlags(migrateBackupsCmd, stderr)
	pamd := flags.String("pamd", defaultPamd, "move the backups left in `DIR`")
	if err := parseFlagsOnly(flags, args, stdout, stderr); err != nil {
		return err
	}
	err := migrateBackups(*pamd, false, stdout)
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
func liveSessions(r Resolver) []session {
	procs, err := readProcs("/proc")
	if err != nil {
		return nil
	}
	return findSessions(procs, helperPaths(r, nsinit.DefaultHelperPath), 0)
}
