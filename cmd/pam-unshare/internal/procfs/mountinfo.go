// Package procfs reads the files of /proc that the admin command needs:
// mountinfo, and a process's stat, status and cmdline. It is the one
// parser of each format in the command; doctor, doors, the host-wide check,
// the guards and status all read through it. The helper's C code
// (nsinit/init) keeps its own mountinfo scan: it runs where Go cannot.
package procfs

import (
	"bufio"
	"strconv"
	"strings"
)

// Mount is one line of a mountinfo file (proc(5)):
//
//	ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SRC SUPEROPTS
type Mount struct {
	Root     string   // the directory of the file system shown there, unescaped
	Point    string   // the mount point, unescaped
	Optional []string // "shared:1", "master:2", "unbindable"...
	FSType   string
	Super    string // super options: "rw,hidepid=invisible"
}

// Mounts parses a mountinfo file, in order. Lines that do not have the
// format are skipped.
func Mounts(mountinfo string) []Mount {
	var out []Mount
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 3 {
			continue
		}
		out = append(out, Mount{Root: Unescape(f[3]), Point: Unescape(f[4]), Optional: f[6:], FSType: g[0], Super: g[2]})
	}
	return out
}

// Unescape undoes mountinfo's octal escapes ("\040" for a space).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// RootPropagation returns the propagation type of "/" in a mountinfo file:
// "shared", "slave", "shared and slave", "unbindable" or "private". An
// empty string means "/" was not found.
func RootPropagation(mountinfo string) string {
	prop := ""
	for _, m := range Mounts(mountinfo) {
		if m.Point != "/" {
			continue
		}
		var shared, slave, unbindable bool
		for _, o := range m.Optional {
			switch {
			case strings.HasPrefix(o, "shared:"):
				shared = true
			case strings.HasPrefix(o, "master:"):
				slave = true
			case o == "unbindable":
				unbindable = true
			}
		}
		// A later line for "/" is mounted on top of the earlier ones.
		switch {
		case shared && slave:
			prop = "shared and slave"
		case shared:
			prop = "shared"
		case slave:
			prop = "slave"
		case unbindable:
			prop = "unbindable"
		default:
			prop = "private"
		}
	}
	return prop
}

// ProcMounts returns the procfs mounts of a mountinfo file, in order.
func ProcMounts(mountinfo string) []Mount {
	var out []Mount
	for _, m := range Mounts(mountinfo) {
		if m.FSType == "proc" {
			out = append(out, m)
		}
	}
	return out
}

// Option returns the value of option key in a comma-separated option list
// ("hidepid" in "rw,hidepid=invisible"); the last one wins.
func Option(opts, key string) (string, bool) {
	val, found := "", false
	for _, o := range strings.Split(opts, ",") {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			val, found = v, true
		}
	}
	return val, found
}

// Hidepid returns the hidepid= value of the procfs mounted at /proc in a
// mountinfo file ("0" when it has none, "" when nothing is mounted there).
// A procfs mounted on top of another at the same point hides the one
// below: the last line wins.
func Hidepid(mountinfo string) string {
	hp := ""
	for _, m := range ProcMounts(mountinfo) {
		if m.Point != "/proc" {
			continue
		}
		hp = "0"
		if v, ok := Option(m.Super, "hidepid"); ok {
			hp = v
		}
	}
	return hp
}
