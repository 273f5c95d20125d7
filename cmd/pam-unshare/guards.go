package main

// The guards: two configuration files that close the routes to other users'
// processes which run outside every PAM session.
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
	"time"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
)

// Paths of the guard files.
const (
	userManagerGuardPath = "/etc/systemd/system/user@.service.d/pam-unshare.conf"
	dbusGuardPath        = "/etc/dbus-1/system.d/pam-unshare.conf"
)

// minProtectProcSystemd is the first systemd release with ProtectProc=.
const minProtectProcSystemd = 247

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

// guardFile is one guard: where it goes, what it holds, and what makes the
// running system read it.
type guardFile struct {
	name     string // "user-manager guard"
	path     string // absolute, on the target system
	contents string
}

func guardFiles() []guardFile {
	return []guardFile{
		{"user-manager guard", userManagerGuardPath, userManagerGuard},
		{"D-Bus guard", dbusGuardPath, dbusGuard()},
	}
}

// guardHost describes what the target system has, for deciding which guards
// apply. root is "/" for this system; any other root is only written to.
type guardHost struct {
	root string
}

// live reports whether the guards act on the running system (and so are
// activated after a change).
func (h guardHost) live() bool { return h.root == "/" }

func (h guardHost) path(p string) string { return filepath.Join(h.root, p) }

