// Package policy decides, from the module options, whether a user's
// session is isolated. It does no namespace work and needs no privileges.
package policy

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// ErrUnknownUser means the user's groups could not be resolved because the
// account does not exist.
var ErrUnknownUser = errors.New("unknown user")

// systemdServices run the session process through systemd (PAMName=): the
// process that opens the session later execs the service itself and forks
// (sd-pam), so no process of ours would be PID 2. Isolation cannot work
// there; the module steps aside (PAM_IGNORE) and pam-unshare doctor warns.
var systemdServices = []string{"systemd-user", "systemd-run0"}

// StartedBySystemd reports whether PAM service sessions are started by
// systemd (PAMName=), which the module cannot isolate.
func StartedBySystemd(service string) bool {
	return slices.Contains(systemdServices, service)
}

// Names resolves the names the options hold, through NSS. A lookup returns
// an error wrapping ErrNotFound when the name does not exist, any other
// error when NSS could not answer.
type Names interface {
	// User checks that a user name exists.
	User(name string) error
	// Group returns the GID of a group name.
	Group(name string) (gid string, err error)
	// GroupIDs returns the GIDs of every group userName belongs to,
	// primary group included; ErrUnknownUser when the account does not
	// exist.
	GroupIDs(userName string) ([]string, error)
}

// ErrNotFound means NSS answered that a name does not exist.
var ErrNotFound = errors.New("does not exist")

// NameError is a user or group named in an option that cannot be resolved:
// the name does not exist (a typo, a deleted group) or NSS failed (an LDAP
// or SSSD outage). Either way nobody can tell who the option covers, so
// the session must be refused.
type NameError struct {
	Option string // exempt_users, exempt_groups or only_groups
	Name   string
	Err    error // wraps ErrNotFound, or the NSS error
}

func (e *NameError) Error() string {
	kind := "group"
	if e.Option == "exempt_users" {
		kind = "user"
	}
	if errors.Is(e.Err, ErrNotFound) {
		return fmt.Sprintf("%s=%s: no such %s", e.Option, e.Name, kind)
	}
	return fmt.Sprintf("%s=%s: cannot look up %s %q: %v", e.Option, e.Name, kind, e.Name, e.Err)
}

func (e *NameError) Unwrap() error { return e.Err }

// systemdHosts are the programs in which systemd opens the PAM session of
// a unit with PAMName= for any service, not only those above: a copy of
// PID 1 (systemd up to 255) or systemd-executor (256 and later), which
// execs the unit's command after pam_open_session and forks only (sd-pam),
// so that command would run outside the namespace with its /proc.
// `machinectl shell` and `systemd-run -M USER@.host` open such sessions
// under service login.
var systemdHosts = []string{"systemd", "systemd-executor"}

// OpenedBySystemd reports whether exe, the program of the process that
// opens the session (/proc/self/exe), is one in which systemd opens
// unit sessions, which the module cannot isolate.
func OpenedBySystemd(exe string) bool {
	return exe != "" && slices.Contains(systemdHosts, filepath.Base(exe))
}

// Decision is the outcome for one user.
type Decision struct {
	Isolate bool
	Reason  string // why not, when Isolate is false
}

