package nsinit

/*
#include "handshake.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// HelperName is the helper's file name, and argv[0] of every helper that
// Enter starts.
const HelperName = "pam_unshare-init"

// The helper's options, "-" and the letters of enum nsinit_opt in
// handshake.h, where the command line's grammar is written down.
const (
	optGrace       = "-" + string(rune(C.NSINIT_OPT_GRACE))
	optPropagation = "-" + string(rune(C.NSINIT_OPT_PROPAGATION))
	optNoPidfd     = "-" + string(rune(C.NSINIT_OPT_NO_PIDFD))
	optRelay       = "-" + string(rune(C.NSINIT_OPT_RELAY))
	optPerUser     = "-" + string(rune(C.NSINIT_OPT_PER_USER))
	optHostPID     = "-" + string(rune(C.NSINIT_OPT_HOST_PID))
	optLinger      = "-" + string(rune(C.NSINIT_OPT_LINGER))
)

// DefaultGrace is the helper's grace period when -g is absent, and the
// module's default for grace= (NSINIT_GRACE_DEFAULT_MS in handshake.h).
const DefaultGrace = time.Duration(C.NSINIT_GRACE_DEFAULT_MS) * time.Millisecond

// maxHelperGrace is the largest -g the helper takes (NSINIT_GRACE_MAX_MS).
const maxHelperGrace = time.Duration(C.NSINIT_GRACE_MAX_MS) * time.Millisecond

// HelperArgs is the helper's command line, the one format that Enter
// writes and pam-unshare status reads back from /proc/PID/cmdline; the
// helper parses it into struct nsinit_config (config_parse, init/args.c).
// Its grammar, and what each option means, is in handshake.h ("The
// helper's command line"); ParseHelperArgv follows it as the C parser
// does, and TestHelperArgvCParser checks the two agree.
type HelperArgs struct {
	Grace       time.Duration // -g, in whole milliseconds; DefaultGrace when absent
	Propagation string        // -m: PropagationSlave or PropagationPrivate; empty means slave
	NoPidfd     bool          // -P: the polling fallback
	Relay       *Account      // -u UID:GID: relay this user's systemd manager (init/relay.c); nil: none
	PerUser     bool          // -U: a per-user namespace (scope=user), see user.go
	HostPID     int           // -H: the PID of the host that created it (status only); 0: absent
	Linger      bool          // -L: the per-user namespace outlives its last session
	Service     string        // a label only; "-" when there is none
	User        string        // a label only; "-" when there is none
}

// helperArgs is the command line Enter gives the helper for cfg.
func helperArgs(cfg Config) HelperArgs {
	return HelperArgs{Grace: cfg.Grace, Propagation: cfg.Propagation, NoPidfd: cfg.NoPidfd,
		Relay: cfg.UserManager, Service: label(cfg.Service), User: label(cfg.User)}
}

func label(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Argv is the command line, argv[0] included. "--" ends the options, so a
// label that starts with "-" is not taken for one.
func (a HelperArgs) Argv() []string {
	argv := []string{HelperName, optGrace, strconv.FormatInt(a.Grace.Milliseconds(), 10)}
	if a.Propagation == PropagationPrivate {
		argv = append(argv, optPropagation, PropagationPrivate)
	}
	if a.NoPidfd {
		argv = append(argv, optNoPidfd)
	}
	if a.Relay != nil {
		argv = append(argv, optRelay, strconv.Itoa(a.Relay.UID)+":"+strconv.Itoa(a.Relay.GID))
	}
	if a.PerUser {
		argv = append(argv, optPerUser)
		if a.HostPID > 0 {
			argv = append(argv, optHostPID, strconv.Itoa(a.HostPID))
		}
		if a.Linger {
			argv = append(argv, optLinger)
		}
	}
	return append(argv, "--", a.Service, a.User)
}

// ParseHelperArgv reads a helper's command line, argv[0] included, as the
// helper itself does (config_parse, init/args.c): one option a word, its
// value the next word, until "--" or the first other word, then exactly
// SERVICE and USER. It refuses what the helper refuses.
func ParseHelperArgv(argv []string) (HelperArgs, error) {
	a := HelperArgs{Grace: DefaultGrace, Propagation: PropagationSlave}
	if len(argv) == 0 {
		return a, errors.New("empty helper command line")
	}
	i := 1
	value := func(opt string) (string, error) {
		if i+1 >= len(argv) {
			return "", fmt.Errorf("option %s needs a value", opt)
		}
		i++
		return argv[i], nil
	}
	for ; i < len(argv); i++ {
		opt := argv[i]
		if opt == "--" {
			i++
			break
		}
		if len(opt) < 2 || opt[0] != '-' {
			break // the first label ("-" is one)
		}
		var v string
		var err error
		switch opt {
		case optGrace, optPropagation, optRelay, optHostPID:
			if v, err = value(opt); err != nil {
				return a, err
			}
		}
		switch opt {
		case optGrace:
			ms, ok := decimal(v, int64(maxHelperGrace/time.Millisecond))
			if !ok {
				return a, fmt.Errorf("%s %q: not a grace period in milliseconds", opt, v)
			}
			a.Grace = time.Duration(ms) * time.Millisecond
		case optPropagation:
			if v != PropagationSlave && v != PropagationPrivate {
				return a, fmt.Errorf("%s %q: not %s or %s", opt, v, PropagationSlave, PropagationPrivate)
			}
			a.Propagation = v
		case optNoPidfd:
			a.NoPidfd = true
		case optRelay:
			acct, err := parseAccount(v)
			if err != nil {
				return a, fmt.Errorf("%s %q: %v", opt, v, err)
			}
			a.Relay = &acct
		case optPerUser:
			a.PerUser = true
		case optLinger:
			a.Linger = true
		case optHostPID:
			pid, ok := decimal(v, math.MaxInt32)
			if !ok || pid == 0 {
				return a, fmt.Errorf("%s %q: not a PID", opt, v)
			}
			a.HostPID = int(pid)
		default:
			return a, fmt.Errorf("unknown option %q", opt)
		}
	}
	if a.Linger && !a.PerUser {
		return a, fmt.Errorf("%s without %s", optLinger, optPerUser)
	}
	if a.PerUser && a.NoPidfd {
		return a, fmt.Errorf("%s with %s", optPerUser, optNoPidfd)
	}
	if len(argv)-i != 2 {
		return a, fmt.Errorf("want SERVICE and USER after the options, got %q", argv[i:])
	}
	a.Service, a.User = argv[i], argv[i+1]
	return a, nil
}

// maxID is the largest uid or gid: (uid_t)-1 means "no id" to the kernel.
const maxID = math.MaxUint32 - 1

// parseAccount reads -u's UID:GID, two decimal ids.
func parseAccount(v string) (Account, error) {
	u, g, ok := strings.Cut(v, ":")
	uid, ok1 := decimal(u, maxID)
	gid, ok2 := decimal(g, maxID)
	if !ok || !ok1 || !ok2 {
		return Account{}, errors.New("not UID:GID")
	}
	return Account{UID: int(uid), GID: int(gid)}, nil
}

// decimal reads a whole decimal number from 0 to max: digits only, no
// sign or space, as parse_number in init/args.c.
func decimal(s string, max int64) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s) {
		d := int64(c) - '0'
		if d < 0 || d > 9 || n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
