package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestRootPropagation(t *testing.T) {
	for file, want := range map[string]string{
		"systemd":     "shared",
		"slave":       "slave",
		"private":     "private",
		"overmounted": "shared and slave",
	} {
		b, err := os.ReadFile(filepath.Join("testdata/mountinfo", file))
		if err != nil {
			t.Fatal(err)
		}
		if got := RootPropagation(string(b)); got != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
	}
	if got := RootPropagation("23 28 0:21 / /proc rw - proc proc rw\n"); got != "" {
		t.Errorf("no / line: %q", got)
	}
	// This machine's own mountinfo parses.
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if got := RootPropagation(string(b)); got == "" {
		t.Error("cannot find / in /proc/self/mountinfo")
	}
}

func TestProcMounts(t *testing.T) {
	b, err := os.ReadFile("testdata/mountinfo/procs")
	if err != nil {
		t.Fatal(err)
	}
	mi := string(b)
	if hp := Hidepid(mi); hp != "invisible" {
		t.Errorf("hidepid %q", hp)
	}
	if hp := Hidepid("25 22 0:22 / /proc rw - proc proc rw\n"); hp != "0" {
		t.Errorf("hidepid %q", hp)
	}
	ms := ProcMounts(mi)
	if len(ms) != 3 || ms[1].Point != "/srv/chroot one/proc" || ms[1].Super != "rw,hidepid=invisible" || ms[2].Point != "/mnt/p" {
		t.Errorf("%+v", ms)
	}
}

func TestParseStat(t *testing.T) {
	stat := "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 2473984 100\n"
	if got := StartTime(stat); got != 98765 {
		t.Errorf("start time %d", got)
	}
	if got := PPID(stat); got != 1 {
		t.Errorf("ppid %d", got)
	}
	comm, ns, uids := ParseStatus("Name:\tpam_unshare\nUid:\t1000\t0\t0\t0\nNSpid:\t4242\t7\t1\n")
	if comm != "pam_unshare" || fmt.Sprint(ns) != "[4242 7 1]" || fmt.Sprint(uids) != "[1000 0 0 0]" {
		t.Errorf("%q %v %v", comm, ns, uids)
	}
}
