package main

// Doors: every route by which a user could see other users' processes.
// enable with no service names closes the PAM ones,
// doctor lists each door on its own line.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/guards"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
)

// notDoors are services that start processes but are left out on purpose.
var notDoors = map[string]string{
	"runuser":      "only root can run runuser, and root sees every process anyway",
	"runuser-l":    "only root can run runuser, and root sees every process anyway",
	"systemd-user": "the user manager's own session: the module returns PAM_IGNORE there; the user-manager guard covers it",
}

// ---- doctor ---------------------------------------------------------------

// doorChecks is doctor's "doors" section.
func doorChecks(pamd string, root bool) []check {
	var out []check
	r := pamconf.NewDirResolver(pamd)
	for _, s := range pamconf.ProcessServices {
		if pamconf.ServiceExists(pamd, s.Name) {
			out = append(out, serviceDoor(r, pamd, s))
		}
	}
	for _, n := range sortedKeys(notDoors) {
		if pamconf.ServiceExists(pamd, n) {
			out = append(out, check{Name: "PAM service " + n, Status: statusOK, Message: "left out: " + notDoors[n]})
		}
	}
	out = append(out, userManagerDoor(), dbusDoor(root))
	mountinfo := readFileOr("/proc/self/mountinfo")
	out = append(out, foreignProcDoor(mountinfo), hidepidInfo(mountinfo))
	return out
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// serviceDoor reports whether one process service isolates its sessions.
func serviceDoor(r pamconf.Resolver, pamd string, s pamconf.ProcessService) check {
	c := check{Name: "PAM service " + s.Name}
	found, p, err := pamconf.CheckStack(r, s.Name)
	switch {
	case err != nil:
		c.Status, c.Message = statusFail, "cannot read its session stack: "+err.Error()
	case !found:
		c.Status = statusFail
		c.Message = fmt.Sprintf("not isolated: %s see every process on the host", s.What)
		fix := progName + " enable"
		if pamd != pamconf.DefaultDir {
			fix += " --pamd " + pamd
		}
		if !s.Auto {
			fix += " " + s.Name + " (not enabled by default: a graphical session under the module is untested)"
		}
		c.Details = []string{"fix: " + fix}
	case !p.Sound():
		c.Status = statusFail
		c.Message = fmt.Sprintf("%s is in its session stack but not safely (see \"service %s\" above)", pamconf.ModuleName, s.Name)
	default:
		c.Status = statusOK
		c.Message = fmt.Sprintf("isolated (%s line %d)", p.Entry.File, p.Entry.Line)
	}
	return c
}

// userManagerDoor reports the user-manager guard.
func userManagerDoor() check {
	guardPath := guards.Lookup(guards.UserManager).Path
	c := check{Name: guards.UserManager}
	if !guards.SystemdBooted() {
		c.Status, c.Message = statusOK, "not booted with systemd: no systemd user manager"
		return c
	}
	if v := guards.SystemdVersion(); v > 0 && v < guards.MinProtectProcSystemd {
		c.Status = statusFail
		c.Message = fmt.Sprintf("systemd %d has no ProtectProc= (needs %d): systemd-run --user, user units and timers "+
			"see every process, and this cannot be closed on this systemd", v, guards.MinProtectProcSystemd)
		return c
	}
	data, err := os.ReadFile(guardPath)
	if err != nil {
		c.Status = statusFail
		c.Message = "not installed: systemd-run --user, user units and timers see every process on the host"
		c.Details = []string{"fix: " + progName + " enable (installs " + guardPath + ")"}
		return c
	}
	if !strings.Contains(string(data), "\nProtectProc=invisible\n") {
		c.Status, c.Message = statusFail, guardPath+" does not set ProtectProc=invisible"
		return c
	}
	// What systemd loaded, which differs until daemon-reload.
	out, err := exec.Command("systemctl", "show", "--property=ProtectProc", "--value", "user@0.service").Output()
	if err == nil && strings.TrimSpace(string(out)) != "invisible" {
		c.Status = statusFail
		c.Message = "installed but not loaded by systemd (ProtectProc=" + strings.TrimSpace(string(out)) + ")"
		c.Details = []string{"fix: systemctl daemon-reload"}
		return c
	}
	c.Status, c.Message = statusOK, "user managers get a /proc that shows only their user's processes ("+guardPath+")"
	if lagging := guards.UnguardedUserManagers(); len(lagging) > 0 {
		c.Status = statusFail
		c.Message = "user managers started before the guard still see every process: " + strings.Join(lagging, ", ")
		c.Details = []string{"they pick it up when they restart: when the user's last session ends, " +
			"or with systemctl restart user@UID.service"}
	}
	return c
}

// dbusDoor reports the D-Bus guard, asking the bus itself whether it bites.
func dbusDoor(root bool) check {
	guardPath := guards.Lookup(guards.DBus).Path
	c := check{Name: guards.DBus}
	if !guards.Live.DBusConfigured() {
		c.Status, c.Message = statusOK, "no D-Bus system bus configured"
		return c
	}
	if bus := runningBus(); bus != "" {
		c.Details = append(c.Details, "system bus: "+bus)
	}
	if _, err := os.Stat(guardPath); errors.Is(err, fs.ErrNotExist) {
		c.Status = statusFail
		c.Message = "not installed: systemctl status, loginctl user-status and busctl show every user's command lines"
		c.Details = append(c.Details, "fix: "+progName+" enable (installs "+guardPath+")")
		return c
	}
	if !guards.SystemdBooted() {
		c.Status, c.Message = statusOK, "installed; no systemd on the bus to ask"
		return c
	}
	if !root {
		// As the caller: the probe is what this user could do.
		denied, said, err := guards.ProbeDBus(false)
		return dbusVerdict(c, denied, said, err, "this user")
	}
	denied, said, err := guards.ProbeDBus(true)
	return dbusVerdict(c, denied, said, err, "user nobody")
}

func dbusVerdict(c check, denied bool, said string, err error, who string) check {
	switch {
	case err != nil:
		c.Status, c.Message = statusSkip, "installed; could not ask the bus: "+err.Error()
	case denied:
		c.Status, c.Message = statusOK, "systemd's process lists are refused to "+who+" ("+said+")"
	default:
		c.Status = statusFail
		c.Message = "installed, but the bus still answers GetUnitProcesses to " + who
		c.Details = append(c.Details, "the bus rejected or has not loaded "+guards.Lookup(guards.DBus).Path+
			": reload it (systemctl reload dbus) and look for the reason in its log (journalctl -u dbus)")
	}
	return c
}

// runningBus names the system bus implementation that is running.
func runningBus() string {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		comm := strings.TrimSpace(readFileOr("/proc/" + e.Name() + "/comm"))
		switch comm {
		case "dbus-broker", "dbus-daemon":
			if strings.Contains(readFileOr("/proc/"+e.Name()+"/cmdline"), "--system") ||
				comm == "dbus-broker" {
				return comm
			}
		}
	}
	return ""
}

