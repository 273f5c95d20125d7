// Package plan turns a session's parsed module arguments and its account
// into the request nsinit carries out: the namespace and helper
// configuration, a new namespace or the user's shared one, linger, and the
// account whose systemd manager the helper relays. The module
// (pam_unshare/session.go) and `pam-unshare run` both get theirs from
// Make, so run gets what a session gets; RunOptions writes the module
// arguments that make run build a given session's request, for pam-unshare
// doctor's test sessions.
//
// It does no lookups and no namespace work: the caller resolves the
// account, and only when NeedsIDs says so.
package plan

import (
	"strings"

	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// Account is the user a session is for.
type Account struct {
	// Name is the user name the helper shows: for the module the PAM user
	// as the host gave it, for run the account's own name.
	Name string
	// UID and GID are the account's; read only when NeedsIDs.
	UID, GID int
}

// Request is everything nsinit needs to put a session in its namespace.
type Request struct {
	// Config is the namespace and its helper (nsinit.Enter, or the
	// configuration of a per-user namespace's helper).
	Config nsinit.Config
	// PerUser: scope=user, the user's one namespace, joined or created
	// (nsinit.EnterUser), keyed by UID; otherwise a new namespace.
	PerUser bool
	UID     int
	// Linger: a per-user namespace outlives its last session.
	Linger bool
}

// NeedsIDs reports whether Make reads the account's UID and GID for o: a
// per-user namespace is keyed by UID, and the relay runs as the account.
// A session with neither needs no lookup beyond what PAM already did.
func NeedsIDs(o options.Options) bool {
	return o.Scope == options.ScopeUser || o.UserManager == options.UserManagerRelay
}

// Make is the request for a session of service with options o, for
// account a (whose UID and GID it reads only if NeedsIDs(o)).
func Make(o options.Options, service string, a Account) Request {
	r := Request{Config: nsinit.Config{
		HelperPath:  o.Helper,
		Propagation: o.Propagation,
		Grace:       o.Grace,
		Service:     service,
		User:        a.Name,
	}}
	if o.UserManager == options.UserManagerRelay {
		r.Config.UserManager = &nsinit.Account{UID: a.UID, GID: a.GID}
	}
	if o.Scope == options.ScopeUser {
		r.PerUser, r.UID, r.Linger = true, a.UID, o.Linger
	}
	return r
}

// RunOptions are the module arguments under which `pam-unshare run` makes
// the request Make makes from o, but in a new namespace: run takes
// helper=, propagation=, grace= and user_manager=, and always creates a
// namespace of its own (scope= and linger are for PAM sessions only).
// Defaults are left out, but for user_manager=, which is always written,
// so that the command line shows whether the session relays. The words
// are in one string, as run's --options takes them.
func RunOptions(o options.Options) string {
	var args []string
	if o.Helper != "" {
		args = append(args, "helper="+o.Helper)
	}
	if o.Propagation != options.DefaultPropagation {
		args = append(args, "propagation="+o.Propagation)
	}
	if o.Grace != options.DefaultGrace {
		args = append(args, "grace="+o.Grace.String())
	}
	args = append(args, "user_manager="+o.UserManager)
	return strings.Join(args, " ")
}
