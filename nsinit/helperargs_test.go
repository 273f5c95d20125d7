package nsinit

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What Enter writes, the helper's parse_args and pam-unshare status read:
// every Config must come back from its own command line.
func TestHelperArgvRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Grace: 2500 * time.Millisecond, Service: "su", User: "alice"},
		{Propagation: PropagationPrivate, NoPidfd: true, Service: "sshd", User: "bob"},
		{Propagation: PropagationSlave, Service: "-odd-service", User: "-P"},
		{Service: "sudo", User: "user with spaces"},
	} {
		want := helperArgs(cfg)
		if want.Propagation == "" {
			want.Propagation = PropagationSlave
		}
		argv := helperArgs(cfg).Argv()
		if argv[0] != HelperName {
			t.Errorf("%+v: argv[0] %q", cfg, argv[0])
		}
		got, err := ParseHelperArgv(argv)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: %q parses as %+v, %v; want %+v", cfg, argv, got, err, want)
		}
	}
	// Per-user helpers (scope=user) too.
	for _, want := range []HelperArgs{
		{Grace: time.Second, Propagation: PropagationSlave, PerUser: true, HostPID: 4242, Service: "sshd", User: "alice"},
		{Grace: 0, Propagation: PropagationPrivate, PerUser: true, Linger: true, HostPID: 7, Service: "cron", User: "bob"},
		{Grace: time.Second, Propagation: PropagationSlave, PerUser: true, HostPID: 9, Relay: &Account{UID: 1000, GID: 100}, Service: "sshd", User: "alice"},
		{Grace: time.Second, Propagation: PropagationSlave, Relay: &Account{UID: 0, GID: 0}, Service: "su", User: "root"},
	} {
		argv := want.Argv()
		got, err := ParseHelperArgv(argv)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q parses as %+v, %v; want %+v", argv, got, err, want)
		}
	}
}

func TestParseHelperArgv(t *testing.T) {
	for _, tc := range []struct {
		argv          []string
		service, user string
		grace         time.Duration
	}{
		// Helpers started before "--" was written, and by hand.
		{[]string{"pam_unshare-init", "su", "alice"}, "su", "alice", time.Second},
		{[]string{"pam_unshare-init", "-g", "500", "-P", "sudo", "bob"}, "sudo", "bob", 500 * time.Millisecond},
		{[]string{"pam_unshare-init", "-m", "private", "-g", "0", "sshd", "carol"}, "sshd", "carol", 0},
		{[]string{"pam_unshare-init", "-g", "1000", "--", "su", "-odd-user"}, "su", "-odd-user", time.Second},
	} {
		a, err := ParseHelperArgv(tc.argv)
		if err != nil || a.Service != tc.service || a.User != tc.user || a.Grace != tc.grace {
			t.Errorf("%q: %+v, %v", tc.argv, a, err)
		}
	}
	for _, tc := range []struct {
		argv    []string
		problem string
	}{
		{nil, "empty"},
		{[]string{"pam_unshare-init"}, "want SERVICE and USER"},
		{[]string{"pam_unshare-init", "su"}, "want SERVICE and USER"},
		{[]string{"pam_unshare-init", "su", "alice", "extra"}, "want SERVICE and USER"},
		{[]string{"pam_unshare-init", "-g"}, "needs a value"},
		{[]string{"pam_unshare-init", "-g", "-5", "su", "alice"}, "not a grace period"},
		{[]string{"pam_unshare-init", "-g", "1s", "su", "alice"}, "not a grace period"},
		{[]string{"pam_unshare-init", "-m", "shared", "su", "alice"}, "not slave or private"},
		{[]string{"pam_unshare-init", "-x", "su", "alice"}, "unknown option"},
		{[]string{"pam_unshare-init", "-U", "-H", "0", "su", "alice"}, "not a PID"},
		{[]string{"pam_unshare-init", "-u", "1000", "su", "alice"}, "not UID:GID"},
		{[]string{"pam_unshare-init", "-u", "1000:-1", "su", "alice"}, "not UID:GID"},
		{[]string{"pam_unshare-init", "-u", "x:1", "su", "alice"}, "not UID:GID"},
	} {
		if _, err := ParseHelperArgv(tc.argv); err == nil || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("%q: got %v, want an error containing %q", tc.argv, err, tc.problem)
		}
	}
}

// Every step the helper can report has words; other codes still say which.
// Every NSINIT_STEP_* of handshake.h, read from the header so that a step
// added there is checked too, has a name of its own in nsinit_step_name; a
// code that is no step gets the number.
func TestStepName(t *testing.T) {
	src, err := os.ReadFile("handshake.h")
	if err != nil {
		t.Fatal(err)
	}
	steps := regexp.MustCompile(`(?m)^#define NSINIT_STEP_([A-Z0-9_]+) ([0-9]+)`).FindAllSubmatch(src, -1)
	if len(steps) == 0 {
		t.Fatal("no NSINIT_STEP_* in handshake.h")
	}
	named := map[string]string{}
	last := 0
	for _, m := range steps {
		step, _ := strconv.Atoi(string(m[2]))
		name := stepName(step)
		if name == "helper: step "+string(m[2]) {
			t.Errorf("NSINIT_STEP_%s (%d) has no name", m[1], step)
		} else if other, ok := named[name]; ok {
			t.Errorf("NSINIT_STEP_%s and NSINIT_STEP_%s are both %q", other, m[1], name)
		}
		named[name] = string(m[1])
		last = max(last, step)
	}
	for _, step := range []int{0, last + 1} {
		if got, want := stepName(step), "helper: step "+strconv.Itoa(step); got != want {
			t.Errorf("stepName(%d) = %q, want %q", step, got, want)
		}
	}
}

