package policy

import (
	"errors"
	"os/user"
	"slices"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// fakeNames is a small NSS: users with their GIDs, groups with theirs.
// A name in down fails as a directory service that is down does. It counts
// its lookups.
type fakeNames struct {
	users   map[string][]string // user -> GIDs, primary first
	groups  map[string]string   // group -> GID
	down    map[string]bool
	lookups int
}

var errDown = errors.New("host is down")

func (f *fakeNames) User(name string) error {
	f.lookups++
	if f.down[name] {
		return errDown
	}
	if _, ok := f.users[name]; !ok {
		return ErrNotFound
	}
	return nil
}

func (f *fakeNames) Group(name string) (string, error) {
	f.lookups++
	if f.down[name] {
		return "", errDown
	}
	gid, ok := f.groups[name]
	if !ok {
		return "", ErrNotFound
	}
	return gid, nil
}

func (f *fakeNames) GroupIDs(userName string) ([]string, error) {
	f.lookups++
	if f.down[userName] {
		return nil, errDown
	}
	g, ok := f.users[userName]
	if !ok {
		return nil, ErrUnknownUser
	}
	return g, nil
}

func testNames() *fakeNames {
	return &fakeNames{
		users: map[string][]string{
			"root":  {"0"},
			"alice": {"1001", "100"},        // alice, students
			"bob":   {"1002", "200", "10"},  // bob, staff, wheel
			"carol": {"1003"},               // carol
			"dave":  {"1004", "300"},        // dave, GID 300 has no name
			"erin":  {"1005", "100", "666"}, // erin, students, 666 ("ldap-staff" is down)
		},
		groups: map[string]string{
			"students": "100", "staff": "200", "wheel": "10",
			"pupils": "100", // a second name of GID 100
		},
		down: map[string]bool{"ldap-staff": true, "ldap-user": true},
	}
}

func decide(t *testing.T, args []string, userName string, n Names) (Decision, error) {
	t.Helper()
	o, err := options.Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	return Decide(o, userName, n)
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		user    string
		isolate bool
	}{
		{nil, "root", false},
		{nil, "alice", true},
		{[]string{"exempt_users="}, "root", true},
		{[]string{"exempt_users=alice"}, "root", true},
		{[]string{"exempt_users=alice"}, "alice", false},
		{[]string{"exempt_groups=wheel"}, "bob", false},
		{[]string{"exempt_groups=wheel"}, "alice", true},
		{[]string{"only_groups=students"}, "alice", true},
		{[]string{"only_groups=students"}, "carol", false},
		{[]string{"only_groups=students,staff", "exempt_groups=wheel"}, "bob", false},
		{[]string{"only_groups=students"}, "root", false},
		// Membership is by GID: another name of the same group matches.
		{[]string{"only_groups=pupils"}, "alice", true},
		{[]string{"exempt_groups=pupils"}, "alice", false},
		// A GID of the user's without a name neither matches nor fails.
		{[]string{"only_groups=students"}, "dave", false},
	} {
		d, err := decide(t, tc.args, tc.user, testNames())
		if err != nil {
			t.Errorf("Decide(%q, %s): %v", tc.args, tc.user, err)
			continue
		}
		if d.Isolate != tc.isolate {
			t.Errorf("Decide(%q, %s) = %+v, want isolate=%v", tc.args, tc.user, d, tc.isolate)
		}
		if !d.Isolate && d.Reason == "" {
			t.Errorf("Decide(%q, %s): no reason given", tc.args, tc.user)
		}
	}
}

// TestDecideNameFails: a name in an option that does not resolve, or
// whose source is down, is an error naming the option and the value,
// whoever logs in (members and non-members alike).
func TestDecideNameFails(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		user        string
		option, bad string
		notFound    bool
	}{
		{[]string{"only_groups=studnets"}, "alice", "only_groups", "studnets", true},
		{[]string{"only_groups=studnets"}, "carol", "only_groups", "studnets", true},
		{[]string{"only_groups=students,studnets"}, "alice", "only_groups", "studnets", true},
		{[]string{"exempt_groups=wheeel"}, "bob", "exempt_groups", "wheeel", true},
		{[]string{"exempt_groups=wheel,ldap-staff"}, "bob", "exempt_groups", "ldap-staff", false},
		{[]string{"only_groups=ldap-staff"}, "erin", "only_groups", "ldap-staff", false},
		{[]string{"only_groups=ldap-staff"}, "carol", "only_groups", "ldap-staff", false},
		{[]string{"exempt_users=root,alcie"}, "alice", "exempt_users", "alcie", true},
		{[]string{"exempt_users=root,ldap-user"}, "carol", "exempt_users", "ldap-user", false},
		{[]string{"exempt_users=alcie", "only_groups=students"}, "alice", "exempt_users", "alcie", true},
	} {
		_, err := decide(t, tc.args, tc.user, testNames())
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("Decide(%q, %s): got %v, want a *NameError", tc.args, tc.user, err)
			continue
		}
		if ne.Option != tc.option || ne.Name != tc.bad || errors.Is(err, ErrNotFound) != tc.notFound {
			t.Errorf("Decide(%q, %s): got %#v", tc.args, tc.user, ne)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, tc.option+"="+tc.bad+": ") {
			t.Errorf("Decide(%q, %s): message %q does not start with the option and value", tc.args, tc.user, msg)
		}
		if !tc.notFound && !strings.Contains(err.Error(), errDown.Error()) {
			t.Errorf("Decide(%q, %s): message %q hides the NSS error", tc.args, tc.user, err)
		}
	}
}

