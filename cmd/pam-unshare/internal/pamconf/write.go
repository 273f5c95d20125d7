package pamconf

// Writing service files, and their backups.
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
	"os"
	"path/filepath"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/atomicfile"
)

// WriteService replaces path with data atomically: a temporary file in the
// same directory with the old file's mode and owner, renamed over it. The old
// contents are kept in bak, in the backup directory of pamd.
func WriteService(path, bak, pamd string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := makeBackupDir(pamd); err != nil {
		return err
	}
	if err := atomicfile.Write(bak, old, st); err != nil {
		return fmt.Errorf("keeping a backup: %w", err)
	}
	return atomicfile.Write(path, data, st)
}

// systemBackupDir holds the backups of the files in DefaultDir.
const systemBackupDir = "/var/backups/pam-unshare"

// BackupSuffix names the backups releases up to 0.1.0 kept in pam.d.
const BackupSuffix = ".pam-unshare.bak"

// BackupDir returns where the backups of the files in pamd go: for
// ROOT/etc/pam.d, ROOT/var/backups/pam-unshare (so /etc/pam.d gets
// systemBackupDir, and a system image mounted at ROOT keeps its backups in
// its own tree); for any other directory DIR, DIR.pam-unshare-backups
// beside it, never inside it.
func BackupDir(pamd string) string {
	pamd = filepath.Clean(pamd)
	if root, ok := strings.CutSuffix(pamd, "/etc/pam.d"); ok {
		return filepath.Join("/", root, systemBackupDir)
	}
	return pamd + ".pam-unshare-backups"
}

// BackupPath is the backup of service svc of pamd.
func BackupPath(pamd, svc string) string {
	return filepath.Join(BackupDir(pamd), svc+".bak")
}

// makeBackupDir creates the backup directory, mode 0700: the backups hold
// the previous versions of security configuration.
func makeBackupDir(pamd string) error {
	dir := BackupDir(pamd)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	return nil
}

// MigrateBackups moves every SERVICE.pam-unshare.bak in pamd to the backup
// directory as SERVICE.bak. A backup already there was made later, by this
// release, and is kept; the older one is then deleted. With dryRun it only
// says what it would do. It prints one line per file.
func MigrateBackups(pamd string, dryRun bool, stdout io.Writer) error {
	ents, err := os.ReadDir(pamd)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		svc, ok := strings.CutSuffix(e.Name(), BackupSuffix)
		if !ok || svc == "" || !e.Type().IsRegular() {
			continue
		}
		old, dst := filepath.Join(pamd, e.Name()), BackupPath(pamd, svc)
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