// Decide applies exempt_users, exempt_groups and only_groups, in that
// order. Every name an option holds must resolve, or the answer is a
// *NameError: a group that does not resolve would otherwise count as a
// group nobody is in, and only_groups=studnets would leave everyone
// unisolated.
//
// Cost: a user named in exempt_users is exempt before any lookup, so root
// keeps a way in while a directory service is down. The default
// exempt_users=root is not looked up; plain configurations (no group
// option, default exempt_users) never touch NSS beyond what PAM already
// did. Otherwise each named user is one getpwnam, each named group one
// getgrnam, and membership one getpwnam and one getgrouplist.
func Decide(o options.Options, userName string, n Names) (Decision, error) {
	if slices.Contains(o.ExemptUsers, userName) {
		return Decision{Reason: fmt.Sprintf("user %s is in exempt_users", userName)}, nil
	}
	if !slices.Equal(o.ExemptUsers, options.DefaultExemptUsers) {
		for _, u := range o.ExemptUsers {
			if err := n.User(u); err != nil {
				return Decision{}, &NameError{"exempt_users", u, err}
			}
		}
	}
	if len(o.ExemptGroups) == 0 && len(o.OnlyGroups) == 0 {
		return Decision{Isolate: true}, nil
	}
	exempt, err := groupIDs(n, "exempt_groups", o.ExemptGroups)
	if err != nil {
		return Decision{}, err
	}
	only, err := groupIDs(n, "only_groups", o.OnlyGroups)
	if err != nil {
		return Decision{}, err
	}
	// Membership by GID, not by name: a GID of the user's whose name does
	// not resolve still counts, and two names of one GID are one group.
	member, err := n.GroupIDs(userName)
	if err != nil {
		return Decision{}, err
	}
	for i, gid := range exempt {
		if slices.Contains(member, gid) {
			return Decision{Reason: fmt.Sprintf("user %s is in group %s (exempt_groups)", userName, o.ExemptGroups[i])}, nil
		}
	}
	if len(only) == 0 {
		return Decision{Isolate: true}, nil
	}
	for _, gid := range only {
		if slices.Contains(member, gid) {
			return Decision{Isolate: true}, nil
		}
	}
	return Decision{Reason: fmt.Sprintf("user %s is in none of only_groups", userName)}, nil
}

// groupIDs resolves the group names of option, in order.
func groupIDs(n Names, option string, names []string) ([]string, error) {
	gids := make([]string, len(names))
	for i, g := range names {
		gid, err := n.Group(g)
		if err != nil {
			return nil, &NameError{option, g, err}
		}
		gids[i] = gid
	}
	return gids, nil
}

// System resolves names through the C library (NSS), so LDAP and SSSD
// users and groups count as well as /etc/passwd and /etc/group. The module
// and pam-unshare are built with cgo: os/user then calls getpwnam_r,
// getgrnam_r and getgrouplist, which tell "no such name" (ENOENT or no
// entry, os/user's Unknown*Error) from a failing source (another errno).
var System Names = systemNames{}

type systemNames struct{}

func (systemNames) User(name string) error {
	_, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return ErrNotFound
	}
	return nssError(err, "user: lookup username "+name+": ")
}

func (systemNames) Group(name string) (string, error) {
	g, err := user.LookupGroup(name)
	var unknown user.UnknownGroupError
	if errors.As(err, &unknown) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", nssError(err, "user: lookup groupname "+name+": ")
	}
	return g.Gid, nil
}

// nssError drops the prefix os/user puts before the C library's error
// ("user: lookup groupname NAME: "): NameError says which name it was.
func nssError(err error, prefix string) error {
	if err == nil {
		return nil
	}
	if msg, ok := strings.CutPrefix(err.Error(), prefix); ok {
		return errors.New(msg)
	}
	return err
}

// GroupIDs: getgrouplist cannot report a failing source; a group it
// misses is one the user is not counted in. The groups the options name
// were resolved first, so a source that is down fails there.
func (systemNames) GroupIDs(userName string) ([]string, error) {
	u, err := user.Lookup(userName)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("%w %q", ErrUnknownUser, userName)
		}
		return nil, err
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", userName, err)
	}
	return gids, nil
}

// Unresolved returns a *NameError for each name in o that Decide looks up
// and cannot resolve: while there is one, Decide refuses every user it
// does not exempt by name. pam-unshare doctor reports them.
func Unresolved(o options.Options, n Names) []*NameError {
	var bad []*NameError
	if !slices.Equal(o.ExemptUsers, options.DefaultExemptUsers) {
		for _, u := range o.ExemptUsers {
			if err := n.User(u); err != nil {
				bad = append(bad, &NameError{"exempt_users", u, err})
			}
		}
	}
	for _, opt := range []struct {
		name   string
		groups []string
	}{{"exempt_groups", o.ExemptGroups}, {"only_groups", o.OnlyGroups}} {
		for _, g := range opt.groups {
			if _, err := n.Group(g); err != nil {
				bad = append(bad, &NameError{opt.name, g, err})
			}
		}
	}
	return bad
}
