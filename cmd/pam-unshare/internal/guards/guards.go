// Package guards holds the guards: two configuration files that close the
// routes to other users' processes which run outside every PAM session.
//
//   - the user-manager guard, a drop-in for user@.service that gives each
//     user's systemd instance (systemd --user, started by PID 1 outside every
//     session) a /proc that shows only that user's processes;
//   - the D-Bus guard, a system bus policy that denies systemd's process
//     lists (GetUnitProcesses, GetProcesses) to everyone but root.
//
// enable installs and activates both, disable removes them once no service
// uses the module. The packages' removal scripts (packaging/) run
// "pam-unshare disable", so removing the package leaves no guard behind.
// Each guard is one row of a table, found by name; what differs between
// them (when it applies, how the running system rereads it) is in its row.
package guards

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/atomicfile"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
)

// Names of the guards, for Lookup.
const (
	UserManager = "user-manager guard"
	DBus        = "D-Bus guard"
)

// MinProtectProcSystemd is the first systemd release with ProtectProc=.
const MinProtectProcSystemd = 247

// userManagerGuard is the drop-in. ProtectProc=invisible mounts a private
// /proc with hidepid=invisible for the user manager and everything it
// starts, so they see only processes of their own user. ProcSubset=pid is
// left out: it hides no further process, and it hides /proc/meminfo,
// /proc/uptime, /proc/sys..., which free, uptime, top and many services read.
const userManagerGuard = `# Installed by "pam-unshare enable", removed by "pam-unshare disable".
# Each user's systemd instance (and everything it starts: systemd-run --user,
# user units and timers, D-Bus activated session services) runs outside every
# PAM session; with this it sees only its own user's processes. See
# pam_unshare(8), section "What is hidden and what is not".
[Service]
ProtectProc=invisible
`

// dbusGuardMethods are the systemd calls that return the command lines of a
// unit's processes, as interface and member. PID 1 reads them from its own
// /proc, so neither hidepid= nor a PID namespace hides them.
var dbusGuardMethods = [][2]string{
	{"org.freedesktop.systemd1.Manager", "GetUnitProcesses"},
	{"org.freedesktop.systemd1.Service", "GetProcesses"},
	{"org.freedesktop.systemd1.Scope", "GetProcesses"},
	{"org.freedesktop.systemd1.Slice", "GetProcesses"},
	{"org.freedesktop.systemd1.Socket", "GetProcesses"},
	{"org.freedesktop.systemd1.Mount", "GetProcesses"},
	{"org.freedesktop.systemd1.Swap", "GetProcesses"},
}

// dbusGuard returns the bus policy. Every rule names destination, interface
// and member: dbus-daemon rejects a whole file in which a rule names a
// member without an interface, and says so only in its log. A deny rule
// with an interface also matches a call that carries no interface at all.
// The denies sit in the default context, which /etc/dbus-1/system.d files
// append after systemd's own allows; root's user context comes after both.
func dbusGuard() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Installed by "pam-unshare enable", removed by "pam-unshare disable".
     systemd answers these calls with the command lines of a unit's
     processes, read from PID 1's /proc; only root may make them.
     See pam_unshare(8), section "What is hidden and what is not". -->
<busconfig>
  <policy context="default">
