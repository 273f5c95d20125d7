package procfs

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// PIDs returns the process IDs in a proc mount, in increasing order.
func PIDs(proc string) ([]int, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// StatusValue returns the value of one "Key:\tvalue" line of
// /proc/PID/status, trimmed ("" when absent).
func StatusValue(status, key string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ParseStatus returns the Name:, NSpid: and Uid: fields of
// /proc/PID/status. A field that does not parse is returned empty.
func ParseStatus(s string) (comm string, nsPID, uids []int) {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "Name":
			comm = strings.TrimSpace(v)
		case "NSpid":
			nsPID = Ints(v)
		case "Uid":
			uids = Ints(v)
		}
	}
	return comm, nsPID, uids
}

// Ints parses blank-separated decimal numbers; nil if any is not one.
func Ints(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// StatField returns field n (numbered from 1, as in proc(5)) of a
// /proc/PID/stat line, n >= 3, or "" if the line has no such field. comm,
// field 2, may contain spaces and parentheses, so fields are counted after
// the last ')'.
func StatField(stat string, n int) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if n < 3 || n-3 >= len(f) {
		return ""
	}
	return f[n-3]
}

// StartTime returns field 22 (starttime) of /proc/PID/stat, in clock ticks
// after boot; 0 if absent.
func StartTime(stat string) int64 {
	n, _ := strconv.ParseInt(StatField(stat, 22), 10, 64)
	return n
}

// PPID returns field 4 (ppid) of /proc/PID/stat, 0 if absent.
func PPID(stat string) int {
	n, _ := strconv.Atoi(StatField(stat, 4))
	return n
}

// SplitCmdline splits /proc/PID/cmdline into its arguments.
func SplitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// Uptime returns the first number of an uptime file (/proc/uptime).
func Uptime(path string) (float64, error) {
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
