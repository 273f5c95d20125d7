// Package result holds what the checks of doctor find: one Check per line
// of the report, and the live doors of the host-wide check. The checks
// produce them, internal/doctor prints them; neither calls the other.
package result

// Statuses of a Check.
const (
	OK   = "ok"
	Warn = "warn" // works, with a caveat
	Fail = "fail" // sessions will not be isolated, or will break
	Skip = "skip" // could not check (usually: not root)
)

// Check is one line of doctor's report.
type Check struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

// LiveDoor is one group of processes that see every process on the host.
type LiveDoor struct {
	Group     string   `json:"group"`          // "unit php-fpm.service", or "parent 812 (exe /usr/bin/foo)"
	Unit      string   `json:"unit,omitempty"` // the systemd unit, from the cgroup
	Count     int      `json:"processes"`
	Users     []string `json:"users"`
	PIDs      []int    `json:"pids"`
	Example   string   `json:"example"` // one command line, to recognise the group
	System    bool     `json:"system_accounts_only"`
	Fix       string   `json:"fix"`
	GuardUnit string   `json:"guard_unit,omitempty"` // the unit to pass to enable --unit
}
