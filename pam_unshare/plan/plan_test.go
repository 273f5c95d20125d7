package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

func parse(t *testing.T, line string) options.Options {
	t.Helper()
	o, err := options.Parse(strings.Fields(line))
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return o
}

var alice = Account{Name: "alice", UID: 1001, GID: 1002}

// Make, option line by option line: what each request holds.
func TestMake(t *testing.T) {
	relay := &nsinit.Account{UID: 1001, GID: 1002}
	for _, tc := range []struct {
		line string
		want Request
	}{
		{"", Request{Config: nsinit.Config{Propagation: "slave", Grace: time.Second, Service: "sshd", User: "alice", UserManager: relay}}},
		{"user_manager=off", Request{Config: nsinit.Config{Propagation: "slave", Grace: time.Second, Service: "sshd", User: "alice"}}},
		{"propagation=private grace=2.5 helper=/opt/init debug exempt_users=bob only_groups=staff",
			Request{Config: nsinit.Config{HelperPath: "/opt/init", Propagation: "private", Grace: 2500 * time.Millisecond,
				Service: "sshd", User: "alice", UserManager: relay}}},
		{"scope=user", Request{Config: nsinit.Config{Propagation: "slave", Grace: time.Second, Service: "sshd", User: "alice", UserManager: relay},
			PerUser: true, UID: 1001}},
		{"scope=user linger user_manager=off grace=0", Request{Config: nsinit.Config{Propagation: "slave", Service: "sshd", User: "alice"},
			PerUser: true, UID: 1001, Linger: true}},
	} {
		got := Make(parse(t, tc.line), "sshd", alice)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v (relay %+v)\nwant %+v (relay %+v)", tc.line, got, got.Config.UserManager, tc.want, tc.want.Config.UserManager)
		}
	}
}

// NeedsIDs is true exactly when Make reads the UID or GID: Make with the
// IDs zeroed gives the same request where it is false, another where it
// is true.
func TestNeedsIDs(t *testing.T) {
	for _, line := range []string{"", "user_manager=off", "scope=user", "scope=user user_manager=off", "scope=user linger", "propagation=private user_manager=off"} {
		o := parse(t, line)
		nameOnly := Account{Name: alice.Name}
		reads := !reflect.DeepEqual(Make(o, "su", alice), Make(o, "su", nameOnly))
		if NeedsIDs(o) != reads {
			t.Errorf("%q: NeedsIDs %v, but Make reads the IDs: %v", line, NeedsIDs(o), reads)
		}
	}
}

// sample is a value other than the default for each module argument: the
// tests below go through every one of options.Known, so an option added
// there must be added here, and then RunOptions carries it if it changes
// the request.
var sample = map[string]string{
	"debug":         "debug",
	"exempt_users":  "exempt_users=bob",
	"exempt_groups": "exempt_groups=wheel",
	"only_groups":   "only_groups=staff",
	"propagation":   "propagation=private",
	"grace":         "grace=1.5",
	"helper":        "helper=/opt/pam_unshare-init",
	"scope":         "scope=user",
	"linger":        "scope=user linger",
	"user_manager":  "user_manager=off",
}

// notInRequest are the options that decide who is isolated (policy) or
// what is logged: they leave the request as it is.
var notInRequest = map[string]bool{"debug": true, "exempt_users": true, "exempt_groups": true, "only_groups": true}

// run, given RunOptions(o), makes the request the module makes from o, in
// a new namespace (run has no other). This is doctor's test session: "run
// gets what a session gets". Each option is tried alone, and the ones run
// takes together.
func TestRunOptionsRoundTrip(t *testing.T) {
	base := Make(parse(t, ""), "su", alice)
	lines := []string{"propagation=private grace=250ms helper=/x/init user_manager=off", "scope=user linger propagation=private grace=0"}
	for _, opt := range options.Known {
		line, ok := sample[opt.Name]
		if !ok {
			t.Errorf("option %s: no sample value in this test", opt.Name)
			continue
		}
		if changed := !reflect.DeepEqual(Make(parse(t, line), "su", alice), base); changed == notInRequest[opt.Name] {
			t.Errorf("%q: changes the request: %v; want %v", line, changed, !notInRequest[opt.Name])
		}
		lines = append(lines, line)
	}
	for _, line := range lines {
		o := parse(t, line)
		module := Make(o, "su", alice)
		if module.PerUser {
			module.PerUser, module.UID, module.Linger = false, 0, false
		}
		args := RunOptions(o)
		ran, err := options.Parse(strings.Fields(args))
		if err != nil {
			t.Errorf("%q: RunOptions gave %q: %v", line, args, err)
			continue
		}
		if got := Make(ran, "su", alice); !reflect.DeepEqual(got, module) {
			t.Errorf("%q: run with %q makes\n %+v\nthe module, in a new namespace\n %+v", line, args, got, module)
		}
	}
}

// RunOptions writes what differs from the defaults, and user_manager=
// always, in a fixed order: doctor prints the line it ran.
func TestRunOptions(t *testing.T) {
	for line, want := range map[string]string{
		"":                              "user_manager=relay",
		"helper=/h propagation=private": "helper=/h propagation=private user_manager=relay",
		"user_manager=off grace=0.5 exempt_users=bob scope=user linger": "grace=500ms user_manager=off",
		"grace=1 propagation=slave":                                     "user_manager=relay",
	} {
		if got := RunOptions(parse(t, line)); got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
}