`)
	for _, m := range dbusGuardMethods {
		fmt.Fprintf(&b, "    <deny send_destination=\"org.freedesktop.systemd1\"\n          send_interface=%q send_member=%q/>\n", m[0], m[1])
	}
	b.WriteString("  </policy>\n  <policy user=\"root\">\n")
	for _, m := range dbusGuardMethods {
		fmt.Fprintf(&b, "    <allow send_destination=\"org.freedesktop.systemd1\"\n           send_interface=%q send_member=%q/>\n", m[0], m[1])
	}
	b.WriteString("  </policy>\n</busconfig>\n")
	return b.String()
}

// Guard is one guard: its name, where it goes, what it holds, when it
// applies and what makes the running system read it.
type Guard struct {
	Name     string // "user-manager guard"
	Path     string // absolute, on the target system
	Contents string
	// applies returns whether the guard can work on h, and if not why.
	applies func(h Host) (bool, string)
	// reload are the commands, tried in turn, that make the running system
	// read a changed file; the first one found that succeeds is enough.
	reload [][]string
	// ownDir: the file's directory is made for it and removed with it
	// when empty.
	ownDir bool
}

// table is every guard, in the order enable installs them.
var table = []Guard{
	{
		Name: UserManager, Path: "/etc/systemd/system/user@.service.d/pam-unshare.conf",
		Contents: userManagerGuard, applies: userManagerApplies, ownDir: true,
		reload: [][]string{{"systemctl", "daemon-reload"}},
	},
	{
		Name: DBus, Path: "/etc/dbus-1/system.d/pam-unshare.conf",
		Contents: dbusGuard(), applies: dbusApplies,
		// ReloadConfig is the bus's own call; dbus-daemon and dbus-broker
		// both have it. dbus-send when busctl (systemd) is missing.
		reload: [][]string{
			{"busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ReloadConfig"},
			{"dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.ReloadConfig"},
		},
	},
}

// All returns every guard, in the order enable installs them.
func All() []Guard { return append([]Guard(nil), table...) }

// Lookup returns the guard called name (UserManager, DBus); it panics on
// any other name, which is a programming error.
func Lookup(name string) Guard {
	for _, g := range table {
		if g.Name == name {
			return g
		}
	}
	panic("guards: no guard " + strconv.Quote(name))
}

// Host describes what the target system has, for deciding which guards
// apply. Root is "/" for this system; any other root is only written to.
type Host struct {
	Root string
}

// Live is this system: the guards act on it, and are activated after a
// change.
var Live = Host{Root: "/"}

// live reports whether the guards act on the running system.
func (h Host) live() bool { return h.Root == "/" }

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// SystemdBooted reports whether the running system was booted with systemd
// (the test sd_booted() uses).
func SystemdBooted() bool {
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// SystemdVersion is the running systemd's version number, or 0.
func SystemdVersion() int {
	out, err := exec.Command("systemctl", "--version").Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "systemd" {
		return 0
	}
	v, _ := strconv.Atoi(f[1])
	return v
}

// DBusConfigured reports whether the system has a D-Bus system bus
// configuration (dbus-daemon and dbus-broker both read system.d policy files).
func (h Host) DBusConfigured() bool {
	for _, p := range []string{"/usr/share/dbus-1/system.conf", "/etc/dbus-1/system.conf"} {
		if _, err := os.Stat(h.path(p)); err == nil {
			return true
		}
	}
	return false
}

func userManagerApplies(h Host) (bool, string) {
	if !h.live() {
		if _, err := os.Stat(h.path("/etc/systemd")); err != nil {
			return false, "no /etc/systemd: no systemd user manager to guard"
		}
		return true, ""
	}
	if !SystemdBooted() {
		return false, "not booted with systemd: there is no systemd user manager to guard"
	}
	if v := SystemdVersion(); v > 0 && v < MinProtectProcSystemd {
		return false, fmt.Sprintf("systemd %d has no ProtectProc= (needs %d or later): "+
			"the user manager and everything it starts see every process", v, MinProtectProcSystemd)
	}
	return true, ""
}

func dbusApplies(h Host) (bool, string) {
	if !h.DBusConfigured() {
		return false, "no D-Bus system bus configuration: nothing to guard"
	}
	return true, ""
}

// Applies returns whether guard g can work on h, and if not why.
func (h Host) Applies(g Guard) (bool, string) { return g.applies(h) }

// Warn receives a message about a guard that is not an error: a guard that
// does not apply, or one that takes effect later.
type Warn func(msg string)

// Install writes the guard files that apply and activates them on the
// running system. It prints one line per guard.
func Install(h Host, stdout io.Writer, warn Warn) error {
	var errs []error
	for _, g := range table {
		ok, why := h.Applies(g)
		if !ok {
			warn(fmt.Sprintf("%s not installed: %s", g.Name, why))
			continue
		}
		p := h.path(g.Path)
		if old, err := os.ReadFile(p); err == nil && string(old) == g.Contents {
			fmt.Fprintf(stdout, "%s already in place: %s\n", g.Name, p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := atomicfile.Write(p, []byte(g.Contents), atomicfile.Mode(0o644)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.Name, err))
			continue
		}
		fmt.Fprintf(stdout, "%s installed: %s\n", g.Name, p)
		if h.live() {
			if err := activate(g, warn); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// dbus-daemon reports a policy file it rejects only in its log: ask
	// the bus, as an unprivileged caller, whether the deny bites.
	if ok, _ := h.Applies(Lookup(DBus)); ok && h.live() && SystemdBooted() {
		if denied, said, err := ProbeDBus(true); err == nil && !denied {
			errs = append(errs, fmt.Errorf("D-Bus guard: installed, but the system bus still answers GetUnitProcesses "+
				"to user nobody (%s); the bus may have rejected %s: see its log (journalctl -u dbus)", said, Lookup(DBus).Path))
		}
	}
	if h.live() {
		if ok, _ := h.Applies(Lookup(UserManager)); ok {
			if lagging := UnguardedUserManagers(); len(lagging) > 0 {
				warn(fmt.Sprintf("user managers started before the guard still see every process until they restart "+
					"(when the user's last session ends, or \"systemctl restart user@UID.service\"): %s",
					strings.Join(lagging, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// Remove deletes the guard files and activates the change.
func Remove(h Host, stdout io.Writer, warn Warn) error {
	var errs []error
	for _, g := range table {
		p := h.path(g.Path)
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if g.ownDir {
			os.Remove(filepath.Dir(p))
		}
		fmt.Fprintf(stdout, "%s removed: %s\n", g.Name, p)
		if h.live() {
			if err := activate(g, warn); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// activate makes the running system read a changed guard file.
func activate(g Guard, warn Warn) error {
	var last error
	for _, c := range g.reload {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("%s: %s: %v: %s", g.Name, strings.Join(c, " "), err, strings.TrimSpace(string(out)))
	}
	if last == nil {
		warn(fmt.Sprintf("%s: found neither %s to activate it; it takes effect at the next boot", g.Name, g.reload[0][0]))
	}
	return last
}

// userManager is one running systemd --user.
type userManager struct {
	pid     int
	uid     int
	guarded bool // its /proc hides other users' processes
}

// userManagers lists the running user managers of users other than root
// and whether each one's /proc hides other users (hidepid=invisible or 2).
func userManagers() []userManager {
	ents, _ := os.ReadDir("/proc")
	var out []userManager
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		argv := procfs.SplitCmdline(cmdline)
		if len(argv) < 2 || filepath.Base(argv[0]) != "systemd" || argv[1] != "--user" {
			continue
		}
		st, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if err != nil {
			continue
		}
		uid := int(st.Sys().(*syscall.Stat_t).Uid)
		if uid == 0 {
			continue // root sees every process anyway
		}
		mountinfo, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		hp := procfs.Hidepid(string(mountinfo))
		out = append(out, userManager{pid: pid, uid: uid, guarded: hp == "invisible" || hp == "2"})
	}
	return out
}

// UnguardedUserManagers names the running user managers that see every
// process, as "user@UID.service (pid N)".
func UnguardedUserManagers() []string {
	var out []string
	for _, m := range userManagers() {
		if !m.guarded {
			out = append(out, fmt.Sprintf("user@%d.service (pid %d)", m.uid, m.pid))
		}
	}
	return out
}

// nobodyCredential is the unprivileged identity of the D-Bus probe.
func nobodyCredential() *syscall.Credential {
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.Atoi(u.Uid); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.Atoi(u.Gid); err == nil {
			gid = uint32(n)
		}
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
}

// ProbeDBus calls GetUnitProcesses on the system bus, the way any user
// could: as user nobody, or as the caller. It returns whether the call was
// denied, and what the bus said.
func ProbeDBus(asNobody bool) (denied bool, said string, err error) {
	args := []string{"--system", "--timeout=10", "call", "org.freedesktop.systemd1",
		"/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "GetUnitProcesses", "s", "init.scope"}
	if !asNobody {
		out, err := exec.Command("busctl", args...).CombinedOutput()
		said := strings.TrimSpace(string(out))
		if err == nil {
			return false, firstLine(said), nil
		}
		if strings.Contains(said, "Access denied") {
			return true, firstLine(said), nil
		}
		return false, said, fmt.Errorf("busctl: %v: %s", err, said)
	}
	if _, err := exec.LookPath("busctl"); err != nil {
		return false, "", errors.New("busctl (systemd) not found")
	}
	cmd := exec.Command("busctl", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobodyCredential()}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	said = strings.TrimSpace(out.String())
	if runErr == nil {
		return false, firstLine(said), nil
	}
	if strings.Contains(said, "Access denied") || strings.Contains(said, "AccessDenied") {
		return true, firstLine(said), nil
	}
	return false, said, fmt.Errorf("busctl as nobody: %v: %s", runErr, said)
}

// firstLine is the bus's answer cut to its first line.
func firstLine(s string) string {
	if first, _, cut := strings.Cut(s, "\n"); cut {
		return first + " ..."
	}
	return s
}
