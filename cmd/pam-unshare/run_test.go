package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
	"github.com/pam-unshare/pam-unshare/pam_unshare/plan"
)

func TestPlanRun(t *testing.T) {
	o, err := options.Parse([]string{"propagation=private", "grace=0.5", "helper=/opt/h"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := planRun([]string{"sh", "-c", "exit 3"}, "", o, []string{"A=1"})
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := exec.LookPath("sh")
	if !filepath.IsAbs(p.argv[0]) || filepath.Base(p.argv[0]) != filepath.Base(sh) || strings.Join(p.argv[1:], " ") != "-c exit 3" {
		t.Errorf("argv %q", p.argv)
	}
	if p.cfg.Propagation != "private" || p.cfg.Grace != 500*time.Millisecond || p.cfg.HelperPath != "/opt/h" ||
		p.cfg.Service != runService || p.cfg.User == "" {
		t.Errorf("cfg %+v", p.cfg)
	}
	if strings.Join(p.env, " ") != "A=1" {
		t.Errorf("env %q", p.env)
	}

	perUser, _ := options.Parse([]string{"scope=user"})
	if _, err := planRun([]string{"sh"}, "", perUser, nil); err == nil || !strings.Contains(err.Error(), "scope=user") {
		t.Errorf("scope=user: %v", err)
	}
	if _, err := planRun([]string{"no-such-command-here"}, "", o, nil); err == nil {
		t.Error("missing command accepted")
	}
	if _, err := planRun([]string{"sh"}, "no-such-user-here", o, nil); err == nil || !strings.Contains(err.Error(), "--user no-such-user-here") {
		t.Errorf("missing user: %v", err)
	}
	if _, err := os.Stat(setprivPaths[0]); err != nil {
		t.Skip("setpriv not installed")
	}
	p, err = planRun([]string{"id", "-u"}, "root", o, []string{"TERM=xterm", "SECRET=1"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := exec.LookPath("id")
	id, _ = filepath.Abs(id)
	want := setprivPaths[0] + " --reuid=0 --regid=0 --init-groups --reset-env -- " + id + " -u"
	if strings.Join(p.argv, " ") != want || strings.Join(p.env, " ") != "TERM=xterm" || p.cfg.User != "root" {
		t.Errorf("argv %q env %q user %q", p.argv, p.env, p.cfg.User)
	}
	// What a PAM session of root with these options gets, under run's
	// service name.
	if session := plan.Make(o, runService, plan.Account{Name: "root"}).Config; !reflect.DeepEqual(p.cfg, session) {
		t.Errorf("run's namespace %+v, a session's %+v", p.cfg, session)
	}
}

func TestExitStatus(t *testing.T) {
	// Exit code 3, and death by SIGKILL (9), as wait(2) encodes them.
	if got := exitStatus(unix.WaitStatus(3 << 8)); got != 3 {
		t.Errorf("exit 3: %d", got)
	}
	if got := exitStatus(unix.WaitStatus(9)); got != 137 {
		t.Errorf("SIGKILL: %d", got)
	}
}

func TestCmdRunUsage(t *testing.T) {
	if code, _, errs := run("run"); code != 2 || !strings.Contains(errs, "no COMMAND given") {
		t.Errorf("%d %q", code, errs)
	}
	if code, _, errs := run("run", "--options", "bogus", "--", "true"); code != 1 || !strings.Contains(errs, "unknown option") {
		t.Errorf("%d %q", code, errs)
	}
}

// builtHelper returns the helper from "make build", if it is there and
// usable (root-owned, not writable by others).
func builtHelper(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and a build; not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	h, _ := filepath.Abs("../../build/pam_unshare-init")
	if msg := checkOwnership(h, true); msg != "" {
		t.Skipf("no usable helper at %s (make build): %s", h, msg)
	}
	if c := checkUnshare(true); c.Status != statusOK {
		t.Skipf("cannot create namespaces here (a build chroot or container?): %s", c.Message)
	}
	return h
}

// TestRunIsolated needs root and the helper from "make build".
func TestRunIsolated(t *testing.T) {
	h := builtHelper(t)
	// The command is PID 2, sees only PID 1, itself and the pipeline, and its
	// exit status comes back.
	code, _, errs := run("run", "--options", "helper="+h, "--", "/bin/sh", "-c",
		`test "$$" = 2 || exit 1; n=$(ls /proc | grep -c '^[0-9]'); test "$n" -le 5 || exit 2; exit 7`)
	if code != 7 {
		t.Errorf("exit %d, want 7; stderr %q", code, errs)
	}
	// The probe doctor uses.
	c := checkEndToEnd(true, h)
	if c.Status != statusOK {
		t.Errorf("%+v", c)
	}
}

// run relays the systemd user manager of the account the command runs as,
// as the module does, unless user_manager=off; with --user the command
// gets the user's XDG_RUNTIME_DIR when it exists, as pam_systemd sets it.
func TestPlanRunUserManager(t *testing.T) {
	runRoot := withRuntimeRoot(t)
	relay, _ := options.Parse(nil)
	off, _ := options.Parse([]string{"user_manager=off"})

	p, err := planRun([]string{"true"}, "", relay, []string{"XDG_RUNTIME_DIR=/run/user/4242"})
	if err != nil {
		t.Fatal(err)
	}
	if m := p.cfg.UserManager; m == nil || m.UID != os.Getuid() || m.GID != os.Getgid() {
		t.Errorf("caller: relays %+v, want %d:%d", m, os.Getuid(), os.Getgid())
	}
	if strings.Join(p.env, " ") != "XDG_RUNTIME_DIR=/run/user/4242" {
		t.Errorf("caller's environment changed: %q", p.env)
	}
	if p, _ := planRun([]string{"true"}, "", off, nil); p.cfg.UserManager != nil {
		t.Errorf("user_manager=off: relays %+v", p.cfg.UserManager)
	}

	if _, err := os.Stat(setprivPaths[0]); err != nil {
		t.Skip("setpriv not installed")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	id, _ := exec.LookPath("id")
	id, _ = filepath.Abs(id)
	setpriv := setprivPaths[0] + " --reuid=" + nobody.Uid + " --regid=" + nobody.Gid + " --init-groups --reset-env -- "

	// No runtime directory (the user is not logged in): no XDG_RUNTIME_DIR.
	p, err = planRun([]string{"id", "-u"}, "nobody", relay, []string{"TERM=xterm", "XDG_RUNTIME_DIR=/run/user/0"})
	if err != nil {
		t.Fatal(err)
	}
	if m := p.cfg.UserManager; m == nil || m.UID != uid || m.GID != gid {
		t.Errorf("--user nobody: relays %+v, want %d:%d", m, uid, gid)
	}
	if got := strings.Join(p.argv, " "); got != setpriv+id+" -u" || strings.Join(p.env, " ") != "TERM=xterm" {
		t.Errorf("no runtime directory: argv %q env %q", got, p.env)
	}

	// With one, env sets it after setpriv has cleared the environment.
	dir := filepath.Join(runRoot, nobody.Uid)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err = planRun([]string{"id", "-u"}, "nobody", relay, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(p.argv, " "), setpriv+firstExisting(envPaths)+" XDG_RUNTIME_DIR="+dir+" "+id+" -u"; got != want {
		t.Errorf("runtime directory: argv %q\nwant %q", got, want)
	}
	if p, _ := planRun([]string{"id"}, "nobody", off, nil); p.cfg.UserManager != nil {
		t.Errorf("--user, user_manager=off: relays %+v", p.cfg.UserManager)
	}
}
