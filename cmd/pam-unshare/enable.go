package main

// enable and disable: flags, output and the guards; internal/pamconf plans
// and writes the service files.

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/udiff"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

func cmdEnable(args []string, stdout, stderr io.Writer) error {
	return enableDisable("enable", args, stdout, stderr)
}

func cmdDisable(args []string, stdout, stderr io.Writer) error {
	return enableDisable("disable", args, stdout, stderr)
}

func enableDisable(name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(name, stderr)
	pamd := fs.String("pamd", pamconf.DefaultDir, "edit PAM service files in `DIR`")
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
		// Every service through which a user gets processes (pamconf.ProcessServices).
		if name == "enable" {
			services = pamconf.AutoServices(*pamd)
		} else {
			if services, err = pamconf.FilesUsingModule(pamconf.NewDirResolver(*pamd)); err != nil {
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
	// services (pamconf.MigrateBackups).
	if err := pamconf.MigrateBackups(*pamd, *dryRun, stdout); err != nil {
		return err
	}

	// Plan every change first, so that one bad service changes nothing.
	r := pamconf.NewDirResolver(*pamd)
	edits, errs := pamconf.Plan(r, *pamd, services, name, modArgs)
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
		for _, n := range e.Result.Notes {
			fmt.Fprintln(stderr, n)
		}
		if !e.Result.Changed {
			continue
		}
		if *dryRun {
			fmt.Fprint(stdout, udiff.Unified(e.Shown, e.Shown, e.Before, e.Result.Out))
			continue
		}
		bak := pamconf.BackupPath(*pamd, filepath.Base(e.Shown))
		if err := pamconf.WriteService(e.Path, bak, *pamd, e.Result.Out); err != nil {
			return err
		}
		verb := "enabled in"
		if name == "disable" {
			verb = "disabled in"
		}
		fmt.Fprintf(stdout, "%s %s %s (previous version: %s)\n", pamconf.ModuleName, verb, e.Shown, bak)
	}
	if err := updateGuards(name, *pamd, r, *dryRun, stdout, stderr); err != nil {
		return err
	}
	// disable changes the next sessions only: say what is still running.
	if name == "disable" && !*dryRun && *pamd == pamconf.DefaultDir {
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
