// Package options parses pam_unshare's module arguments, the words after
// "pam_unshare.so" in a pam.d line. It is the one place that knows them:
// the module, the pam-unshare command and the man page all follow it.
package options

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pam-unshare/pam-unshare/nsinit"
)

// Defaults.
const (
	DefaultPropagation = nsinit.PropagationSlave
	DefaultScope       = ScopeSession
	DefaultUserManager = UserManagerRelay
	DefaultGrace       = nsinit.DefaultGrace
	// MaxGrace bounds grace=: pam_close_session waits for the teardown,
	// so a huge value would hang logouts.
	MaxGrace = 60 * time.Second
)

// Values of scope=.
const (
	ScopeSession = "session" // a namespace per session
	ScopeUser    = "user"    // one namespace for all sessions of a user
)

// Values of user_manager=.
const (
	// UserManagerRelay: the session reaches the user's systemd manager
	// through a relay in the namespace, so systemctl --user works.
	UserManagerRelay = "relay"
	// UserManagerOff: no relay; systemctl --user in the session fails
	// with "No data available" (the manager's socket peer is outside the
	// session's PID namespace).
	UserManagerOff = "off"
)

// DefaultExemptUsers are isolated never, unless exempt_users= says else.
var DefaultExemptUsers = []string{"root"}

// Options are the parsed module arguments.
type Options struct {
	Debug        bool          // debug: step-by-step syslog lines
	ExemptUsers  []string      // exempt_users=: never isolated
	ExemptGroups []string      // exempt_groups=: members never isolated
	OnlyGroups   []string      // only_groups=: if set, only members are isolated
	Propagation  string        // propagation=slave|private
	Grace        time.Duration // grace=: SIGTERM-to-exit grace period at teardown
	Helper       string        // helper=: the PID-1 helper binary; empty: built-in default
	Scope        string        // scope=session|user
	Linger       bool          // linger: a per-user namespace outlives its last session
	UserManager  string        // user_manager=relay|off
}

// Option documents one module argument.
type Option struct {
	Name    string // as written before "=", or the whole flag
	Value   string // placeholder for the value; empty for a flag
	Default string
	Help    string
}

// Known lists every module argument, in the order the man page gives them.
var Known = []Option{
	{"debug", "", "off", "log each step of opening and closing a session"},
	{"exempt_users", "USER[,USER...]", "root", "never isolate these users; empty exempts nobody"},
	{"exempt_groups", "GROUP[,GROUP...]", "", "never isolate members of these groups"},
	{"only_groups", "GROUP[,GROUP...]", "", "isolate only members of these groups"},
	{"propagation", "slave|private", DefaultPropagation, "how the session's mount tree relates to the host's"},
	{"grace", "SECONDS|DURATION", "1", "time between SIGTERM and the end of the namespace at logout"},
	{"helper", "PATH", "", "the PID-1 helper binary (absolute path)"},
	{"scope", "session|user", DefaultScope, "a namespace per session, or one shared by all sessions of a user"},
	{"linger", "", "off", "with scope=user: processes left at the last logout keep the namespace"},
	{"user_manager", "relay|off", DefaultUserManager, "relay the user's systemd manager socket into the session, so systemctl --user works"},
}

// Error names the argument that could not be used.
type Error struct {
	Arg    string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bad module argument %q: %s", e.Arg, e.Reason)
}

