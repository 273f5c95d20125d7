package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/pam_unshare/policy"
)

// tableNames resolves the names in known; the others are missing, or fail
// when down says so.
type tableNames struct {
	known map[string]bool
	down  bool
}

func (n tableNames) lookup(name string) error {
	switch {
	case n.known[name]:
		return nil
	case n.down:
		return errors.New("host is down")
	}
	return policy.ErrNotFound
}

func (n tableNames) User(name string) error            { return n.lookup(name) }
func (n tableNames) Group(name string) (string, error) { return "1", n.lookup(name) }
func (n tableNames) GroupIDs(string) ([]string, error) { return nil, nil }
func TestCheckNames(t *testing.T) {
	known := map[string]bool{"root": true, "alice": true, "students": true, "wheel": true}
	good := []moduleService{
		serviceWith(t, "sshd"),
		serviceWith(t, "su", "exempt_users=root,alice", "only_groups=students", "exempt_groups=wheel"),
	}
	if c := checkNames(good, tableNames{known: known}); c.Status != statusOK {
		t.Errorf("all resolve: %+v", c)
	}
	bad := append(good,
		serviceWith(t, "sudo", "only_groups=studnets", "exempt_users=alcie"),
		serviceWith(t, "sudo-i", "only_groups=studnets"))
	c := checkNames(bad, tableNames{known: known})
	want := []string{
		"exempt_users=alcie: no such user (service sudo)",
		"only_groups=studnets: no such group (service sudo, sudo-i)",
	}
	if c.Status != statusFail || strings.Join(c.Details, "\n") != strings.Join(want, "\n") {
		t.Errorf("typos: %+v, want details %q", c, want)
	}
	c = checkNames([]moduleService{serviceWith(t, "sshd", "exempt_groups=ldap-admins")}, tableNames{known: known, down: true})
	if c.Status != statusFail || len(c.Details) != 1 ||
		c.Details[0] != `exempt_groups=ldap-admins: cannot look up group "ldap-admins": host is down (service sshd)` {
		t.Errorf("NSS down: %+v", c)
	}
}
