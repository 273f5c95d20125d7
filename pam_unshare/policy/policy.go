// Package policy decides, from the module options, whether a user's
// session is isolated. It does no namespace work and needs no privileges.
package policy

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"slices"

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

// GroupsFunc returns the names of all groups a user belongs to, primary
// group included.
type GroupsFunc func(userName string) ([]string, error)

// Decision is the outcome for one user.
type Decision struct {
	Isolate bool
	Reason  string // why not, when Isolate is false
}

// Decide applies exempt_users, exempt_groups and only_groups, in that
// order. Group membership is looked up only when a group option is set, so
// plain configurations never touch NSS beyond what PAM already did.
func Decide(o options.Options, userName string, groups GroupsFunc) (Decision, error) {
	if slices.Contains(o.ExemptUsers, userName) {
		return Decision{Reason: fmt.Sprintf("user %s is in exempt_users", userName)}, nil
	}
	if len(o.ExemptGroups) == 0 && len(o.OnlyGroups) == 0 {
		return Decision{Isolate: true}, nil
	}
	member, err := groups(userName)
	if err != nil {
		return Decision{}, err
	}
	for _, g := range o.ExemptGroups {
		if slices.Contains(member, g) {
			return Decision{Reason: fmt.Sprintf("user %s is in group %s (exempt_groups)", userName, g)}, nil
		}
	}
	if len(o.OnlyGroups) == 0 {
		return Decision{Isolate: true}, nil
	}
	for _, g := range o.OnlyGroups {
		if slices.Contains(member, g) {
			return Decision{Isolate: true}, nil
		}
	}
	return Decision{Reason: fmt.Sprintf("user %s is in none of only_groups", userName)}, nil
}

// SystemGroups resolves group membership through the C library (NSS), so
// LDAP and SSSD groups count as well as /etc/group.
func SystemGroups(userName string) ([]string, error) {
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
	names := make([]string, 0, len(gids))
	for _, gid := range gids {
		g, err := user.LookupGroupId(gid)
		if err != nil {
			continue // a GID without a name cannot match a name in the options
		}
		names = append(names, g.Name)
	}
	return names, nil
}