// systemdBooted reports whether the running system was booted with systemd
// (the test sd_booted() uses).
func systemdBooted() bool {
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// systemdVersion is the running systemd's version number, or 0.
func systemdVersion() int {
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

// dbusConfigured reports whether the system has a D-Bus system bus
// configuration (dbus-daemon and dbus-broker both read system.d policy files).
func (h guardHost) dbusConfigured() bool {
	for _, p := range []string{"/usr/share/dbus-1/system.conf", "/etc/dbus-1/system.conf"} {
		if _, err := os.Stat(h.path(p)); err == nil {
			return true
		}
	}
	return false
}

// applicable returns whether guard g can work on this system, and if not
// why.
func (h guardHost) applicable(g guardFile) (bool, string) {
	switch g.path {
	case userManagerGuardPath:
		if !h.live() {
			if _, err := os.Stat(h.path("/etc/systemd")); err != nil {
				return false, "no /etc/systemd: no systemd user manager to guard"
			}
			return true, ""
		}
		if !systemdBooted() {
			return false, "not booted with systemd: there is no systemd user manager to guard"
		}
		if v := systemdVersion(); v > 0 && v < minProtectProcSystemd {
			return false, fmt.Sprintf("systemd %d has no ProtectProc= (needs %d or later): "+
				"the user manager and everything it starts see every process", v, minProtectProcSystemd)
		}
	case dbusGuardPath:
		if !h.dbusConfigured() {
			return false, "no D-Bus system bus configuration: nothing to guard"
		}
	}
	return true, ""
}

// installGuards writes the guard files that apply and activates them on the
// running system. It prints one line per guard.
func installGuards(h guardHost, stdout, stderr io.Writer) error {
	var errs []error
	for _, g := range guardFiles() {
		ok, why := h.applicable(g)
		if !ok {
			fmt.Fprintf(stderr, "%s: %s not installed: %s\n", progName, g.name, why)
			continue
		}
		p := h.path(g.path)
		if old, err := os.ReadFile(p); err == nil && string(old) == g.contents {
			fmt.Fprintf(stdout, "%s already in place: %s\n", g.name, p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := writeAtomic(p, []byte(g.contents), fileMode(0o644)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.name, err))
			continue
		}
		fmt.Fprintf(stdout, "%s installed: %s\n", g.name, p)
		if h.live() {
			if err := activate(g, stderr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// dbus-daemon reports a policy file it rejects only in its log: ask
	// the bus, as an unprivileged caller, whether the deny bites.
	if ok, _ := h.applicable(guardFiles()[1]); ok && h.live() && systemdBooted() {
		if denied, said, err := probeDBusGuard(); err == nil && !denied {
			errs = append(errs, fmt.Errorf("D-Bus guard: installed, but the system bus still answers GetUnitProcesses "+
				"to user nobody (%s); the bus may have rejected %s: see its log (journalctl -u dbus)", said, dbusGuardPath))
		}
	}
	if h.live() {
		if ok, _ := h.applicable(guardFiles()[0]); ok {
			if lagging := unguardedUserManagers(); len(lagging) > 0 {
				fmt.Fprintf(stderr, "%s: user managers started before the guard still see every process until they restart "+
					"(when the user's last session ends, or \"systemctl restart user@UID.service\"): %s\n",
					progName, strings.Join(lagging, ", "))
			}
		}
	}
	return errors.Join(errs...)
}

// removeGuards deletes the guard files and activates the change.
func removeGuards(h guardHost, stdout, stderr io.Writer) error {
	var errs []error
	for _, g := range guardFiles() {
		p := h.path(g.path)
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The drop-in directory was made by enable; remove it when empty.
		if g.path == userManagerGuardPath {
			os.Remove(filepath.Dir(p))
		}
		fmt.Fprintf(stdout, "%s removed: %s\n", g.name, p)
		if h.live() {
			if err := activate(g, stderr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// activate makes the running system read a changed guard file.
func activate(g guardFile, stderr io.Writer) error {
	var cmds [][]string
	switch g.path {
	case userManagerGuardPath:
		cmds = [][]string{{"systemctl", "daemon-reload"}}
	case dbusGuardPath:
		// ReloadConfig is the bus's own call; dbus-daemon and dbus-broker
		// both have it. dbus-send when busctl (systemd) is missing.
		cmds = [][]string{
			{"busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ReloadConfig"},
			{"dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.ReloadConfig"},
		}
	}
	var last error
	for _, c := range cmds {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("%s: %s: %v: %s", g.name, strings.Join(c, " "), err, strings.TrimSpace(string(out)))
	}
	if last == nil {
		fmt.Fprintf(stderr, "%s: %s: found neither %s to activate it; it takes effect at the next boot\n",
			progName, g.name, cmds[0][0])
	}
	return last
}

// fileMode is an os.FileInfo that carries only a mode, for writeAtomic
// when the file is new.
type fileMode os.FileMode

func (m fileMode) Name() string       { return "" }
func (m fileMode) Size() int64        { return 0 }
func (m fileMode) Mode() os.FileMode  { return os.FileMode(m) }
func (m fileMode) ModTime() time.Time { return time.Time{} }
func (m fileMode) IsDir() bool        { return false }
func (m fileMode) Sys() any           { return nil }

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
		argv := strings.Split(strings.TrimRight(readFileOr(fmt.Sprintf("/proc/%d/cmdline", pid)), "\x00"), "\x00")
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
		hp := procfs.Hidepid(readFileOr(fmt.Sprintf("/proc/%d/mountinfo", pid)))
		out = append(out, userManager{pid: pid, uid: uid, guarded: hp == "invisible" || hp == "2"})
	}
	return out
}

// unguardedUserManagers names the running user managers that see every
// process, as "user@UID.service (pid N)".
func unguardedUserManagers() []string {
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

// probeDBusGuard calls GetUnitProcesses as user nobody on the system bus,
// the way any user could. It returns whether the call was denied, and what
// the bus said.
func probeDBusGuard() (denied bool, said string, err error) {
	if _, err := exec.LookPath("busctl"); err != nil {
		return false, "", errors.New("busctl (systemd) not found")
	}
	cmd := exec.Command("busctl", "--system", "--timeout=10", "call", "org.freedesktop.systemd1",
		"/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "GetUnitProcesses", "s", "init.scope")
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

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// updateGuards is the guard half of enable and disable. The guards act on
// the running system, so they follow only edits of its own /etc/pam.d.
func updateGuards(op, pamd string, r Resolver, dryRun bool, stdout, stderr io.Writer) error {
	if pamd != defaultPamd {
		fmt.Fprintf(stderr, "%s: guards left alone: --pamd %s is not this system's %s\n", progName, pamd, defaultPamd)
		return nil
	}
	h := guardHost{root: "/"}
	if op == "enable" {
		if dryRun {
			for _, g := range guardFiles() {
				if ok, why := h.applicable(g); ok {
					fmt.Fprintf(stdout, "would install the %s: %s\n", g.name, g.path)
				} else {
					fmt.Fprintf(stdout, "would not install the %s: %s\n", g.name, why)
				}
			}
			return nil
		}
		return installGuards(h, stdout, stderr)
	}
	if svc, ok := anyServiceRunsModule(r); ok {
		fmt.Fprintf(stderr, "%s: guards kept: service %s still runs %s\n", progName, svc, moduleName)
		return nil
	}
	if dryRun {
		for _, g := range guardFiles() {
			if _, err := os.Stat(g.path); err == nil {
				fmt.Fprintf(stdout, "would remove the %s: %s\n", g.name, g.path)
			}
		}
		return nil
	}
	return removeGuards(h, stdout, stderr)
}
