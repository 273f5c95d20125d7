package options

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	o, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{ExemptUsers: []string{"root"}, Propagation: "slave", Grace: time.Second, Scope: "session", UserManager: "relay"}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("Parse(nil) = %+v, want %+v", o, want)
	}
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want func(*Options)
	}{
		{[]string{"debug"}, func(o *Options) { o.Debug = true }},
		{[]string{"exempt_users=root,admin"}, func(o *Options) { o.ExemptUsers = []string{"root", "admin"} }},
		{[]string{"exempt_users="}, func(o *Options) { o.ExemptUsers = []string{} }},
		{[]string{"exempt_groups=wheel"}, func(o *Options) { o.ExemptGroups = []string{"wheel"} }},
		{[]string{"only_groups=students,guests"}, func(o *Options) { o.OnlyGroups = []string{"students", "guests"} }},
		{[]string{"only_groups=EXAMPLE\\users"}, func(o *Options) { o.OnlyGroups = []string{"EXAMPLE\\users"} }},
		{[]string{"propagation=private"}, func(o *Options) { o.Propagation = "private" }},
		{[]string{"grace=2"}, func(o *Options) { o.Grace = 2 * time.Second }},
		{[]string{"grace=0.5"}, func(o *Options) { o.Grace = 500 * time.Millisecond }},
		{[]string{"grace=250ms"}, func(o *Options) { o.Grace = 250 * time.Millisecond }},
		{[]string{"grace=0"}, func(o *Options) { o.Grace = 0 }},
		{[]string{"grace=60"}, func(o *Options) { o.Grace = 60 * time.Second }},
		{[]string{"helper=/usr/local/libexec/pam_unshare-init"}, func(o *Options) { o.Helper = "/usr/local/libexec/pam_unshare-init" }},
		{[]string{"scope=session"}, func(o *Options) {}},
		{[]string{"scope=user"}, func(o *Options) { o.Scope = "user" }},
		{[]string{"scope=user", "linger"}, func(o *Options) { o.Scope, o.Linger = "user", true }},
		{[]string{"linger", "scope=user"}, func(o *Options) { o.Scope, o.Linger = "user", true }},
		{[]string{"user_manager=relay"}, func(o *Options) {}},
		{[]string{"user_manager=off"}, func(o *Options) { o.UserManager = "off" }},
	} {
		want, _ := Parse(nil)
		tc.want(&want)
		got, err := Parse(tc.args)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.args, got, want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		arg    string // the argument the error must name
		reason string // part of the reason
	}{
		{[]string{"bogus"}, "bogus", "unknown option"},
		{[]string{"debug", "Debug"}, "Debug", "unknown option"},
		{[]string{"debug=1"}, "debug=1", "takes no value"},
		{[]string{"debug", "debug"}, "debug", "given twice"},
		{[]string{"exempt_users"}, "exempt_users", "needs a value"},
		{[]string{"exempt_groups="}, "exempt_groups=", "needs a value"},
		{[]string{"only_groups=a,,b"}, "only_groups=a,,b", "not a valid"},
		{[]string{"only_groups=a b"}, "only_groups=a b", "not a valid"},
		{[]string{"exempt_users=-rf"}, "exempt_users=-rf", "not a valid"},
		{[]string{"propagation=shared"}, "propagation=shared", "slave or private"},
		{[]string{"propagation"}, "propagation", "needs a value"},
		{[]string{"grace=-1"}, "grace=-1", "between"},
		{[]string{"grace=61"}, "grace=61", "between"},
		{[]string{"grace=2h"}, "grace=2h", "between"},
		{[]string{"grace=NaN"}, "grace=NaN", "between"},
		{[]string{"grace=soon"}, "grace=soon", "seconds"},
		{[]string{"grace="}, "grace=", "needs a value"},
		{[]string{"helper=relative/path"}, "helper=relative/path", "absolute"},
		{[]string{"helper=/usr/../tmp/x"}, "helper=/usr/../tmp/x", "absolute"},
		{[]string{"scope=host"}, "scope=host", "session or user"},
		{[]string{"scope"}, "scope", "needs a value"},
		{[]string{"linger"}, "linger", "needs scope=user"},
		{[]string{"linger", "scope=session"}, "linger", "needs scope=user"},
		{[]string{"scope=user", "linger=1"}, "linger=1", "takes no value"},
		{[]string{"user_manager=proxy"}, "user_manager=proxy", "relay or off"},
		{[]string{"user_manager"}, "user_manager", "needs a value"},
	} {
		_, err := Parse(tc.args)
		var oe *Error
		if !errors.As(err, &oe) {
			t.Errorf("Parse(%q) = %v, want *Error", tc.args, err)
			continue
		}
		if oe.Arg != tc.arg || !strings.Contains(oe.Reason, tc.reason) {
			t.Errorf("Parse(%q) = %v, want it to name %q with %q", tc.args, err, tc.arg, tc.reason)
		}
		if !strings.Contains(err.Error(), tc.arg) {
			t.Errorf("error text %q does not name the argument", err)
		}
	}
}

func TestKnownMatchesParse(t *testing.T) {
	// Every documented option must parse when given a sample value.
	samples := map[string]string{
		"exempt_users": "root", "exempt_groups": "wheel", "only_groups": "users",
		"propagation": "slave", "grace": "1", "helper": "/bin/true", "scope": "user",
		"user_manager": "off",
	}
	// Options that are valid only together with another.
	needs := map[string][]string{"linger": {"scope=user"}}
	for _, opt := range Known {
		arg := opt.Name
		if opt.Value != "" {
			arg += "=" + samples[opt.Name]
		}
		if _, err := Parse(append([]string{arg}, needs[opt.Name]...)); err != nil {
			t.Errorf("documented option %q does not parse: %v", arg, err)
		}
	}
}

// FuzzParse checks that Parse never panics, that an accepted set of
// arguments yields values within their documented ranges, and that every
// rejection names one of the given arguments.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"debug", "grace=1.5", "exempt_users=", "only_groups=a,b", "propagation=private", "helper=/x", "bogus", "grace=1e300"} {
		f.Add(seed, "debug")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		args := []string{a, b}
		o, err := Parse(args)
		if err != nil {
			var oe *Error
			if !errors.As(err, &oe) || (oe.Arg != a && oe.Arg != b) {
				t.Fatalf("Parse(%q): error %v does not name an argument", args, err)
			}
			return
		}
		if o.Grace < 0 || o.Grace > MaxGrace {
			t.Fatalf("Parse(%q): grace %v out of range", args, o.Grace)
		}
		if o.Linger && o.Scope != ScopeUser || o.Scope != ScopeSession && o.Scope != ScopeUser {
			t.Fatalf("Parse(%q): scope %q with linger %v", args, o.Scope, o.Linger)
		}
		if o.Propagation != "slave" && o.Propagation != "private" {
			t.Fatalf("Parse(%q): propagation %q", args, o.Propagation)
		}
		for _, list := range [][]string{o.ExemptUsers, o.ExemptGroups, o.OnlyGroups} {
			for _, n := range list {
				if !validName(n) {
					t.Fatalf("Parse(%q): accepted name %q", args, n)
				}
			}
		}
	})
}