// foreignProcDoor reports procfs mounts other than /proc: a host /proc
// bound into a chroot, or a second procfs instance.
func foreignProcDoor(mountinfo string) check {
	c := check{Name: "foreign procfs mounts"}
	for _, m := range procfs.ProcMounts(mountinfo) {
		if m.Point == "/proc" {
			continue
		}
		c.Details = append(c.Details, fmt.Sprintf("%s (procfs %s, %s)", m.Point, m.Root, m.Super))
	}
	if len(c.Details) == 0 {
		c.Status, c.Message = statusOK, "none: /proc is the only procfs mount on the host"
		return c
	}
	c.Status = statusFail
	c.Message = fmt.Sprintf("%d procfs mount(s) besides /proc, each a view of every process on the host "+
		"(a chroot's /proc, or a second procfs) for whoever can reach its directory", len(c.Details))
	return c
}

// hidepidInfo reports the host /proc's hidepid= (informational: sessions do
// not depend on it).
func hidepidInfo(mountinfo string) check {
	c := check{Name: "host /proc hidepid", Status: statusOK}
	switch hp := procfs.Hidepid(mountinfo); hp {
	case "":
		c.Status, c.Message = statusSkip, "no procfs at /proc"
	case "0", "off":
		c.Message = "hidepid=0 (the default): outside isolated sessions and the user manager, every user sees every " +
			"process; isolated sessions do not depend on it"
	default:
		c.Message = "hidepid=" + hp + ": the host /proc itself hides other users' processes"
	}
	return c
}
