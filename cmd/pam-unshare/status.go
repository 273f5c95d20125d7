package main

// status: list the live isolated sessions by scanning /proc for their PID-1
// helpers (comm nsinit.HelperComm, PID 1 of their own PID namespace).

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

	"github.com/pam-unshare/pam-unshare/nsinit"
)

// userHZ is the unit of the start time in /proc/PID/stat. The kernel fixes
// it at 100 for user space on every architecture Linux runs on today.
const userHZ = 100

// session is one live isolated session.
type session struct {
	User       string `json:"user"`
	Service    string `json:"service"`
	HelperPID  int    `json:"helper_pid"`
	LeaderPID  int    `json:"leader_pid,omitempty"` // 0: no PID 2 (yet, or any more)
	Processes  int    `json:"processes"`            // in the namespace, the helper included
	AgeSeconds int64  `json:"age_seconds"`
	PidNS      string `json:"pid_namespace"`
}

// procInfo is what status reads about one process.
type procInfo struct {
	pid     int
	comm    string
	exe     string // "" if unreadable
	cmdline []string
	pidNS   string // readlink of ns/pid, "pid:[4026531836]"
	nsPID   []int  // the NSpid: line of status, outermost first
	start   int64  // field 22 of stat, in clock ticks after boot
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	asJSON := fs.Bool("json", false, "print the sessions as JSON")
	if err := parseFlagsOnly(fs, args, stdout, stderr); err != nil {
		return err
	}
	procs, err := readProcs("/proc")
	if err != nil {
		return err
	}
	uptime, err := readUptime("/proc/uptime")
	if err != nil {
		return err
	}
	sessions := findSessions(procs, uptime)
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

func printSessions(w io.Writer, sessions []session) {
	if len(sessions) == 0 {
		fmt.Fprintln(w, "no isolated sessions")
		return
	}
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

// isHelper reports whether p is a pam_unshare PID-1 helper.
func isHelper(p procInfo) bool {
	if p.comm != nsinit.HelperComm || len(p.nsPID) < 2 || p.nsPID[len(p.nsPID)-1] != 1 {
		return false
	}
	exe := strings.TrimSuffix(p.exe, " (deleted)") // upgraded under a live session
	if exe == "" && len(p.cmdline) > 0 {
		exe = p.cmdline[0] // not root: exe is unreadable for others' processes
	}
	return filepath.Base(exe) == nsinit.HelperName
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
func findSessions(procs []procInfo, uptime float64) []session {
	var out []session
	for _, h := range procs {
		if !isHelper(h) {
			continue
		}
		s := session{HelperPID: h.pid, PidNS: h.pidNS}
		s.Service, s.User = helperLabels(h.cmdline)
		if age := uptime - float64(h.start)/userHZ; age > 0 {
			s.AgeSeconds = int64(age)
		}
		for _, p := range procs {
			if p.pid != h.pid && (h.pidNS == "" || p.pidNS != h.pidNS) {
				continue
			}
			s.Processes++
			if len(p.nsPID) > 0 && p.nsPID[len(p.nsPID)-1] == 2 {
				s.LeaderPID = p.pid
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
	pids, err := procPIDs(proc)
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
	p.comm, p.nsPID = parseStatus(string(status))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, false
	}
	p.start = parseStartTime(string(stat))
	if cl, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.cmdline = splitCmdline(cl)
	}
	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	p.pidNS, _ = os.Readlink(filepath.Join(dir, "ns", "pid"))
	return p, true
}

// parseStatus returns the Name: and NSpid: fields of /proc/PID/status.
func parseStatus(s string) (comm string, nsPID []int) {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "Name":
			comm = strings.TrimSpace(v)
		case "NSpid":
			for _, f := range strings.Fields(v) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return comm, nil
				}
				nsPID = append(nsPID, n)
			}
		}
	}
	return comm, nsPID
}

// parseStartTime returns field 22 (starttime) of /proc/PID/stat. comm, field
// 2, may contain spaces and parentheses, so fields are counted after the
// last ')'.
func parseStartTime(stat string) int64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseInt(f[19], 10, 64)
	return n
}

func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// readUptime returns the first number of /proc/uptime.
func readUptime(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty", path)
	}
	return strconv.ParseFloat(f[0], 64)
}