// cParser builds init/config_print.c with the helper's own parser
// (init/args.c): a program that prints the struct nsinit_config it parses
// from its command line, or exits 1 if the helper would refuse it.
func cParser(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), HelperName)
	if err := compileC(bin, "init/config_print.c", "init/args.c"); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runCParser runs the C parser on argv (argv[0] included). ok is false if
// it refused the command line.
func runCParser(t *testing.T, bin string, argv []string) (out string, ok bool) {
	t.Helper()
	cmd := &exec.Cmd{Path: bin, Args: argv}
	b, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return "", false
	}
	if err != nil {
		t.Fatalf("%q: %v", argv, err)
	}
	return string(b), true
}

// cConfig is what config_print prints for a, field by field.
func cConfig(a HelperArgs) string {
	relay, uid, gid := 0, 0, 0
	if a.Relay != nil {
		relay, uid, gid = 1, a.Relay.UID, a.Relay.GID
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return fmt.Sprintf("grace_ms=%d\npropagation=%s\nno_pidfd=%d\nrelay=%d\nrelay_uid=%d\nrelay_gid=%d\n"+
		"per_user=%d\nhost_pid=%d\nlinger=%d\nservice=%s\nuser=%s\n",
		a.Grace.Milliseconds(), a.Propagation, b(a.NoPidfd), relay, uid, gid,
		b(a.PerUser), a.HostPID, b(a.Linger), a.Service, a.User)
}

// The helper's C parser reads what the Go side writes as the Go side means
// it, and both refuse the same command lines (runc's nsenter_test.go
// drives its C side from Go the same way): the helper's real parser, built
// into a program of its own, not linked into this test.
func TestHelperArgvCParser(t *testing.T) {
	bin := cParser(t)
	// Every command line Enter and EnterUser write comes back whole.
	for _, want := range []HelperArgs{
		helperArgs(Config{Propagation: PropagationSlave}),
		helperArgs(Config{Grace: 2500 * time.Millisecond, Propagation: PropagationPrivate, NoPidfd: true, Service: "sshd", User: "bob"}),
		helperArgs(Config{Grace: maxHelperGrace, Propagation: PropagationSlave, Service: "-odd-service", User: "-P"}),
		helperArgs(Config{Propagation: PropagationSlave, Service: "sudo", User: "user with spaces",
			UserManager: &Account{UID: maxID, GID: 0}}),
		{Grace: time.Second, Propagation: PropagationSlave, PerUser: true, HostPID: math.MaxInt32, Linger: true,
			Relay: &Account{UID: 1000, GID: 100}, Service: "cron", User: "alice"},
		{Grace: 0, Propagation: PropagationPrivate, PerUser: true, Service: "su", User: "-"},
	} {
		argv := want.Argv()
		got, ok := runCParser(t, bin, argv)
		if !ok || got != cConfig(want) {
			t.Errorf("%q: the helper parses\n%s(ok %v), want\n%s", argv, got, ok, cConfig(want))
		}
	}
	// Hand-made command lines: the helper takes exactly those that
	// ParseHelperArgv takes, with the same values.
	for _, args := range [][]string{
		{"su", "alice"},
		{"-g", "500", "-P", "sudo", "bob"},
		{"-m", "private", "-g", "0", "sshd", "carol"},
		{"-g", "1000", "--", "-", "-odd-user"},
		{"-H", "7", "su", "alice"},
		{"-", "x"},
		{},
		{"su"},
		{"su", "alice", "extra"},
		{"su", "-P", "alice"},
		{"-g"},
		{"-g", "-5", "su", "alice"},
		{"-g", "+5", "su", "alice"},
		{"-g", " 5", "su", "alice"},
		{"-g", "1s", "su", "alice"},
		{"-g", "86400001", "su", "alice"},
		{"-g5", "su", "alice"},
		{"-m", "shared", "su", "alice"},
		{"-x", "su", "alice"},
		{"-UL", "su", "alice"},
		{"-L", "su", "alice"},
		{"-U", "-P", "su", "alice"},
		{"-U", "-H", "0", "su", "alice"},
		{"-U", "-H", "+5", "su", "alice"},
		{"-U", "-H", "2147483648", "su", "alice"},
		{"-u", "1000", "su", "alice"},
		{"-u", "1000:-1", "su", "alice"},
		{"-u", "4294967295:1", "su", "alice"},
		{"-u", "x:1", "su", "alice"},
	} {
		argv := append([]string{HelperName}, args...)
		want, err := ParseHelperArgv(argv)
		got, ok := runCParser(t, bin, argv)
		switch {
		case ok != (err == nil):
			t.Errorf("%q: the helper takes it: %v; ParseHelperArgv: %v", argv, ok, err)
		case ok && got != cConfig(want):
			t.Errorf("%q: the helper parses\n%s, ParseHelperArgv\n%s", argv, got, cConfig(want))
		}
	}
}
