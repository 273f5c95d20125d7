package main

// The unit guard: enable --unit UNIT... gives system services that run
// users' code (a service with User=alice, a root master that forks workers
// per user, as PHP-FPM does) a /proc that shows each non-root process only
// its own user's processes, the way the user-manager guard does for
// user@.service. doctor's live check (hostwide.go) names the units.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/atomicfile"
)

// unitGuardDir is where the unit guard's drop-ins go.
const unitGuardDir = "/etc/systemd/system"

// unitGuardFile is the drop-in's name inside UNIT.d.
const unitGuardFile = "pam-unshare.conf"

// unitGuard is the drop-in. ProtectProc=invisible mounts a private procfs
// with hidepid=invisible in the unit's mount namespace: a root master
// still sees every process, a worker that runs as a user (and holds no
// CAP_SYS_PTRACE) sees only that user's processes. Nothing else is needed:
// measured with a service with User= and with a root master that forks
// setuid workers (test/vm/hostwide.sh). ProcSubset=pid is left out for the
// reason given at userManagerGuard (internal/guards).
const unitGuard = `# Installed by "pam-unshare enable --unit", removed by "pam-unshare disable --unit".
# The unit's processes get a private /proc with hidepid=invisible: those
# that run as a user see only that user's processes. See pam-unshare(8),
# section "Host-wide".
[Service]
ProtectProc=invisible
`

func unitGuardPath(unit string) string {
	return filepath.Join(unitGuardDir, unit+".d", unitGuardFile)
}

// checkUnitName accepts a system service name (an instance or a template).
func checkUnitName(u string) error {
	switch {
	case !strings.HasSuffix(u, ".service") || len(u) == len(".service"):
		return fmt.Errorf("%q: --unit takes service units (NAME.service): only they run processes a drop-in can give a /proc", u)
	case strings.HasPrefix(u, "user@"):
		return fmt.Errorf("%q: the user managers have their own guard, which \"%s enable\" installs", u, progName)
	case strings.HasPrefix(u, "."):
		return fmt.Errorf("%q is not a unit name", u)
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\@", r)) {
			return fmt.Errorf("%q is not a unit name (character %q)", u, r)
		}
	}
	return nil
}

// unitGuardHost is the system enable --unit acts on; tests replace it.
type unitGuardHost struct {
	dir       string // unitGuardDir
	systemctl func(args ...string) (string, error)
}

func liveUnitGuardHost() unitGuardHost {
	return unitGuardHost{dir: unitGuardDir, systemctl: func(args ...string) (string, error) {
		out, err := exec.Command("systemctl", args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}}
}

// show returns one property of a unit as systemd has it loaded.
func (h unitGuardHost) show(unit, prop string) string {
	out, err := h.systemctl("show", "--property="+prop, "--value", unit)
	if err != nil {
		return ""
	}
	return out
}

// unitGuards installs (op "enable") or removes the unit guard of each unit,
// reloads systemd once, and then restarts the running units if restart is
// set, or names them: ProtectProc= applies to processes the unit starts
// next, and a reload (ExecReload=) starts none in a new namespace.
func unitGuards(h unitGuardHost, op string, units []string, dryRun, restart bool, stdout, stderr io.Writer) error {
	if len(units) == 0 {
		return fmt.Errorf("%s --unit: name the units (doctor lists them: \"live units to guard\")", op)
	}
	for _, u := range units {
		if err := checkUnitName(u); err != nil {
			return err
		}
		if op == "enable" && !strings.Contains(u, "@.") {
			if st := h.show(u, "LoadState"); st == "not-found" {
				return fmt.Errorf("unit %s not found (nothing changed)", u)
			}
		}
	}
	changed := false
	var running []string
	for _, u := range units {
		p := filepath.Join(h.dir, u+".d", unitGuardFile)
		if op == "enable" {
			if old, err := os.ReadFile(p); err == nil && string(old) == unitGuard {
				fmt.Fprintf(stdout, "unit guard already in place: %s\n", p)
			} else if dryRun {
				fmt.Fprintf(stdout, "would install the unit guard: %s\n", p)
				continue
			} else {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := atomicfile.Write(p, []byte(unitGuard), atomicfile.Mode(0o644)); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "unit guard installed: %s\n", p)
				changed = true
			}
		} else {
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(stdout, "no unit guard for %s\n", u)
				continue
			}
			if dryRun {
				fmt.Fprintf(stdout, "would remove the unit guard: %s\n", p)
				continue
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			os.Remove(filepath.Dir(p)) // made by enable; only if empty
			fmt.Fprintf(stdout, "unit guard removed: %s\n", p)
			changed = true
		}
		if h.show(u, "ActiveState") == "active" || h.show(u, "ActiveState") == "reloading" {
			running = append(running, u)
		}
	}
	if dryRun {
		return nil
	}
	if changed {
		if out, err := h.systemctl("daemon-reload"); err != nil {
			return fmt.Errorf("systemctl daemon-reload: %v: %s", err, out)
		}
	}
	var errs []error
	if op == "enable" {
		for _, u := range units {
			if strings.Contains(u, "@.") {
				continue // a template has no loaded properties of its own
			}
			if v := h.show(u, "ProtectProc"); v != "invisible" {
				errs = append(errs, fmt.Errorf("%s: systemd did not load the guard (ProtectProc=%s); "+
					"a drop-in of higher priority (systemctl cat %s) may override it", u, v, u))
			}
		}
	}
	if len(running) == 0 {
		return errors.Join(errs...)
	}
	if restart {
		for _, u := range running {
			if out, err := h.systemctl("restart", u); err != nil {
				errs = append(errs, fmt.Errorf("systemctl restart %s: %v: %s", u, err, out))
				continue
			}
			fmt.Fprintf(stdout, "restarted %s\n", u)
		}
		return errors.Join(errs...)
	}
	what := "keep the host's /proc"
	if op == "disable" {
		what = "keep their private /proc"
	}
	fmt.Fprintf(stderr, "%s: running units %s until they restart (a reload does not give running processes a new /proc): "+
		"systemctl restart %s (or %s %s --unit --restart)\n", progName, what, strings.Join(running, " "), progName, op)
	return errors.Join(errs...)
}

// unitGuardCmd is enable --unit and disable --unit.
func unitGuardCmd(op string, units []string, dryRun, restart bool, stdout, stderr io.Writer) error {
	return unitGuards(liveUnitGuardHost(), op, units, dryRun, restart, stdout, stderr)
}
