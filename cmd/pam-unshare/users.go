package main

// Per-user namespaces (scope=user) in status, and the stop command.

import (
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// stopTimeout bounds the wait for a helper's teardown: the longest grace
// period the module accepts, and some.
const stopTimeout = options.MaxGrace + 5*time.Second

// helperScope tells a per-user helper (-U) from a session's.
func helperScope(argv []string) string {
	if a, err := nsinit.ParseHelperArgv(argv); err == nil && a.PerUser {
		return options.ScopeUser
	}
	return options.ScopeSession
}

// askUserHelpers fills in linger and the sessions of each per-user
// namespace from its helper, over the root-only rendezvous; the helper must
// run one of the programs in helpers. Without root, or when a helper does
// not answer, those stay empty.
func askUserHelpers(all []session, helpers map[string]bool) {
	uids, err := nsinit.UserNamespaceUIDs()
	if err != nil {
		return
	}
	for _, uid := range uids {
		for path := range helpers {
			st, err := nsinit.QueryUser(uid, path)
			if err != nil {
				continue
			}
			for i := range all {
				if all[i].HelperPID == st.HelperPID {
					all[i].Linger, all[i].Sessions = st.Linger, st.Sessions
					all[i].Protocol, all[i].Replaced = &st.Protocol, st.Replaced
				}
			}
			break
		}
	}
}

func printUserTable(w io.Writer, users []session) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tSCOPE\tHELPER\tLINGER\tSESSIONS\tPROCS\tAGE")
	for _, s := range users {
		linger := "no"
		if s.Linger {
			linger = "yes"
		}
		fmt.Fprintf(tw, "%s\tuser\t%d\t%s\t%d\t%d\t%s\n", s.User, s.HelperPID, linger, len(s.Sessions), s.Processes,
			formatAge(time.Duration(s.AgeSeconds)*time.Second))
	}
	tw.Flush()
	for _, s := range users {
		if s.Replaced {
			fmt.Fprintf(w, "  %s: helper pid %d runs a file replaced since it started (an upgrade; protocol %d); it serves until the namespace ends\n",
				s.User, s.HelperPID, *s.Protocol)
		}
		for _, x := range s.Sessions {
			fmt.Fprintf(w, "  %s: session of %s, host pid %d\n", s.User, x.Service, x.HostPID)
		}
		for _, pid := range s.Lingering {
			fmt.Fprintf(w, "  %s: lingering pid %d\n", s.User, pid)
		}
	}
}

func cmdStop(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stop", stderr)
	helper := fs.String("helper", nsinit.DefaultHelperPath, "the PID-1 helper that per-user namespaces must run")
	pos, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "%s stop: exactly one USER is needed\n", progName)
		return errUsage
	}
	u, err := user.Lookup(pos[0])
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("user %s: non-numeric uid %q", u.Username, u.Uid)
	}
	pid, err := nsinit.StopUser(uid, *helper, stopTimeout)
	if errors.Is(err, nsinit.ErrNoUserNamespace) {
		return fmt.Errorf("user %s has no per-user namespace", u.Username)
	}
	if err != nil {
		return fmt.Errorf("stop the namespace of user %s: %w", u.Username, err)
	}
	fmt.Fprintf(stdout, "stopped the namespace of user %s (helper pid %d)\n", u.Username, pid)
	return nil
}
