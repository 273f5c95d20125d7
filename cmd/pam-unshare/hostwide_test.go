package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	sessionNS = "pid:[4026532300]"
	// mountinfo lines of a procfs at /proc, as the kernel writes them.
	procPlain     = "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	procInvisible = "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n" +
		"410 22 0:77 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw,hidepid=invisible\n"
	rootLine = "27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
)

// hostFixture is one process of a fake /proc tree for the live check
// (status_test.go has a smaller one for status).
type hostFixture struct {
	pid, ppid  int
	uid, gid   int
	groups     string
	capEff     string
	pidNS      string
	exe, args  string
	cgroup     string // the unified hierarchy's path
	mountinfo  string
	legacyOnly bool // a cgroup v1 file (name=systemd) instead of v2
}

// writeHostProcs writes procs as a /proc tree that readProcs can read.
func writeHostProcs(t *testing.T, procs []hostFixture) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range procs {
		d := filepath.Join(dir, fmt.Sprint(p.pid))
		if err := os.MkdirAll(filepath.Join(d, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		capEff := p.capEff
		if capEff == "" {
			capEff = "0000000000000000"
		}
		status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t%d\nPPid:\t%d\n"+
			"Uid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nGroups:\t%s\nNSpid:\t%d\n"+
			"CapInh:\t0000000000000000\nCapPrm:\t%s\nCapEff:\t%s\n",
			filepath.Base(p.exe), p.pid, p.ppid, p.uid, p.uid, p.uid, p.uid, p.gid, p.gid, p.gid, p.gid, p.groups, p.pid, capEff, capEff)
		cg := "0::" + p.cgroup + "\n"
		if p.legacyOnly {
			cg = "12:pids:/x\n1:name=systemd:" + p.cgroup + "\n"
		}
		files := map[string]string{
			"status":    status,
			"stat":      fmt.Sprintf("%d (%s) S %d %d 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n", p.pid, filepath.Base(p.exe), p.ppid, p.pid),
			"cmdline":   strings.ReplaceAll(p.args, " ", "\x00") + "\x00",
			"cgroup":    cg,
			"mountinfo": p.mountinfo,
		}
		for n, s := range files {
			if err := os.WriteFile(filepath.Join(d, n), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(p.pidNS, filepath.Join(d, "ns", "pid")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p.exe, filepath.Join(d, "exe")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeHostEnv is a host where sshd runs the module and su does not.
func fakeHostEnv(proc string) hostEnv {
	names := map[int]string{1000: "alice", 1001: "bob", 1002: "carol", 100: "messagebus", 33: "www-data"}
	return hostEnv{
		proc: proc, hostPidNS: hostNS, uidMin: 1000,
		userName: func(uid int) string { return names[uid] },
		sessionService: func(id string) string {
			return map[string]string{"3": "su", "4": "sshd"}[id]
		},
		moduleRuns:  func(svc string) bool { return svc == "sshd" },
		unitGuarded: func(unit string) bool { return unit == "restartme.service" },
		transient:   func(unit string) bool { return strings.HasPrefix(unit, "run-") },
	}
}

func TestLiveDoors(t *testing.T) {
	plain := rootLine + procPlain
	procs := []hostFixture{
		// Root and kernel-ish processes are never doors.
		{pid: 1, uid: 0, pidNS: hostNS, exe: "/usr/lib/systemd/systemd", args: "/sbin/init", cgroup: "/init.scope", mountinfo: plain},
		// A service with User=alice: a door, and bob in the same unit.
		{pid: 100, ppid: 1, uid: 1000, gid: 1000, pidNS: hostNS, exe: "/usr/bin/python3", args: "python3 /srv/alice/app.py",
			cgroup: "/system.slice/alice-app.service", mountinfo: plain},
		{pid: 101, ppid: 100, uid: 1001, gid: 1001, pidNS: hostNS, exe: "/usr/bin/sh", args: "sh -c job",
			cgroup: "/system.slice/alice-app.service", mountinfo: plain},
		// A root master with a worker on a guarded /proc: no door.
		{pid: 200, ppid: 1, uid: 0, pidNS: hostNS, exe: "/usr/sbin/php-fpm8.2", args: "php-fpm: master process",
			cgroup: "/system.slice/php8.2-fpm.service", mountinfo: rootLine + procInvisible},
		{pid: 201, ppid: 200, uid: 1000, gid: 1000, pidNS: hostNS, exe: "/usr/sbin/php-fpm8.2", args: "php-fpm: pool alice",
			cgroup: "/system.slice/php8.2-fpm.service", mountinfo: rootLine + procInvisible},
		// hidepid=2 with gid= exempting a group the worker is in: a door.
		{pid: 300, ppid: 1, uid: 1002, gid: 1002, groups: "1002 33", pidNS: hostNS, exe: "/usr/bin/perl", args: "perl worker",
			cgroup:    "/system.slice/gidexempt.service",
			mountinfo: rootLine + "22 27 0:21 / /proc rw,relatime - proc proc rw,hidepid=2,gid=33\n"},
		// hidepid=2 with gid= of a group it is not in: no door.
		{pid: 301, ppid: 1, uid: 1002, gid: 1002, groups: "1002", pidNS: hostNS, exe: "/usr/bin/perl", args: "perl worker",
			cgroup:    "/system.slice/gidother.service",
			mountinfo: rootLine + "22 27 0:21 / /proc rw,relatime - proc proc rw,hidepid=2,gid=33\n"},
		// An isolated session: another PID namespace.
		{pid: 400, ppid: 399, uid: 1000, gid: 1000, pidNS: sessionNS, exe: "/usr/bin/bash", args: "-bash",
			cgroup: "/user.slice/user-1000.slice/session-4.scope", mountinfo: plain},
		// A login on su, which does not run the module: a door, fix enable su.
		{pid: 500, ppid: 499, uid: 1001, gid: 1001, pidNS: hostNS, exe: "/usr/bin/bash", args: "bash",
			cgroup: "/user.slice/user-1001.slice/session-3.scope", mountinfo: plain},
		// Through sshd, which runs the module, yet outside the namespace.
		{pid: 510, ppid: 509, uid: 1002, gid: 1002, pidNS: hostNS, exe: "/usr/bin/sleep", args: "sleep 99",
			cgroup: "/user.slice/user-1002.slice/session-4.scope", mountinfo: plain},
		// A system account: only a warning.
		{pid: 600, ppid: 1, uid: 100, gid: 100, pidNS: hostNS, exe: "/usr/bin/dbus-daemon", args: "dbus-daemon --system",
			cgroup: "/system.slice/dbus.service", mountinfo: plain},
		// CAP_SYS_PTRACE passes hidepid=: counted as root.
		{pid: 700, ppid: 1, uid: 1000, gid: 1000, capEff: fmt.Sprintf("%016x", 1<<capSysPtrace), pidNS: hostNS,
			exe: "/usr/bin/strace", args: "strace", cgroup: "/system.slice/tracer.service", mountinfo: plain},
		// sshd's pre-auth child, chrooted where there is no procfs.
		{pid: 800, ppid: 799, uid: 105, gid: 65534, pidNS: hostNS, exe: "/usr/sbin/sshd", args: "sshd: alice [net]",
			cgroup: "/system.slice/ssh.service", mountinfo: "27 1 254:1 /run/sshd / ro,relatime - ext4 /dev/vda rw\n"},
		// No unit at all (a legacy hierarchy without one): by parent.
		{pid: 900, ppid: 1, uid: 1000, gid: 1000, pidNS: hostNS, exe: "/usr/bin/sleep", args: "sleep 1",
			cgroup: "/", legacyOnly: true, mountinfo: plain},
		// A user manager's unit, and a unit whose guard waits for a restart.
		{pid: 1000, ppid: 999, uid: 1001, gid: 1001, pidNS: hostNS, exe: "/usr/bin/sleep", args: "sleep 2",
			cgroup: "/user.slice/user-1001.slice/user@1001.service/app.slice/x.service", mountinfo: plain},
		{pid: 1100, ppid: 1, uid: 1001, gid: 1001, pidNS: hostNS, exe: "/usr/bin/sleep", args: "sleep 3",
			cgroup: "/system.slice/restartme.service", mountinfo: plain},
		{pid: 1200, ppid: 1, uid: 1001, gid: 1001, pidNS: hostNS, exe: "/usr/bin/sleep", args: "sleep 4",
			cgroup: "/system.slice/run-u7.service", mountinfo: plain},
		// Run by sudo with !pam_session from root's service.
		{pid: 1400, ppid: 1, uid: 0, pidNS: hostNS, exe: "/usr/bin/sudo", args: "sudo -u bob sleep 5",
			cgroup: "/system.slice/cron.service", mountinfo: plain},
		{pid: 1401, ppid: 1400, uid: 1001, gid: 1001, pidNS: hostNS, exe: "/usr/bin/sleep", args: "sleep 5",
			cgroup: "/system.slice/cron.service", mountinfo: plain},
		// A user manager's (sd-pam), forked before ProtectProc= applies:
		// not a door when it is systemd's and not dumpable (/proc/PID/environ is
		// root's); the same name on a process its user owns is one.
		{pid: 1300, ppid: 1299, uid: 1002, gid: 1002, pidNS: hostNS, exe: "/usr/lib/systemd/systemd", args: "(sd-pam)",
			cgroup: "/user.slice/user-1002.slice/user@1002.service/init.scope", mountinfo: plain},
		{pid: 1301, ppid: 1299, uid: 1002, gid: 1002, pidNS: hostNS, exe: "/usr/lib/systemd/systemd", args: "(sd-pam)",
			cgroup: "/user.slice/user-1002.slice/user@1002.service/app.slice/fake.service", mountinfo: plain},
	}
	dir := writeHostProcs(t, procs)
	read, err := readHostProcs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range read {
		// The fixture cannot chown /proc/PID: the kernel makes it root's
		// for a process that is not dumpable.
		read[i].owner = 1000
		if read[i].pid == 1300 {
			read[i].owner = 0
		}
		if read[i].pid == 1300 || read[i].pid == 1301 {
			read[i].comm = "(sd-pam)"
		}
	}
	doors := liveDoors(fakeHostEnv(dir), read)
	got := map[string]liveDoor{}
	for _, d := range doors {
		got[d.Group] = d
	}
	want := map[string]struct {
		count  int
		users  string
		system bool
		fix    string
	}{
		"unit alice-app.service": {2, "alice bob", false, "pam-unshare enable --unit alice-app.service (then systemctl restart alice-app.service)"},
		"unit gidexempt.service": {1, "carol", false, "pam-unshare enable --unit gidexempt.service"},
		"unit session-3.scope":   {1, "bob", false, "PAM service su does not isolate its sessions: pam-unshare enable su"},
		"unit session-4.scope":   {1, "carol", false, "PAM service sshd runs pam-unshare, yet these processes are outside"},
		"unit dbus.service":      {1, "messagebus", true, "pam-unshare enable --unit dbus.service"},
		"unit cron.service":      {1, "bob", false, "sudo started these without a PAM session"},
		"unit user@1002.service": {1, "carol", false, "pam-unshare enable (installs the user-manager guard)"},
		"unit user@1001.service": {1, "bob", false, "pam-unshare enable (installs the user-manager guard), then systemctl restart user@1001.service"},
		"unit restartme.service": {1, "bob", false, "the unit guard is installed, but these processes started before it: systemctl restart restartme.service"},
		"unit run-u7.service":    {1, "bob", false, "a transient unit (systemd-run)"},
		"parent 1 (/usr/lib/systemd/systemd), exe /usr/bin/sleep": {1, "alice", false, "these run outside every systemd unit"},
	}
	for g, w := range want {
		d, ok := got[g]
		if !ok {
			t.Errorf("no door %q", g)
			continue
		}
		if d.Count != w.count || strings.Join(d.Users, " ") != w.users || d.System != w.system || !strings.HasPrefix(d.Fix, w.fix) {
			t.Errorf("door %q: %+v, want %+v", g, d, w)
		}
	}
	for g, d := range got {
		if _, ok := want[g]; !ok {
			t.Errorf("unexpected door %q: %+v", g, d)
		}
	}

	checks := liveCheck(doors, len(read), nil)
	if c := findCheck(t, checks, "live unit alice-app.service"); c.Status != statusFail || !strings.Contains(c.Message, "2 process(es) of alice, bob") {
		t.Errorf("%+v", c)
	}
	if c := findCheck(t, checks, "live unit dbus.service"); c.Status != statusWarn {
		t.Errorf("a system account fails: %+v", c)
	}
	if c := findCheck(t, checks, "live units to guard"); c.Message != "pam-unshare enable --unit alice-app.service dbus.service gidexempt.service" {
		t.Errorf("%+v", c)
	}
	if got := got["unit user@1002.service"]; len(got.PIDs) != 1 || got.PIDs[0] != 1301 {
		t.Errorf("(sd-pam): %+v", got)
	}
	if n := countSdPam(fakeHostEnv(dir), read); n != 1 {
		t.Errorf("countSdPam %d", n)
	}
	if c := liveCheck(nil, 17, nil); len(c) != 1 || c[0].Status != statusOK {
		t.Errorf("no doors: %+v", c)
	}
}

func TestCgroupUnit(t *testing.T) {
	for in, want := range map[string]string{
		"0::/system.slice/php8.2-fpm.service\n":                                  "php8.2-fpm.service",
		"0::/system.slice/system-getty.slice/getty@tty1.service\n":               "getty@tty1.service",
		"0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n": "user@1000.service",
		"0::/user.slice/user-1000.slice/session-2.scope\n":                       "session-2.scope",
		"0::/\n": "",
		"12:pids:/system.slice/a.service\n1:name=systemd:/system.slice/b.service\n0::/\n": "b.service",
	} {
		if got := cgroupUnit(in); got != want {
			t.Errorf("cgroupUnit(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginDefs(t *testing.T) {
	if n := loginDefsUIDMin("# comment\nUID_MIN\t\t\t  500\nUID_MAX 60000\n"); n != 500 {
		t.Errorf("UID_MIN %d", n)
	}
	if n := loginDefsUIDMin(""); n != 1000 {
		t.Errorf("default UID_MIN %d", n)
	}
	if s := sessionServiceOf("UID=1000\nUSER=alice\nSERVICE=sshd\nTYPE=tty\n"); s != "sshd" {
		t.Errorf("SERVICE %q", s)
	}
}
