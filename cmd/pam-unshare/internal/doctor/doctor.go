// Package doctor prints doctor's report: the checks, the doors and the live
// doors, as text or as JSON, each piece of text passed through sanitize
// first. It runs no check and decides nothing; the command gathers the
// results (internal/result) from the checks and hands them here.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/result"
)

// Report is doctor's --json output.
type Report struct {
	OK     bool              `json:"ok"`
	Checks []result.Check    `json:"checks"`
	Doors  []result.Check    `json:"doors"`      // the doors: each route to other users' processes
	Live   []result.LiveDoor `json:"live_doors"` // the host-wide check: the processes that see every process
}

// Write prints the report, as text or as JSON, and returns whether every
// check passed (none has status result.Fail).
func Write(stdout io.Writer, checks, doors []result.Check, live []result.LiveDoor, asJSON bool) (bool, error) {
	sanitizeChecks(checks)
	sanitizeChecks(doors)
	sanitizeLive(live)
	rep := Report{OK: true, Checks: checks, Doors: doors, Live: live}
	if rep.Live == nil {
		rep.Live = []result.LiveDoor{}
	}
	if rep.Checks == nil {
		rep.Checks = []result.Check{} // --host-wide
	}
	for _, c := range append(checks[:len(checks):len(checks)], doors...) {
		if c.Status == result.Fail {
			rep.OK = false
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return false, err
		}
	} else {
		Print(stdout, checks, doors)
	}
	return rep.OK, nil
}

// Print writes the human-readable report.
func Print(w io.Writer, checks, doors []result.Check) {
	marks := map[string]string{result.OK: "✓", result.Warn: "!", result.Fail: "✗", result.Skip: "-"}
	fails := 0
	for i, c := range append(checks[:len(checks):len(checks)], doors...) {
		if i == len(checks) {
			fmt.Fprintln(w, "\nDoors (every route to other users' processes):")
		}
		fmt.Fprintf(w, "%s %s: %s\n", marks[c.Status], c.Name, c.Message)
		for _, d := range c.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
		if c.Status == result.Fail {
			fails++
		}
	}
	if fails > 0 {
		fmt.Fprintf(w, "%d problem(s) found\n", fails)
	} else {
		fmt.Fprintln(w, "no problems found")
	}
}