// Parse turns module arguments into Options. The first bad argument is an
// *Error: the caller must refuse the session, never guess.
func Parse(args []string) (Options, error) {
	o := Options{
		ExemptUsers: DefaultExemptUsers,
		Propagation: DefaultPropagation,
		Grace:       DefaultGrace,
		Scope:       DefaultScope,
		UserManager: DefaultUserManager,
	}
	seen := map[string]bool{}
	for _, arg := range args {
		name, value, hasValue := strings.Cut(arg, "=")
		if seen[name] {
			return o, &Error{arg, "given twice"}
		}
		seen[name] = true
		var err error
		switch name {
		case "debug":
			if hasValue {
				err = errTakesNoValue
			}
			o.Debug = true
		case "exempt_users":
			o.ExemptUsers, err = parseNames(value, hasValue, true)
		case "exempt_groups":
			o.ExemptGroups, err = parseNames(value, hasValue, false)
		case "only_groups":
			o.OnlyGroups, err = parseNames(value, hasValue, false)
		case "propagation":
			o.Propagation, err = parseChoice(value, hasValue, nsinit.PropagationSlave, nsinit.PropagationPrivate)
		case "grace":
			o.Grace, err = parseGrace(value, hasValue)
		case "helper":
			o.Helper, err = parseHelper(value, hasValue)
		case "scope":
			o.Scope, err = parseChoice(value, hasValue, ScopeSession, ScopeUser)
		case "linger":
			if hasValue {
				err = errTakesNoValue
			}
			o.Linger = true
		case "user_manager":
			o.UserManager, err = parseChoice(value, hasValue, UserManagerRelay, UserManagerOff)
		default:
			err = errUnknown
		}
		if err != nil {
			return o, &Error{arg, err.Error()}
		}
	}
	// Only a namespace shared across sessions can outlive one.
	if o.Linger && o.Scope != ScopeUser {
		return o, &Error{"linger", "needs scope=user"}
	}
	return o, nil
}

// parseChoice reads a value that must be one of two words.
func parseChoice(value string, hasValue bool, one, other string) (string, error) {
	if !hasValue {
		return "", errNeedsValue
	}
	if value != one && value != other {
		return "", reason("must be " + one + " or " + other)
	}
	return value, nil
}

type reason string

func (r reason) Error() string { return string(r) }

const (
	errUnknown      = reason("unknown option")
	errTakesNoValue = reason("takes no value")
	errNeedsValue   = reason("needs a value after '='")
)

// parseNames reads a comma-separated list of user or group names. An empty
// list is allowed only where it means something (exempt_users=).
func parseNames(value string, hasValue, emptyOK bool) ([]string, error) {
	if !hasValue || (value == "" && !emptyOK) {
		return nil, errNeedsValue
	}
	if value == "" {
		return []string{}, nil
	}
	names := strings.Split(value, ",")
	for _, n := range names {
		if !validName(n) {
			return nil, reason(fmt.Sprintf("%q is not a valid user or group name", n))
		}
	}
	return names, nil
}

// validName accepts what useradd and groupadd accept on common systems,
// plus the characters directory services add (DOMAIN\user, user@realm).
func validName(n string) bool {
	if n == "" || len(n) > 256 || n[0] == '-' {
		return false
	}
	for _, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._-$@\\", r):
		default:
			return false
		}
	}
	return true
}

// parseGrace accepts seconds ("2", "0.5") or a Go duration ("500ms").
func parseGrace(value string, hasValue bool) (time.Duration, error) {
	if !hasValue || value == "" {
		return 0, errNeedsValue
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(value, 64); err == nil {
		if math.IsNaN(secs) || secs < 0 || secs > MaxGrace.Seconds() {
			return 0, reason(fmt.Sprintf("must be between 0 and %v", MaxGrace))
		}
		d = time.Duration(secs * float64(time.Second))
	} else if d, err = time.ParseDuration(value); err != nil {
		return 0, reason("must be seconds (2, 0.5) or a duration (500ms)")
	}
	if d < 0 || d > MaxGrace {
		return 0, reason(fmt.Sprintf("must be between 0 and %v", MaxGrace))
	}
	return d, nil
}

func parseHelper(value string, hasValue bool) (string, error) {
	if !hasValue || value == "" {
		return "", errNeedsValue
	}
	if !filepath.IsAbs(value) || filepath.Clean(value) != value {
		return "", reason("must be a clean absolute path")
	}
	return value, nil
}
