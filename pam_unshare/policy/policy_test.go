package policy

import (
	"errors"
	"os/user"
	"testing"

	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

func groupsOf(m map[string][]string) GroupsFunc {
	return func(u string) ([]string, error) {
		g, ok := m[u]
		if !ok {
			return nil, ErrUnknownUser
		}
		return g, nil
	}
}

func TestDecide(t *testing.T) {
	members := groupsOf(map[string][]string{
		"alice": {"alice", "students"},
		"bob":   {"bob", "staff", "wheel"},
		"carol": {"carol"},
	})
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
	} {
		o, err := options.Parse(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decide(o, tc.user, members)
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

func TestDecideUnknownUser(t *testing.T) {
	o, _ := options.Parse([]string{"only_groups=students"})
	if _, err := Decide(o, "nobody-here", groupsOf(nil)); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("got %v, want ErrUnknownUser", err)
	}
}

func TestSystemGroups(t *testing.T) {
	// root exists on every system and is in group root (gid 0).
	g, err := SystemGroups("root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := user.LookupGroupId("0")
	if err != nil {
		t.Skip("no group 0 on this system")
	}
	found := false
	for _, n := range g {
		found = found || n == root.Name
	}
	if !found {
		t.Fatalf("SystemGroups(root) = %v, missing %s", g, root.Name)
	}
	if _, err := SystemGroups("no-such-user-pam-unshare"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: got %v", err)
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
