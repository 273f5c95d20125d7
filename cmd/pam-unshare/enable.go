package main

// enable and disable: the file-system side of pamd.go.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pam-unshare/pam-unshare/pam_unshare/options"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/atomicfile"
)

// defaultPamd is where PAM reads service files.
const defaultPamd = "/etc/pam.d"

// edit is a planned change to one service file.
type edit struct {
	path   string // the file to write (symlinks resolved)
	shown  string // the path as the user named it
	before []byte
	res    enableResult
}

func cmdEnable(args []string, stdout, stderr io.Writer) error {
	return enableDisable("enable", args, stdout, stderr)
}

func cmdDisable(args []string, stdout, stderr io.Writer) error {
	return enableDisable("disable", args, stdout, stderr)
}

func enableDisable(name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(name, stderr)
	pamd := fs.String("pamd", defaultPamd, "edit PAM service files in `DIR`")
	dryRun := fs.Bool("dry-run", false, "print the changes as a unified diff and change nothing")
	var opts *string
	if name == "enable" {
		opts = fs.String("options", "", "module arguments `ARGS`, as one string (for example \"exempt_groups=wheel debug\")")
	}
	unitMode := fs.Bool("unit", false, "the names are systemd system services: install (remove) the unit guard, a drop-in with ProtectProc=invisible")
	restart := fs.Bool("restart", false, "with --unit: restart the running units, so that the change applies now")
	services, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		return err
	}
	if *unitMode {
		return unitGuardCmd(name, services, *dryRun, *restart, stdout, stderr)
	}
	if len(services) == 0 {
		// Every service through which a user gets processes (doors.go).
		if name == "enable" {
			services = allProcessServices(*pamd)
		} else {
			if services, err = filesUsingModule(newDirResolver(*pamd)); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "%s %s: services: %s\n", progName, name, strings.Join(services, " "))
	}
	var modArgs []string
	if opts != nil {
		if modArgs, err = moduleOptions(*opts); err != nil {
			return err
		}
	}

	// Backups an older release left in pam.d, where libpam reads them as
	// services (backups.go).
	if err := migrateBackups(*pamd, *dryRun, stdout); err != nil {
		return err
	}

	// Plan every change first, so that one bad service changes nothing.
	r := newDirResolver(*pamd)
	edits, errs := planServices(r, *pamd, services, name, modArgs)
	if len(errs) > 0 {
		for _, err := range errs[:len(errs)-1] {
			fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		}
		if len(edits) > 0 {
			fmt.Fprintf(stderr, "%s: nothing changed\n", progName)
		}
		return errs[len(errs)-1]
	}

	for _, e := range edits {
		for _, n := range e.res.notes {
			fmt.Fprintln(stderr, n)
		}
		if !e.res.changed {
			continue
		}
		if *dryRun {
			fmt.Fprint(stdout, unifiedDiff(e.shown, e.shown, e.before, e.res.out))
			continue
		}
		bak := backupPath(*pamd, filepath.Base(e.shown))
		if err := writeService(e.path, bak, *pamd, e.res.out); err != nil {
			return err
		}
		verb := "enabled in"
		if name == "disable" {
			verb = "disabled in"
		}
		fmt.Fprintf(stdout, "%s %s %s (previous version: %s)\n", moduleName, verb, e.shown, bak)
	}
	if err := updateGuards(name, *pamd, r, *dryRun, stdout, stderr); err != nil {
		return err
	}
	// disable changes the next sessions only: say what is still running.
	if name == "disable" && !*dryRun && *pamd == defaultPamd {
		if note := liveNote(liveSessions(r)); note != "" {
			fmt.Fprintln(stderr, note)
		}
	}
	return nil
}

// moduleOptions splits and checks --options the way the module will parse
// them, so a typo is caught now and not at the next login.
func moduleOptions(s string) ([]string, error) {
	if strings.ContainsAny(s, "#\n\\[]") {
		return nil, fmt.Errorf("--options %q: '#', '\\', brackets and newlines cannot be used in module arguments here", s)
	}
	args := strings.Fields(s)
	if _, err := options.Parse(args); err != nil {
		return nil, fmt.Errorf("--options: %v", err)
	}
	return args, nil
}

// planEdit reads one service file and computes its new contents.
func planEdit(r pamdResolver, pamd, svc, op string, modArgs []string) (edit, error) {
	if svc == "" || strings.ContainsRune(svc, '/') || svc == "." || svc == ".." {
		return edit{}, fmt.Errorf("%q is not a service name (a file name in %s)", svc, pamd)
	}
	shown := filepath.Join(pamd, svc)
	path, err := filepath.EvalSymlinks(shown)
	if errors.Is(err, fs.ErrNotExist) {
		if v := r.vendorFile(svc); v != "" {
			return edit{}, fmt.Errorf("service %q has no %s, only the distribution's default %s; "+
				"copy it to %s (which then takes its place) and run %s again", svc, shown, v, shown, op)
		}
		return edit{}, fmt.Errorf("unknown service %q: %s does not exist", svc, shown)
	}
	if err != nil {
		return edit{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return edit{}, err
	}
	var res enableResult
	if op == "enable" {
		res, err = enablePAM(r, svc, data, modArgs)
	} else {
		res, err = disablePAM(r, svc, data)
	}
	if err != nil {
		return edit{}, err
	}
	return edit{path: path, shown: shown, before: data, res: res}, nil
}

// writeService replaces path with data atomically: a temporary file in the
// same directory with the old file's mode and owner, renamed over it. The old
// contents are kept in bak, in the backup directory of pamd.
func writeService(path, bak, pamd string, data []byte) error {
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
