package nsinit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HelperName is the helper's file name, and argv[0] of every helper that
// Enter starts.
const HelperName = "pam_unshare-init"

// HelperArgs is the helper's command line, the one format that Enter
// writes and pam-unshare status reads back from /proc/PID/cmdline. The
// helper parses it with getopt (parse_args in init/init.c):
//
//	pam_unshare-init [-g GRACE_MS] [-m slave|private] [-P] [-u UID:GID]
//	                 [-U [-H HOST_PID] [-L]] [--] SERVICE USER
type HelperArgs struct {
	Grace       time.Duration // -g, in whole milliseconds; the helper's default is 1 s
	Propagation string        // -m: PropagationSlave or PropagationPrivate; empty means slave
	NoPidfd     bool          // -P: the polling fallback
	Relay       *Account      // -u UID:GID: relay this user's systemd manager (init/relay.c); nil: none
	PerUser     bool          // -U: a per-user namespace (scope=user), see user.go
	HostPID     int           // -H: the PID of the host that created it (status only); 0: absent
	Linger      bool          // -L: the per-user namespace outlives its last session
	Service     string        // a label only; "-" when there is none
	User        string        // a label only; "-" when there is none
}

// defaultHelperGrace is the helper's grace period when -g is absent
// (init.c's main); ParseHelperArgv reports it for such command lines.
const defaultHelperGrace = time.Second

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
	argv := []string{HelperName, "-g", strconv.FormatInt(a.Grace.Milliseconds(), 10)}
	if a.Propagation == PropagationPrivate {
		argv = append(argv, "-m", PropagationPrivate)
	}
	if a.NoPidfd {
		argv = append(argv, "-P")
	}
	if a.Relay != nil {
		argv = append(argv, "-u", strconv.Itoa(a.Relay.UID)+":"+strconv.Itoa(a.Relay.GID))
	}
	if a.PerUser {
		argv = append(argv, "-U")
		if a.HostPID > 0 {
			argv = append(argv, "-H", strconv.Itoa(a.HostPID))
		}
		if a.Linger {
			argv = append(argv, "-L")
		}
	}
	return append(argv, "--", a.Service, a.User)
}

// ParseHelperArgv reads a helper's command line, argv[0] included, as the
// helper itself does: options until "--" or the first other word, then
// exactly SERVICE and USER.
func ParseHelperArgv(argv []string) (HelperArgs, error) {
	a := HelperArgs{Grace: defaultHelperGrace, Propagation: PropagationSlave}
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
options:
	for ; i < len(argv); i++ {
		switch argv[i] {
		case "--":
			i++
			break options
		case "-g":
			v, err := value("-g")
			if err != nil {
				return a, err
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 {
				return a, fmt.Errorf("-g %q: not a grace period in milliseconds", v)
			}
			a.Grace = time.Duration(ms) * time.Millisecond
		case "-m":
			v, err := value("-m")
			if err != nil {
				return a, err
			}
			if v != PropagationSlave && v != PropagationPrivate {
				return a, fmt.Errorf("-m %q: not %s or %s", v, PropagationSlave, PropagationPrivate)
			}
			a.Propagation = v
		case "-P":
			a.NoPidfd = true
		case "-u":
			v, err := value("-u")
			if err != nil {
				return a, err
			}
			acct, err := parseAccount(v)
			if err != nil {
				return a, fmt.Errorf("-u %q: %v", v, err)
			}
			a.Relay = &acct
		case "-U":
			a.PerUser = true
		case "-L":
			a.Linger = true
		case "-H":
			v, err := value("-H")
			if err != nil {
				return a, err
			}
			pid, err := strconv.Atoi(v)
			if err != nil || pid <= 0 {
				return a, fmt.Errorf("-H %q: not a PID", v)
			}
			a.HostPID = pid
		default:
			if len(argv[i]) > 1 && argv[i][0] == '-' {
				return a, fmt.Errorf("unknown option %q", argv[i])
			}
			break options
		}
	}
	if len(argv)-i != 2 {
		return a, fmt.Errorf("want SERVICE and USER after the options, got %q", argv[i:])
	}
	a.Service, a.User = argv[i], argv[i+1]
	return a, nil
}

// parseAccount reads -u's UID:GID, two decimal ids.
func parseAccount(v string) (Account, error) {
	u, g, ok := strings.Cut(v, ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return Account{}, errors.New("not UID:GID")
	}
	return Account{UID: int(uid), GID: int(gid)}, nil
}
