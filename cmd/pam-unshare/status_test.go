package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
	"github.com/pam-unshare/pam-unshare/nsinit"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/procfs"
)

// fakeProc describes one process of a fake /proc.
type fakeProc struct {
	pid     int
	comm    string
	exe     string
	cmdline []string
	pidNS   string
	nsPID   string // the NSpid: value
	start   int    // clock ticks after boot
	uid     int    // real and effective
	ppid    int    // 0: 1
}

// writeFakeProc builds a /proc-like tree: status, stat, cmdline, exe and
// ns/pid for each process.
func writeFakeProc(t *testing.T, procs []fakeProc) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		dir := filepath.Join(root, fmt.Sprint(p.pid))
		if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "status"), fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t%d\n"+
			"Uid:\t%d\t%d\t%d\t%d\nNSpid:\t%s\nNSpgid:\t%s\n",
			p.comm, p.pid, p.uid, p.uid, p.uid, p.uid, p.nsPID, p.nsPID))
		ppid := p.ppid
		if ppid == 0 {
			ppid = 1
		}
		writeFile(t, filepath.Join(dir, "stat"), fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 %d 2473984 100 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n",
			p.pid, p.comm, ppid, p.pid, p.pid, p.start))
		writeFile(t, filepath.Join(dir, "cmdline"), strings.Join(p.cmdline, "\x00")+"\x00")
		if p.exe != "" {
			os.Symlink(p.exe, filepath.Join(dir, "exe"))
		}
		os.Symlink(p.pidNS, filepath.Join(dir, "ns", "pid"))
	}
	writeFile(t, filepath.Join(root, "uptime"), "1000.50 1900.00\n")
	os.MkdirAll(filepath.Join(root, "self"), 0o755) // not a process
	return root
}

const hostNS = "pid:[4026531836]"

// testHelper is the installed helper in the fixtures.
const testHelper = "/usr/libexec/pam_unshare/pam_unshare-init"

func statusFixture(t *testing.T) string {
	helper := testHelper
	return writeFakeProc(t, []fakeProc{
		{1, "systemd", "/usr/lib/systemd/systemd", []string{"/sbin/init"}, hostNS, "1", 5, 0, 0},
		// su session of alice: su (host), helper, shell, a pipeline.
		{500, "su", "/usr/bin/su", []string{"su", "-", "alice"}, hostNS, "500", 40000, 0, 0},
		{501, "pam_unshare", helper, []string{"pam_unshare-init", "-g", "1000", "su", "alice"}, "pid:[4026532100]", "501\t1", 40000, 0, 0},
		{502, "bash", "/usr/bin/bash", []string{"-bash"}, "pid:[4026532100]", "502\t2", 40001, 1000, 0},
		{503, "sleep", "/usr/bin/sleep", []string{"sleep", "100"}, "pid:[4026532100]", "503\t3", 40010, 1000, 0},
		// sshd session of bob, seen after an upgrade replaced the helper,
		// with the polling fallback; the session leader has exited.
		{600, "sshd", "/usr/sbin/sshd", []string{"sshd: bob [priv]"}, hostNS, "600", 90000, 0, 0},
		{601, "pam_unshare", helper + " (deleted)", []string{"pam_unshare-init", "-P", "sshd", "bob"}, "pid:[4026532200]", "601\t1", 90000, 0, 0},
		// The per-user namespace of carol, with linger: a session's
		// shell, and a job left from an earlier one (its parent is the
		// helper).
		{650, "pam_unshare", helper, []string{"pam_unshare-init", "-g", "1000", "-U", "-H", "640", "-L", "--", "sshd", "carol"}, "pid:[4026532250]", "650\t1", 80000, 0, 0},
		{651, "bash", "/usr/bin/bash", []string{"-bash"}, "pid:[4026532250]", "651\t4", 95000, 4103, 0},
		{652, "sleep", "/usr/bin/sleep", []string{"sleep", "1d"}, "pid:[4026532250]", "652\t3", 85000, 4103, 650},
		// Not helpers: a process that renamed itself, and PID 1 of a
		// container.
		{700, "pam_unshare", "/usr/bin/python3", []string{"python3", "fake.py"}, hostNS, "700", 95000, 0, 0},
		{800, "pam_unshare", "/usr/bin/true", []string{"x"}, "pid:[4026532300]", "800\t1", 95000, 0, 0},
		// Fakes a user can make with unshare -Urpf: a copy of the helper,
		// and the helper itself run by the user.
		{900, "pam_unshare", "/home/eve/pam_unshare-init", []string{"pam_unshare-init", "su", "root"}, "pid:[4026532400]", "900\t1", 96000, 1001, 0},
		{901, "pam_unshare", helper, []string{"pam_unshare-init", "sshd", "root"}, "pid:[4026532401]", "901\t1", 96000, 1001, 0},
		// A copy of the helper run by root, somewhere else.
		{902, "pam_unshare", "/tmp/pam_unshare-init", []string{"pam_unshare-init", "su", "root"}, "pid:[4026532402]", "902\t1", 96000, 0, 0},
	})
}

