package main

// Host-wide: doctor's live check. The invariant is that no process of a
// non-root user can list other users' processes. Sessions get that from the
// module, the user managers and systemd's process lists from the guards;
// everything else (a system service with User=, a root master that forks
// per-user workers, a mail pipe, a login through a route that skips PAM)
// runs with the host's /proc. This file walks every process on the host and
// names each group that breaks the invariant, with its fix.

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/guards"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
)

// Capabilities that let a process see or become what hidepid= hides:
// CAP_SYS_PTRACE passes ptrace_may_access, which hidepid= asks; CAP_SETUID
// and CAP_SYS_ADMIN can become root. Bit numbers from linux/capability.h.
const (
	capSetuid    = 7
	capSysPtrace = 19
	capSysAdmin  = 21
)

// hostProc is what the live check reads about one process besides
// procInfo.
type hostProc struct {
	procInfo
	gids      []int // Gid: (real, effective, saved, fs) and Groups:
	capPrm    uint64
	capEff    uint64
	cgroup    string // /proc/PID/cgroup
	mountinfo string // /proc/PID/mountinfo, relative to the process's root
	owner     int    // owner of /proc/PID/environ: 0 for a process that is not dumpable
}

// hostEnv is what the live check needs from the host besides its /proc;
// tests replace it.
type hostEnv struct {
	proc      string // "/proc"
	hostPidNS string // the host's PID namespace, "pid:[4026531836]"
	uidMin    int    // first UID of a login user (login.defs UID_MIN)
	userName  func(uid int) string
	// sessionService returns the PAM service of a logind session ("sshd").
	sessionService func(id string) string
	// moduleRuns reports whether a PAM service's session stack runs the
	// module, correctly placed.
	moduleRuns func(service string) bool
	// unitGuarded reports whether a unit has the unit guard installed.
	unitGuarded func(unit string) bool
	// transient reports whether a unit is transient (systemd-run).
	transient func(unit string) bool
	// userManagerGuard reports whether the user-manager guard is installed.
	userManagerGuard bool
}

// liveHostEnv is the running host.
func liveHostEnv(pamd string) hostEnv {
	// PID 1's namespace is the host's; where even root may not read PID
	// 1's links (some containers), doctor's own, since it runs on the host.
	hostNS, err := os.Readlink("/proc/1/ns/pid")
	if err != nil {
		hostNS, _ = os.Readlink("/proc/self/ns/pid")
	}
	r := pamconf.NewDirResolver(pamd)
	_, umErr := os.Stat(guards.Lookup(guards.UserManager).Path)
	return hostEnv{
		proc:      "/proc",
		hostPidNS: hostNS,
		uidMin:    loginDefsUIDMin(readFileOr("/etc/login.defs")),
		userName:  userNameOf,
		sessionService: func(id string) string {
			return sessionServiceOf(readFileOr(filepath.Join("/run/systemd/sessions", id)))
		},
		moduleRuns: func(svc string) bool {
			found, p, err := pamconf.CheckStack(r, svc)
			return err == nil && found && p.Sound()
		},
		unitGuarded: func(unit string) bool {
			_, err := os.Stat(unitGuardPath(unit))
			return err == nil
		},
		transient: func(unit string) bool {
			_, err := os.Stat(filepath.Join(transientDir, unit))
			return err == nil
		},
		userManagerGuard: umErr == nil,
	}
}

func userNameOf(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// loginDefsUIDMin returns UID_MIN from a login.defs text, 1000 without one.
func loginDefsUIDMin(defs string) int {
	for _, l := range strings.Split(defs, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "UID_MIN" {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return n
			}
		}
	}
	return 1000
}

// sessionServiceOf returns SERVICE= of a /run/systemd/sessions/ID file.
func sessionServiceOf(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(l, "SERVICE="); ok {
			return v
		}
	}
	return ""
}

