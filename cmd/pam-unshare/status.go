package main

// status: list the live isolated sessions by scanning /proc for their PID-1
// helpers: processes of root that run an installed helper binary as PID 1
// of their own PID namespace.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
)

// userHZ is the unit of the start time in /proc/PID/stat. The kernel fixes
// it at 100 for user space on every architecture Linux runs on today.
const userHZ = 100

// session is one live isolated namespace: a session's, or with scope
// "user" the one all sessions of a user share.
type session struct {
	User       string `json:"user"`
	Service    string `json:"service"` // the PAM service that created it
	HelperPID  int    `json:"helper_pid"`
	LeaderPID  int    `json:"leader_pid,omitempty"` // 0: no PID 2 (yet, or any more)
	Processes  int    `json:"processes"`            // in the namespace, the helper included
	AgeSeconds int64  `json:"age_seconds"`
	PidNS      string `json:"pid_namespace"`
	Scope      string `json:"scope"` // options.ScopeSession or options.ScopeUser
	// Only with scope "user":
	Linger    bool                 `json:"linger,omitempty"`
	Sessions  []nsinit.UserSession `json:"sessions,omitempty"`  // from the helper; needs root
	Lingering []int                `json:"lingering,omitempty"` // PIDs whose parent is the helper
	Protocol  *int                 `json:"protocol,omitempty"`  // the helper's rendezvous protocol version; needs root
	Replaced  bool                 `json:"replaced,omitempty"`  // the helper runs a file replaced since (an upgrade)
}

// procInfo is what status reads about one process.
type procInfo struct {
	pid     int
	comm    string
	exe     string // "" if unreadable
	cmdline []string
	pidNS   string // readlink of ns/pid, "pid:[4026531836]"
	uids    []int  // the Uid: line of status: real, effective, saved, fs
	nsPID   []int  // the NSpid: line of status, outermost first
	start   int64  // field 22 of stat, in clock ticks after boot
	ppid    int    // field 4 of stat
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	asJSON := fs.Bool("json", false, "print the sessions as JSON")
	helper := fs.String("helper", nsinit.DefaultHelperPath, "count processes of the helper at `PATH`, besides those the service files name")
	pamd := fs.String("pamd", pamconf.DefaultDir, "read the helper= options of the service files in `DIR`")
	if err := parseFlagsOnly(fs, args, stdout, stderr); err != nil {
		return err
	}
	helpers := helperPaths(pamconf.NewDirResolver(*pamd), *helper)
	procs, err := readProcs("/proc")
	if err != nil {
		return err
	}
	uptime, err := procfs.Uptime("/proc/uptime")
	if err != nil {
		return err
	}
	sessions := findSessions(procs, helpers, uptime)
	askUserHelpers(sessions, helpers)
	if *asJSON {
		if sessions == nil {
			sessions = []session{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sessions)
	}
	printSessions(stdout, sessions)
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "%s: not root: sessions of other users may be missing or incomplete\n", progName)
	}
	return nil
}

func printSessions(w io.Writer, all []session) {
	if len(all) == 0 {
		fmt.Fprintln(w, "no isolated sessions")
		return
	}
	var sessions, users []session
	for _, s := range all {
		if s.Scope == options.ScopeUser {
			users = append(users, s)
		} else {
			sessions = append(sessions, s)
		}
	}
	if len(sessions) > 0 {
		printSessionTable(w, sessions)
	}
	if len(users) > 0 {
		if len(sessions) > 0 {
			fmt.Fprintln(w)
		}
		printUserTable(w, users)
	}
}

func printSessionTable(w io.Writer, sessions []session) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tSERVICE\tHELPER\tLEADER\tPROCS\tAGE")
	for _, s := range sessions {
		leader := "-"
		if s.LeaderPID > 0 {
			leader = strconv.Itoa(s.LeaderPID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", s.User, s.Service, s.HelperPID, leader, s.Processes,
			formatAge(time.Duration(s.AgeSeconds)*time.Second))
	}
	tw.Flush()
}

// formatAge prints a duration the way ps's ELAPSED column does.
func formatAge(d time.Duration) string {
	s := int64(d / time.Second)
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, sec)
	case h > 0:
		return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d", m, sec)
}