func TestFindSessions(t *testing.T) {
	root := statusFixture(t)
	procs, err := readProcs(root)
	if err != nil {
		t.Fatal(err)
	}
	up, err := procfs.Uptime(filepath.Join(root, "uptime"))
	if err != nil || up != 1000.5 {
		t.Fatalf("uptime %v %v", up, err)
	}
	got := findSessions(procs, map[string]bool{testHelper: true}, up)
	want := []session{
		{User: "alice", Service: "su", HelperPID: 501, LeaderPID: 502, Processes: 3, AgeSeconds: 600, PidNS: "pid:[4026532100]", Scope: "session"},
		{User: "bob", Service: "sshd", HelperPID: 601, LeaderPID: 0, Processes: 1, AgeSeconds: 100, PidNS: "pid:[4026532200]", Scope: "session"},
		{User: "carol", Service: "sshd", HelperPID: 650, Processes: 3, AgeSeconds: 200, PidNS: "pid:[4026532250]", Scope: "user", Lingering: []int{652}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	var b strings.Builder
	printSessions(&b, got)
	wantText := "USER   SERVICE  HELPER  LEADER  PROCS  AGE\n" +
		"alice  su       501     502     3      10:00\n" +
		"bob    sshd     601     -       1      01:40\n" +
		"\n" +
		"USER   SCOPE  HELPER  LINGER  SESSIONS  PROCS  AGE\n" +
		"carol  user   650     no      0         3      03:20\n" +
		"  carol: lingering pid 652\n"
	if b.String() != wantText {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), wantText)
	}
	b.Reset()
	printSessions(&b, nil)
	if b.String() != "no isolated sessions\n" {
		t.Errorf("%q", b.String())
	}
}

// helperPaths reads helper= from the service files that run the module.
func TestHelperPaths(t *testing.T) {
	r := pamstack.Files{
		"su":    "session required pam_unshare.so helper=/opt/pu/init grace=1\n",
		"other": "session required pam_unix.so helper=/not/ours\n",
	}
	got := helperPaths(r, testHelper)
	if !got[testHelper] || !got["/opt/pu/init"] || got["/not/ours"] {
		t.Errorf("%v", got)
	}
}

func TestParseStat(t *testing.T) {
	_, ns, uids := procfs.ParseStatus("Name:\tpam_unshare\nUid:\t1000\t0\t0\t0\nNSpid:\t4242\t7\t1\n")
	// A real user ID other than 0 is not a helper, whatever else matches.
	p := procInfo{comm: nsinit.HelperComm, nsPID: ns, uids: uids, exe: testHelper}
	if isHelper(p, map[string]bool{testHelper: true}) {
		t.Error("a helper run with real user ID 1000 counted")
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second:                 "00:05",
		61 * time.Minute:                "01:01:00",
		49*time.Hour + 3*time.Second:    "2-01:00:03",
		59*time.Minute + 59*time.Second: "59:59",
	} {
		if got := formatAge(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestCmdStatus(t *testing.T) {
	code, out, errs := run("status", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var s []session
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Errorf("%v: %q", err, out)
	}
	if code, _, _ := run("status", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
}
