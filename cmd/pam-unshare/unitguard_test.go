package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystemd answers systemctl the way systemd would for a few units and
// records every call.
type fakeSystemd struct {
	dir    string
	active map[string]bool
	calls  []string
	loaded bool // a daemon-reload ran since the last change
}

func (f *fakeSystemd) host() unitGuardHost {
	return unitGuardHost{dir: f.dir, systemctl: func(args ...string) (string, error) {
		f.calls = append(f.calls, strings.Join(args, " "))
		if args[0] == "daemon-reload" {
			f.loaded = true
		}
		if args[0] != "show" {
			return "", nil
		}
		unit := args[len(args)-1]
		switch args[1] {
		case "--property=LoadState":
			if unit == "missing.service" {
				return "not-found", nil
			}
			return "loaded", nil
		case "--property=ActiveState":
			if f.active[unit] {
				return "active", nil
			}
			return "inactive", nil
		case "--property=ProtectProc":
			// What a daemon-reload would load: the drop-in, if present.
			if _, err := os.Stat(filepath.Join(f.dir, unit+".d", unitGuardFile)); err == nil && f.loaded {
				return "invisible", nil
			}
			return "default", nil
		}
		return "", nil
	}}
}

func (f *fakeSystemd) did(call string) bool {
	for _, c := range f.calls {
		if c == call {
			return true
		}
	}
	return false
}

func TestUnitGuards(t *testing.T) {
	f := &fakeSystemd{dir: t.TempDir(), active: map[string]bool{"web.service": true}}
	var out, errb bytes.Buffer
	if err := unitGuards(f.host(), "enable", []string{"web.service", "jobs@.service"}, false, false, &out, &errb); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errb.String())
	}
	data, err := os.ReadFile(filepath.Join(f.dir, "web.service.d", unitGuardFile))
	if err != nil || !strings.Contains(string(data), "\n[Service]\nProtectProc=invisible\n") {
		t.Fatalf("drop-in: %v\n%s", err, data)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "jobs@.service.d", unitGuardFile)); err != nil {
		t.Errorf("template drop-in: %v", err)
	}
	if !f.did("daemon-reload") || f.did("restart web.service") {
		t.Errorf("calls: %q", f.calls)
	}
	// Restarts nothing silently: says which running unit needs it.
	if !strings.Contains(errb.String(), "systemctl restart web.service") {
		t.Errorf("no restart advice:\n%s", errb.String())
	}

	// Again, with --restart: nothing to write, the running unit restarts.
	f.calls = nil
	out.Reset()
	errb.Reset()
	if err := unitGuards(f.host(), "enable", []string{"web.service"}, false, true, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if f.did("daemon-reload") || !f.did("restart web.service") || !strings.Contains(out.String(), "already in place") {
		t.Errorf("calls %q\n%s", f.calls, out.String())
	}

	// Refused before anything changes: a unit systemd does not know, a
	// user manager, a name that is not a service.
	for _, bad := range [][]string{{"idle.service", "missing.service"}, {"user@1000.service"}, {"sshd"}, {"../x.service"}} {
		f.calls = nil
		if err := unitGuards(f.host(), "enable", bad, false, false, &out, &errb); err == nil {
			t.Errorf("enable --unit %q: no error", bad)
		}
		if _, err := os.Stat(filepath.Join(f.dir, bad[0]+".d")); err == nil {
			t.Errorf("enable --unit %q wrote %s", bad, bad[0])
		}
	}

	// disable removes the file and its directory, and reloads.
	f.calls = nil
	if err := unitGuards(f.host(), "disable", []string{"web.service"}, false, false, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "web.service.d")); !os.IsNotExist(err) {
		t.Errorf("web.service.d left: %v", err)
	}
	if !f.did("daemon-reload") {
		t.Errorf("calls %q", f.calls)
	}
}

// A drop-in that systemd does not load (another one overrides it) is an
// error, not a silent success.
func TestUnitGuardNotLoaded(t *testing.T) {
	f := &fakeSystemd{dir: t.TempDir()}
	h := f.host()
	inner := h.systemctl
	h.systemctl = func(args ...string) (string, error) {
		if len(args) > 1 && args[1] == "--property=ProtectProc" {
			return "default", nil
		}
		return inner(args...)
	}
	var out bytes.Buffer
	err := unitGuards(h, "enable", []string{"web.service"}, false, false, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "did not load the guard") {
		t.Errorf("err %v", err)
	}
}

func TestEnableUnitFlag(t *testing.T) {
	// The flag reaches unitGuards: a bad name is refused with its reason.
	code, _, errs := run("enable", "--unit", "user@1000.service")
	if code != 1 || !strings.Contains(errs, "the user managers have their own guard") {
		t.Errorf("exit %d: %s", code, errs)
	}
	code, _, errs = run("disable", "--unit")
	if code != 1 || !strings.Contains(errs, "name the units") {
		t.Errorf("exit %d: %s", code, errs)
	}
}
