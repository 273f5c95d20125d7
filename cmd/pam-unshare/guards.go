package main

// The guard half of enable and disable (internal/guards holds the guards).

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/guards"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
)

// updateGuards is the guard half of enable and disable. The guards act on
// the running system, so they follow only edits of its own /etc/pam.d.
func updateGuards(op, pamd string, r pamconf.Resolver, dryRun bool, stdout, stderr io.Writer) error {
	if pamd != pamconf.DefaultDir {
		fmt.Fprintf(stderr, "%s: guards left alone: --pamd %s is not this system's %s\n", progName, pamd, pamconf.DefaultDir)
		return nil
	}
	h := guards.Live
	warn := func(msg string) { fmt.Fprintf(stderr, "%s: %s\n", progName, msg) }
	if op == "enable" {
		if dryRun {
			for _, g := range guards.All() {
				if ok, why := h.Applies(g); ok {
					fmt.Fprintf(stdout, "would install the %s: %s\n", g.Name, g.Path)
				} else {
					fmt.Fprintf(stdout, "would not install the %s: %s\n", g.Name, why)
				}
			}
			return nil
		}
		return guards.Install(h, stdout, warn)
	}
	if svc, ok := pamconf.AnyServiceRunsModule(r); ok {
		fmt.Fprintf(stderr, "%s: guards kept: service %s still runs %s\n", progName, svc, pamconf.ModuleName)
		return nil
	}
	if dryRun {
		for _, g := range guards.All() {
			if _, err := os.Stat(g.Path); err == nil {
				fmt.Fprintf(stdout, "would remove the %s: %s\n", g.Name, g.Path)
			}
		}
		return nil
	}
	return guards.Remove(h, stdout, warn)
}

// firstLine is s cut to its first line, for a one-line message.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