// helperPaths returns the helper binaries sessions can run: the given one
// and every helper= of a pam_unshare.so line in the service files, each
// also with its symbolic links resolved, since /proc/PID/exe shows the
// file that was executed.
func helperPaths(r pamconf.Resolver, helper string) map[string]bool {
	paths := []string{helper}
	if names, err := r.List(); err == nil {
		for _, n := range names {
			data, err := r.Read(n)
			if err != nil {
				continue
			}
			for _, l := range pamconf.Parse(data) {
				if o, err := options.Parse(l.Args); pamconf.IsModuleLine(l) && err == nil && o.Helper != "" {
					paths = append(paths, o.Helper)
				}
			}
		}
	}
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
		if real, err := filepath.EvalSymlinks(p); err == nil {
			set[real] = true
		}
	}
	return set
}

// isHelper reports whether p is a pam_unshare PID-1 helper: PID 1 of a PID
// namespace of its own, named like the helper, running with real and
// effective user ID 0, and executing one of the helper files. Any user can
// make a process that passes the other tests (unshare -Urpf, then exec a
// copy of the helper); only root can run one of root's files as root.
func isHelper(p procInfo, helpers map[string]bool) bool {
	if p.comm != nsinit.HelperComm || len(p.nsPID) < 2 || p.nsPID[len(p.nsPID)-1] != 1 {
		return false
	}
	if len(p.uids) < 2 || p.uids[0] != 0 || p.uids[1] != 0 {
		return false
	}
	if p.exe == "" {
		// Not root: the exe link of root's processes is unreadable. The
		// user IDs above already rule out every process a user can make.
		for h := range helpers {
			if len(p.cmdline) > 0 && filepath.Base(p.cmdline[0]) == filepath.Base(h) {
				return true
			}
		}
		return false
	}
	return helpers[strings.TrimSuffix(p.exe, " (deleted)")] // upgraded under a live session
}

// helperLabels returns SERVICE and USER from the helper's command line,
// or "?" for a command line that is not the helper's.
func helperLabels(argv []string) (service, user string) {
	a, err := nsinit.ParseHelperArgv(argv)
	if err != nil {
		return "?", "?"
	}
	return a.Service, a.User
}

// findSessions groups processes by the helpers' PID namespaces.
func findSessions(procs []procInfo, helpers map[string]bool, uptime float64) []session {
	var out []session
	for _, h := range procs {
		if !isHelper(h, helpers) {
			continue
		}
		s := session{HelperPID: h.pid, PidNS: h.pidNS}
		s.Service, s.User = helperLabels(h.cmdline)
		s.Scope = helperScope(h.cmdline)
		if age := uptime - float64(h.start)/userHZ; age > 0 {
			s.AgeSeconds = int64(age)
		}
		for _, p := range procs {
			if p.pid != h.pid && (h.pidNS == "" || p.pidNS != h.pidNS) {
				continue
			}
			s.Processes++
			if s.Scope == options.ScopeSession && len(p.nsPID) > 0 && p.nsPID[len(p.nsPID)-1] == 2 {
				s.LeaderPID = p.pid
			}
			if s.Scope == options.ScopeUser && p.ppid == h.pid && p.pid != h.pid {
				s.Lingering = append(s.Lingering, p.pid)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].HelperPID < out[j].HelperPID })
	return out
}

// readProcs reads every process of a proc mount. Processes that exit while
// it reads, or that it may not read, are skipped or read in part.
func readProcs(proc string) ([]procInfo, error) {
	pids, err := procfs.PIDs(proc)
	if err != nil {
		return nil, err
	}
	var out []procInfo
	for _, pid := range pids {
		p, ok := readProc(filepath.Join(proc, strconv.Itoa(pid)), pid)
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// readProc reads one /proc/PID directory; ok is false if the process is gone.
func readProc(dir string, pid int) (procInfo, bool) {
	p := procInfo{pid: pid}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return p, false
	}
	p.comm, p.nsPID, p.uids = procfs.ParseStatus(string(status))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, false
	}
	p.start = procfs.StartTime(string(stat))
	p.ppid = procfs.PPID(string(stat))
	if cl, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.cmdline = procfs.SplitCmdline(cl)
	}
	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	p.pidNS, _ = os.Readlink(filepath.Join(dir, "ns", "pid"))
	return p, true
}
