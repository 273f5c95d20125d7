package main

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/doctor"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// withRuntimeRoot points runtimeDirRoot at a fresh directory for one test.
func withRuntimeRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	old := runtimeDirRoot
	runtimeDirRoot = dir
	t.Cleanup(func() { runtimeDirRoot = old })
	return dir
}

// managerSocketFixture makes root/NAME/systemd/private a unix socket owned
// by owner (chown needs root; without it the socket stays this user's).
func managerSocketFixture(t *testing.T, root, name string, owner int) {
	t.Helper()
	path := filepath.Join(root, name, managerSocket)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if owner != os.Getuid() {
		if err := os.Lchown(path, owner, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// The user managers the check may use: a socket at /run/user/UID/systemd/
// private owned by UID; users before root, lowest UID first.
func TestRunningManagers(t *testing.T) {
	dir := t.TempDir()
	me := os.Getuid()
	if me != 0 {
		managerSocketFixture(t, dir, strconv.Itoa(me), me)
		if got := runningManagers(dir); !slices.Equal(got, []int{me}) {
			t.Errorf("got %v, want [%d]", got, me)
		}
		t.Skip("the rest needs root, to chown the fixtures")
	}
	managerSocketFixture(t, dir, "0", 0)
	managerSocketFixture(t, dir, "1000", 1000)
	managerSocketFixture(t, dir, "999", 999)
	managerSocketFixture(t, dir, "4242", 1000) // someone else's socket
	managerSocketFixture(t, dir, "0999", 999)  // not how systemd names it
	managerSocketFixture(t, dir, "lp", 7)
	// A regular file where the socket belongs.
	os.MkdirAll(filepath.Join(dir, "1001", "systemd"), 0o755)
	os.WriteFile(filepath.Join(dir, "1001", managerSocket), nil, 0o644)
	os.Lchown(filepath.Join(dir, "1001", managerSocket), 1001, 0)
	// A runtime directory without a manager (the manager has stopped).
	os.MkdirAll(filepath.Join(dir, "1002", "systemd"), 0o755)

	if got := runningManagers(dir); !slices.Equal(got, []int{999, 1000, 0}) {
		t.Errorf("got %v, want [999 1000 0]", got)
	}
	if got := runningManagers(filepath.Join(dir, "none")); len(got) != 0 {
		t.Errorf("no /run/user: %v", got)
	}
}

// trustFixtures makes the check take the test's sockets, which nothing
// listens on, for real managers (TestManagerPeer tests the real test).
func trustFixtures(t *testing.T) {
	t.Helper()
	old := checkManagerPeer
	checkManagerPeer = func(string, int) error { return nil }
	t.Cleanup(func() { checkManagerPeer = old })
}

func TestPickManagerUser(t *testing.T) {
	trustFixtures(t)
	dir := t.TempDir()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	u, why := pickManagerUser(dir, "")
	if u != nil || !strings.Contains(why, "no systemd user manager runs") ||
		!strings.Contains(why, `"loginctl enable-linger USER"`) || !strings.Contains(why, "--manager-user USER") {
		t.Errorf("none running: %v %q", u, why)
	}
	if u, why := pickManagerUser(dir, me.Username); u != nil ||
		!strings.Contains(why, "no systemd user manager runs for "+me.Username) || !strings.Contains(why, "loginctl enable-linger") {
		t.Errorf("--manager-user without a manager: %v %q", u, why)
	}
	if u, why := pickManagerUser(dir, "no-such-user-here"); u != nil || !strings.Contains(why, "--manager-user no-such-user-here") {
		t.Errorf("unknown user: %v %q", u, why)
	}
	managerSocketFixture(t, dir, me.Uid, os.Getuid())
	if u, why := pickManagerUser(dir, ""); u == nil || u.Uid != me.Uid {
		t.Errorf("running: %v %q", u, why)
	}
	if u, why := pickManagerUser(dir, me.Username); u == nil || u.Uid != me.Uid {
		t.Errorf("--manager-user with a manager: %v %q", u, why)
	}
}

// The services whose sessions run the module, and which of them relay.
func TestModuleServices(t *testing.T) {
	dir := copyPamd(t)
	for _, e := range [][]string{{"su", "user_manager=off"}, {"sshd", "propagation=private"}} {
		if code, out, errs := run("enable", "--pamd", dir, "--options", e[1], e[0]); code != 0 {
			t.Fatalf("enable %s: %d %s%s", e[0], code, out, errs)
		}
	}
	got := map[string]string{}
	for _, s := range moduleServices(pamconf.NewDirResolver(dir)) {
		got[s.name] = s.opts.UserManager + " " + s.opts.Propagation
	}
	want := map[string]string{"su": "off slave", "su-l": "off slave", "sshd": "relay private"}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %q, want %q (all: %v)", n, got[n], w, got)
		}
	}
}

// managerCase runs the check with a manager fixture for the current user
// and canned outputs for systemctl in the session and on the host.
type managerCase struct {
	services          []moduleService
	inSession, onHost string
	sessionErr        error
	hostErr           error
}

func (mc managerCase) check(t *testing.T) (check, []string, bool) {
	t.Helper()
	var runArgs []string
	hostAsked := false
	p := managerProbe{
		root: true, helper: "/bin/true", systemctl: "/usr/bin/systemctl", services: mc.services,
		inSession: func(args []string) (string, error) { runArgs = args; return mc.inSession, mc.sessionErr },
		onHost:    func([]string) (string, error) { hostAsked = true; return mc.onHost, mc.hostErr },
	}
	return checkUserManager(p), runArgs, hostAsked
}

func serviceWith(t *testing.T, name string, args ...string) moduleService {
	t.Helper()
	o, err := options.Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	return moduleService{name: name, opts: o}
}

func TestCheckUserManager(t *testing.T) {
	trustFixtures(t)
	root := withRuntimeRoot(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	relay := serviceWith(t, "sshd", "propagation=private")
	off := serviceWith(t, "su", "user_manager=off")
	failed := errors.New("exit status 1")
	noData := "Failed to connect to bus: No data available"

	// No manager: skip, saying how to get one.
	c, args, _ := managerCase{}.check(t)
	if c.Status != statusSkip || !strings.Contains(c.Message, "no systemd user manager runs") ||
		!strings.Contains(c.Message, "loginctl enable-linger") || args != nil {
		t.Errorf("no manager: %+v, ran %q", c, args)
	}
	// Not root: skip, before looking.
	if c := checkUserManager(managerProbe{helper: "/bin/true"}); c.Status != statusSkip || !strings.Contains(c.Message, "needs root") {
		t.Errorf("not root: %+v", c)
	}

	managerSocketFixture(t, root, me.Uid, os.Getuid())
	who := me.Username + " (uid " + me.Uid + ")"

	// It works: what ran, as whom, and what the manager said.
	c, args, hostAsked := managerCase{services: []moduleService{relay}, inSession: "252.19-1~deb12u1"}.check(t)
	wantArgs := []string{"run", "--user", me.Username, "--options", "helper=/bin/true propagation=private user_manager=relay",
		"--", "/usr/bin/systemctl", "--user", "show", "--property=Version", "--value"}
	if c.Status != statusOK || c.Message != "a test session as "+who+" ran /usr/bin/systemctl --user show --property=Version --value: 252.19-1~deb12u1" ||
		!slices.Equal(args, wantArgs) || hostAsked {
		t.Errorf("works: %+v\nran %q\nwant %q", c, args, wantArgs)
	}
	var out strings.Builder
	doctor.Print(&out, []check{c}, nil)
	if !strings.HasPrefix(out.String(), "✓ systemctl --user: a test session as "+who) {
		t.Errorf("printed: %s", out.String())
	}

	// The relay does not work, the manager does: fail with systemctl's
	// own words.
	c, _, hostAsked = managerCase{inSession: noData, sessionErr: failed}.check(t)
	if c.Status != statusFail || !strings.HasSuffix(c.Message, "which failed: "+noData) || !hostAsked {
		t.Errorf("relay broken: %+v", c)
	}
	// Nor does the manager answer outside: not the module's fault.
	c, _, _ = managerCase{inSession: noData, sessionErr: failed, onHost: "Failed to connect to bus: Connection refused", hostErr: failed}.check(t)
	if c.Status != statusSkip || !strings.Contains(c.Message, "does not answer outside a session either: Failed to connect to bus: Connection refused") {
		t.Errorf("manager broken: %+v", c)
	}

	// Every service says user_manager=off: a warning, nothing run.
	c, args, _ = managerCase{services: []moduleService{off}, inSession: "252"}.check(t)
	if c.Status != statusWarn || !strings.Contains(c.Message, "fails in the sessions of su by choice") ||
		!strings.Contains(c.Message, "user_manager=off") || args != nil {
		t.Errorf("all off: %+v, ran %q", c, args)
	}
	// ... also without root.
	if c := checkUserManager(managerProbe{services: []moduleService{off}}); c.Status != statusWarn {
		t.Errorf("all off, not root: %+v", c)
	}
	// Some off: the others work, and the warning stays.
	c, _, _ = managerCase{services: []moduleService{off, relay}, inSession: "252"}.check(t)
	if c.Status != statusWarn || !strings.Contains(c.Message, "ran /usr/bin/systemctl") || !strings.Contains(c.Message, "sessions of su by choice") {
		t.Errorf("some off: %+v", c)
	}

	// Things that stop the check.
	p := managerProbe{root: true, helper: "/bin/true"}
	if c := checkUserManager(p); c.Status != statusSkip || !strings.Contains(c.Message, "systemctl is not installed") {
		t.Errorf("no systemctl: %+v", c)
	}
	p.helper, p.systemctl = filepath.Join(root, "none"), "/usr/bin/systemctl"
	if c := checkUserManager(p); c.Status != statusSkip || !strings.Contains(c.Message, "no usable helper") {
		t.Errorf("no helper: %+v", c)
	}
}