// TestDecideExemptFirst: a user exempt by name needs no lookup, so root
// still gets in while a directory service is down or an option has a typo.
func TestDecideExemptFirst(t *testing.T) {
	for _, args := range [][]string{
		{"only_groups=ldap-staff"},
		{"exempt_users=root,alcie"},
		{"exempt_groups=wheeel"},
	} {
		n := testNames()
		d, err := decide(t, args, "root", n)
		if err != nil || d.Isolate || n.lookups != 0 {
			t.Errorf("Decide(%q, root) = %+v, %v after %d lookups; want exempt, no lookup", args, d, err, n.lookups)
		}
	}
}

// TestDecideLookups: plain configurations cost no NSS lookup; each option
// costs what Decide's comment says.
func TestDecideLookups(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"exempt_users=root"}, 0},
		{[]string{"scope=user", "linger"}, 0},
		{[]string{"exempt_users="}, 0},
		{[]string{"exempt_users=bob,carol"}, 2},
		{[]string{"only_groups=students"}, 2},
		{[]string{"only_groups=students,staff", "exempt_groups=wheel"}, 4},
	} {
		n := testNames()
		if _, err := decide(t, tc.args, "alice", n); err != nil {
			t.Errorf("Decide(%q, alice): %v", tc.args, err)
		}
		if n.lookups != tc.want {
			t.Errorf("Decide(%q, alice): %d lookups, want %d", tc.args, n.lookups, tc.want)
		}
	}
}

func TestDecideUnknownUser(t *testing.T) {
	o, _ := options.Parse([]string{"only_groups=students"})
	if _, err := Decide(o, "nobody-here", testNames()); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("got %v, want ErrUnknownUser", err)
	}
}

func TestSystemNames(t *testing.T) {
	// root exists on every system and is in group 0.
	root, err := user.LookupGroupId("0")
	if err != nil {
		t.Skip("no group 0 on this system")
	}
	if err := System.User("root"); err != nil {
		t.Fatalf("User(root): %v", err)
	}
	if gid, err := System.Group(root.Name); err != nil || gid != "0" {
		t.Fatalf("Group(%s) = %q, %v", root.Name, gid, err)
	}
	gids, err := System.GroupIDs("root")
	if err != nil || !slices.Contains(gids, "0") {
		t.Fatalf("GroupIDs(root) = %v, %v", gids, err)
	}
	if err := System.User("no-such-user-pam-unshare"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: got %v", err)
	}
	if _, err := System.Group("no-such-group-pam-unshare"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown group: got %v", err)
	}
	if _, err := System.GroupIDs("no-such-user-pam-unshare"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user's groups: got %v", err)
	}
}

func TestOpenedBySystemd(t *testing.T) {
	for exe, want := range map[string]bool{
		"/usr/lib/systemd/systemd":          true,
		"/usr/lib/systemd/systemd-executor": true,
		"/lib/systemd/systemd-executor":     true,
		"/usr/bin/su":                       false,
		"/usr/lib/openssh/sshd-session":     false,
		"/usr/sbin/sshd":                    false,
		"/usr/bin/systemd-run":              false,
		"/usr/lib/systemd/systemd-logind":   false,
		"":                                  false,
	} {
		if got := OpenedBySystemd(exe); got != want {
			t.Errorf("%q: %v, want %v", exe, got, want)
		}
	}
}

func TestStartedBySystemd(t *testing.T) {
	for service, want := range map[string]bool{
		"systemd-user": true, "systemd-run0": true,
		"su": false, "sshd": false, "systemd": false, "": false,
	} {
		if got := StartedBySystemd(service); got != want {
			t.Errorf("%q: %v, want %v", service, got, want)
		}
	}
}

func TestUnresolved(t *testing.T) {
	o, err := options.Parse([]string{"exempt_users=root,alcie", "exempt_groups=wheel,ldap-staff", "only_groups=studnets,students"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range Unresolved(o, testNames()) {
		got = append(got, e.Error())
	}
	want := []string{
		"exempt_users=alcie: no such user",
		`exempt_groups=ldap-staff: cannot look up group "ldap-staff": host is down`,
		"only_groups=studnets: no such group",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Unresolved = %q, want %q", got, want)
	}
	if bad := Unresolved(options.Options{ExemptUsers: options.DefaultExemptUsers}, testNames()); len(bad) != 0 {
		t.Fatalf("defaults: %v", bad)
	}
}