// readHostProcs reads every process of env.proc with what the live check
// needs. Processes that exit meanwhile are skipped.
func readHostProcs(proc string) ([]hostProc, error) {
	procs, err := readProcs(proc)
	if err != nil {
		return nil, err
	}
	var out []hostProc
	for _, p := range procs {
		dir := filepath.Join(proc, strconv.Itoa(p.pid))
		h := hostProc{procInfo: p}
		status := readFileOr(filepath.Join(dir, "status"))
		h.gids = append(procfs.Ints(procfs.StatusValue(status, "Gid")), procfs.Ints(procfs.StatusValue(status, "Groups"))...)
		h.capPrm, _ = strconv.ParseUint(procfs.StatusValue(status, "CapPrm"), 16, 64)
		h.capEff, _ = strconv.ParseUint(procfs.StatusValue(status, "CapEff"), 16, 64)
		h.cgroup = readFileOr(filepath.Join(dir, "cgroup"))
		h.mountinfo = readFileOr(filepath.Join(dir, "mountinfo"))
		h.owner = -1
		// /proc/PID itself always shows the effective UID; the files
		// in it belong to root when the process is not dumpable.
		if st, err := os.Stat(filepath.Join(dir, "environ")); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				h.owner = int(sys.Uid)
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// privileged reports whether a process is root or can act as root, or pass
// hidepid=: any of its real, effective and saved UIDs is 0, or it holds
// CAP_SYS_PTRACE, CAP_SETUID or CAP_SYS_ADMIN. Such a process sees every
// process whatever its /proc, and is not what the invariant is about.
func (p hostProc) privileged() bool {
	if len(p.uids) < 3 {
		return true // unreadable: a kernel thread or a process gone
	}
	for _, u := range p.uids[:3] {
		if u == 0 {
			return true
		}
	}
	caps := p.capPrm | p.capEff
	for _, c := range []uint{capSetuid, capSysPtrace, capSysAdmin} {
		if caps&(1<<c) != 0 {
			return true
		}
	}
	return false
}

// sdPam reports whether p is the "(sd-pam)" process of a user manager.
// systemd forks it (to close the manager's PAM session when the manager
// ends) before it sets up the unit's mount namespace, so ProtectProc=
// never reaches it and it keeps the host's /proc. It is not a door: it
// runs only systemd's code, and having changed its UID without exec it is
// not dumpable (the files in its /proc/PID belong to root), so its user
// can neither trace it nor reach its /proc/PID/root. Measured on Debian 12
// (systemd 252) in the VM tests.
func (p hostProc) sdPam() bool {
	dir, base := filepath.Split(p.exe)
	return p.comm == "(sd-pam)" && p.owner == 0 &&
		strings.HasPrefix(cgroupUnit(p.cgroup), "user@") &&
		(base == "systemd" || base == "systemd-executor") &&
		(dir == "/usr/lib/systemd/" || dir == "/lib/systemd/")
}

// procShowsAll reports whether a procfs mount, with super options super,
// shows every process to a reader with groups gids; why says how.
func procShowsAll(super string, gids []int) (bool, string) {
	hidepid, gid := "0", -1
	if v, ok := procfs.Option(super, "hidepid"); ok {
		hidepid = v
	}
	if v, ok := procfs.Option(super, "gid"); ok {
		gid, _ = strconv.Atoi(v)
	}
	switch hidepid {
	case "0", "off":
		return true, "no hidepid="
	}
	for _, g := range gids {
		if g == gid {
			return true, fmt.Sprintf("hidepid=%s, but it is in group %d, which gid= exempts", hidepid, gid)
		}
	}
	return false, ""
}

// openProc returns, for a process that runs as a non-root user in the
// host's PID namespace, the first procfs mount in its mount namespace that
// shows it every process ("/proc (no hidepid=)"), or "".
// A procfs mounted on top of another at the same point (ProtectProc=
// mounts its own over /proc) hides the one below: the last line for a
// mount point wins, as in procfs.Hidepid.
func openProc(p hostProc) string {
	top := map[string]procfs.Mount{}
	var points []string
	for _, m := range procfs.ProcMounts(p.mountinfo) {
		if _, ok := top[m.Point]; !ok {
			points = append(points, m.Point)
		}
		top[m.Point] = m
	}
	for _, pt := range points {
		if all, why := procShowsAll(top[pt].Super, p.gids); all {
			return pt + " (" + why + ")"
		}
	}
	return ""
}

// cgroupUnit returns the systemd unit a process belongs to, from its
// /proc/PID/cgroup: the first service or scope on the path of the unified
// hierarchy (or of name=systemd on a legacy one). A user manager's own units
// belong to user@UID.service, whose /proc they share.
func cgroupUnit(cgroup string) string {
	var path string
	for _, l := range strings.Split(cgroup, "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" || f[1] == "name=systemd" {
			path = f[2]
			if f[1] == "name=systemd" {
				break
			}
		}
	}
	for _, c := range strings.Split(path, "/") {
		if strings.HasSuffix(c, ".service") || strings.HasSuffix(c, ".scope") {
			return c
		}
	}
	return ""
}

// liveDoors walks procs and groups the processes that break the invariant.
func liveDoors(env hostEnv, procs []hostProc) []liveDoor {
	groups := map[string]*liveDoor{}
	users := map[string]map[string]bool{}
	human := map[string]bool{}
	viaSudo := map[string]bool{}
	exes := map[int]string{}
	for _, p := range procs {
		exes[p.pid] = p.exe
	}
	for _, p := range procs {
		if p.privileged() || p.pidNS == "" || p.pidNS != env.hostPidNS || p.sdPam() {
			continue
		}
		where := openProc(p)
		if where == "" {
			continue
		}
		unit := cgroupUnit(p.cgroup)
		key := "unit " + unit
		if unit == "" {
			key = fmt.Sprintf("parent %d (%s), exe %s", p.ppid, orUnknown(exes[p.ppid]), orUnknown(p.exe))
		}
		d := groups[key]
		if d == nil {
			d = &liveDoor{Group: key, Unit: unit, Example: strings.Join(p.cmdline, " ") + " — sees " + where}
			groups[key] = d
			users[key] = map[string]bool{}
		}
		d.Count++
		d.PIDs = append(d.PIDs, p.pid)
		if filepath.Base(exes[p.ppid]) == "sudo" {
			viaSudo[key] = true
		}
		uid := p.uids[1]
		users[key][env.userName(uid)] = true
		if uid >= env.uidMin && uid != 65534 {
			human[key] = true
		}
	}
	var out []liveDoor
	for key, d := range groups {
		for u := range users[key] {
			d.Users = append(d.Users, u)
		}
		sort.Strings(d.Users)
		d.System = !human[key]
		d.Fix, d.GuardUnit = doorFix(env, d.Unit, d.Users)
		if viaSudo[key] {
			// sudo ran them as the user without a session: the route
			// is the door, not the unit sudo was started from.
			d.Fix, d.GuardUnit = "sudo started these without a PAM session (!pam_session: see the sudo route): "+
				"remove that setting, then end them", ""
		}
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// doorFix says how to close one group, and which unit enable --unit takes.
func doorFix(env hostEnv, unit string, users []string) (string, string) {
	switch {
	case unit == "":
		return "these run outside every systemd unit: end them, or start them from a service guarded with " +
			progName + " enable --unit", ""
	case strings.HasPrefix(unit, "user@") && strings.HasSuffix(unit, ".service"):
		if env.userManagerGuard {
			return "the user-manager guard is installed, but this manager started before it: systemctl restart " + unit, ""
		}
		return progName + " enable (installs the user-manager guard), then systemctl restart " + unit, ""
	case strings.HasPrefix(unit, "session-") && strings.HasSuffix(unit, ".scope"):
		id := strings.TrimSuffix(strings.TrimPrefix(unit, "session-"), ".scope")
		svc := env.sessionService(id)
		switch {
		case svc == "":
			return "a login session whose PAM service logind does not know: end it", ""
		case !env.moduleRuns(svc):
			return fmt.Sprintf("PAM service %s does not isolate its sessions: %s enable %s (then the users log in again)",
				svc, progName, svc), ""
		default:
			return fmt.Sprintf("PAM service %s runs %s, yet these processes are outside the session's namespace: they came "+
				"through a route that skips the session (sudo with !pam_session, sshd with UsePAM no: see the routes "+
				"below) or started before the module was enabled; close the route and end them", svc, progName), ""
		}
	case strings.HasSuffix(unit, ".service"):
		if env.transient(unit) {
			return "a transient unit (systemd-run): stop it, and start such jobs with systemd-run -p ProtectProc=invisible", ""
		}
		if env.unitGuarded(unit) {
			return "the unit guard is installed, but these processes started before it: systemctl restart " + unit, unit
		}
		return progName + " enable --unit " + unit + " (then systemctl restart " + unit + ")", unit
	}
	return "not a service, so no drop-in can change its /proc: end it, or run it as a service", ""
}

// liveCheck turns the doors into doctor lines: one per group; a group of
// login users (UID_MIN and up) fails, one of system accounts only warns,
// since the check cannot tell whether that account runs users' code.
func liveCheck(doors []liveDoor, scanned int, err error) []check {
	if err != nil {
		return []check{{Name: "live processes", Status: statusSkip, Message: "cannot walk /proc: " + err.Error()}}
	}
	if len(doors) == 0 {
		return []check{{Name: "live processes", Status: statusOK, Message: fmt.Sprintf(
			"none of %d processes runs as a non-root user outside an isolated namespace with a /proc that shows every process", scanned)}}
	}
	var out []check
	var units []string
	for _, d := range doors {
		c := check{Name: "live " + d.Group, Status: statusFail}
		c.Message = fmt.Sprintf("%d process(es) of %s see every process on the host", d.Count, strings.Join(d.Users, ", "))
		if d.System {
			c.Status = statusWarn
			c.Message += " (system accounts: a door if they run users' code)"
		}
		c.Details = []string{"e.g. " + d.Example, "fix: " + d.Fix}
		out = append(out, c)
		if strings.HasPrefix(d.Fix, progName+" enable --unit ") {
			units = append(units, d.GuardUnit)
		}
	}
	if len(units) > 0 {
		out = append(out, check{Name: "live units to guard", Status: statusWarn,
			Message: progName + " enable --unit " + strings.Join(units, " ")})
	}
	return out
}

// hostWideLive runs the live check on the running host.
func hostWideLive(pamd string, root bool) ([]liveDoor, []check) {
	if !root {
		return nil, []check{{Name: "live processes", Status: statusSkip,
			Message: "not checked: needs root (reads every process's mount table)"}}
	}
	env := liveHostEnv(pamd)
	procs, err := readHostProcs(env.proc)
	doors := liveDoors(env, procs)
	out := liveCheck(doors, len(procs), err)
	if n := countSdPam(env, procs); n > 0 {
		out = append(out, check{Name: "live (sd-pam)", Status: statusOK, Message: fmt.Sprintf(
			"%d user manager(s)' (sd-pam) keep the host's /proc (systemd forks them before ProtectProc= applies); "+
				"not a door: they run only systemd's code and their users cannot trace them", n)})
	}
	return doors, out
}

// countSdPam counts the (sd-pam) processes liveDoors passes over.
func countSdPam(env hostEnv, procs []hostProc) int {
	n := 0
	for _, p := range procs {
		if !p.privileged() && p.pidNS == env.hostPidNS && p.sdPam() {
			n++
		}
	}
	return n
}
