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
	"path/filepath"
	"sort"
	"strings"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/guards"
)

// processService is a PAM service through which a user gets processes.
type processService struct {
	name string
	what string // what runs through it, for messages
	// auto: enable with no service names enables it. Graphical logins are
	// left to the administrator: a desktop session under the module is
	// untested.
	auto bool
}

// processServices are the PAM services, on Debian and elsewhere, that start
// processes for a user who asked for them.
var processServices = []processService{
	{"sshd", "ssh sessions", true},
	{"login", "console logins", true},
	{"remote", "telnet and rlogin logins", true},
	{"su", "su sessions", true},
	{"su-l", "su - and su -l sessions", true},
	{"sudo", "sudo commands", true},
	{"sudo-i", "sudo -i shells", true},
	{"doas", "doas commands", true},
	{"cron", "cron jobs", true},
	{"crond", "cron jobs", true},
	{"atd", "at and batch jobs", true},
	{"gdm-password", "graphical sessions", false},
	{"gdm-autologin", "graphical sessions", false},
	{"gdm-fingerprint", "graphical sessions", false},
	{"gdm-smartcard", "graphical sessions", false},
	{"lightdm", "graphical sessions", false},
	{"lightdm-autologin", "graphical sessions", false},
	{"sddm", "graphical sessions", false},
	{"sddm-autologin", "graphical sessions", false},
	{"xdm", "graphical sessions", false},
	{"lxdm", "graphical sessions", false},
	{"xrdp-sesman", "remote desktop sessions", false},
}

// notDoors are services that start processes but are left out on purpose.
var notDoors = map[string]string{
	"runuser":      "only root can run runuser, and root sees every process anyway",
	"runuser-l":    "only root can run runuser, and root sees every process anyway",
	"systemd-user": "the user manager's own session: the module returns PAM_IGNORE there; the user-manager guard covers it",
}

// serviceExists reports whether pamd has a file (or a symlink to one) for
// the service.
func serviceExists(pamd, name string) bool {
	st, err := os.Stat(filepath.Join(pamd, name))
	return err == nil && st.Mode().IsRegular()
}

// allProcessServices returns the services enable enables when given none:
// each auto process service that pamd has.
func allProcessServices(pamd string) []string {
	var out []string
	for _, s := range processServices {
		if s.auto && serviceExists(pamd, s.name) {
			out = append(out, s.name)
		}
	}
	return out
}

// anyServiceRunsModule reports whether some service's session stack still
// runs the module, and the first such service.
func anyServiceRunsModule(r Resolver) (string, bool) {
	names, _ := r.List()
	for _, n := range names {
		if found, _, err := checkStack(r, n); err == nil && found {
			return n, true
		}
	}
	return "", false
}

// pamdResolver is what planEdit needs: service files, and where the
// distribution's defaults are.
type pamdResolver interface {
	Resolver
	vendorFile(name string) string
}

// plannedResolver reads the planned contents of files already planned in
// this run, and the files on disk otherwise.
type plannedResolver struct {
	dirResolver
	planned map[string][]byte
}

func (p plannedResolver) Read(name string) ([]byte, error) {
	if b, ok := p.planned[name]; ok {
		return b, nil
	}
	return p.dirResolver.Read(name)
}

// planServices plans op for each service. A file is planned before the
// files that include it, and each plan sees the planned contents of the
// files before it, so that "enable su su-l" adds the module to su only:
// su-l includes su, and the module must run once per session.
func planServices(base dirResolver, pamd string, services []string, op string, modArgs []string) ([]edit, []error) {
	r := plannedResolver{dirResolver: base, planned: map[string][]byte{}}
	var edits []edit
	var errs []error
	for _, svc := range includedFirst(base, services) {
		if op == "enable" {
			if note, ok := isolatedThroughInclude(r, svc); ok {
				edits = append(edits, edit{shown: filepath.Join(pamd, svc), res: enableResult{notes: []string{note}}})
				continue
			}
		}
		e, err := planEdit(r, pamd, svc, op, modArgs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e.res.changed {
			r.planned[svc] = e.res.out
		}
		edits = append(edits, e)
	}
	return edits, errs
}

// includedFirst orders services so that one that another listed service
// includes comes before it (su before su-l), keeping the order otherwise.
func includedFirst(r Resolver, services []string) []string {
	included := map[string]bool{}
	for _, s := range services {
		data, err := r.Read(s)
		if err != nil {
			continue
		}
		for _, l := range parsePAM(data) {
			if l.IsInclude() && (l.Type == "session" || l.Type == "@include") {
				included[l.Module] = true
			}
		}
	}
	var first, rest []string
	for _, s := range services {
		if included[s] {
			first = append(first, s)
		} else {
			rest = append(rest, s)
		}
	}
	return append(first, rest...)
}

// isolatedThroughInclude reports whether service name has no module line
// of its own but runs the module, correctly placed, through a file it
// includes; the note says which.
func isolatedThroughInclude(r Resolver, name string) (string, bool) {
	data, err := r.Read(name)
	if err != nil {
		return "", false
	}
	for _, l := range parsePAM(data) {
		if isModuleLine(l) {
			return "", false
		}
	}
	found, p, err := checkStack(r, name)
	if err != nil || !found || !p.Sound() {
		return "", false
	}
	return fmt.Sprintf("%s: isolated through %s line %d, which it includes (the module runs once per session)",
		name, p.entry.File, p.entry.Line), true
}

// ---- doctor ---------------------------------------------------------------

// doorChecks is doctor's "doors" section.
func doorChecks(pamd string, root bool) []check {
	var out []check
	r := newDirResolver(pamd)
	for _, s := range processServices {
		if serviceExists(pamd, s.name) {
			out = append(out, serviceDoor(r, pamd, s))
		}
	}
	for _, n := range sortedKeys(notDoors) {
		if serviceExists(pamd, n) {
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
func serviceDoor(r Resolver, pamd string, s processService) check {
	c := check{Name: "PAM service " + s.name}
	found, p, err := checkStack(r, s.name)
	switch {
	case err != nil:
		c.Status, c.Message = statusFail, "cannot read its session stack: "+err.Error()
	case !found:
		c.Status = statusFail
		c.Message = fmt.Sprintf("not isolated: %s see every process on the host", s.what)
		fix := progName + " enable"
		if pamd != defaultPamd {
			fix += " --pamd " + pamd
		}
		if !s.auto {
			fix += " " + s.name + " (not enabled by default: a graphical session under the module is untested)"
		}
		c.Details = []string{"fix: " + fix}
	case !p.Sound():
		c.Status = statusFail
		c.Message = fmt.Sprintf("%s is in its session stack but not safely (see \"service %s\" above)", moduleName, s.name)
	default:
		c.Status = statusOK
		c.Message = fmt.Sprintf("isolated (%s line %d)", p.entry.File, p.entry.Line)
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
