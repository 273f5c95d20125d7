package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/doctor"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
)

// copyPamdMore is copyPamd plus Debian 12's cron, atd and doas files.
func copyPamdMore(t *testing.T) string {
	t.Helper()
	dir := copyPamd(t)
	copyFiles(t, "testdata/debian12-more", dir)
	return dir
}

// enable with no names enables every process service present, su-l only
// through su; doctor then reports each of them isolated; disable with no
// names removes every line.
func TestEnableAllServices(t *testing.T) {
	dir := copyPamdMore(t)
	code, out, errs := run("enable", "--pamd", dir)
	if code != 0 {
		t.Fatalf("enable: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "su-l: isolated through su line") {
		t.Errorf("no note about su-l:\n%s", errs)
	}
	r := pamconf.NewDirResolver(dir)
	for _, svc := range []string{"sshd", "login", "su", "su-l", "sudo", "sudo-i", "doas", "cron", "atd"} {
		found, p, err := pamconf.CheckStack(r, svc)
		if err != nil || !found || stackCheck(p, nil, "").Status != statusOK {
			t.Errorf("%s: found %v, %+v, %v", svc, found, p, err)
		}
	}
	for _, svc := range []string{"su-l", "runuser", "runuser-l"} {
		data, _ := os.ReadFile(filepath.Join(dir, svc))
		if strings.Contains(string(data), pamconf.ModuleName) {
			t.Errorf("%s has its own module line:\n%s", svc, data)
		}
	}
	doors := doorChecks(dir, false)
	for _, want := range []string{"sshd", "login", "su", "su-l", "sudo", "sudo-i", "doas", "cron", "atd"} {
		if c := findCheck(t, doors, "PAM service "+want); c.Status != statusOK {
			t.Errorf("%+v", c)
		}
	}
	if c := findCheck(t, doors, "PAM service runuser"); c.Status != statusOK || !strings.Contains(c.Message, "left out") {
		t.Errorf("%+v", c)
	}

	// Enabling again, or su-l by name, changes nothing.
	if code, out, errs := run("enable", "--pamd", dir, "su-l", "su"); code != 0 || strings.Contains(out, "enabled in") {
		t.Errorf("enable su-l su again: exit %d\n%s%s", code, out, errs)
	}

	if code, out, errs := run("disable", "--pamd", dir); code != 0 {
		t.Fatalf("disable: exit %d\n%s%s", code, out, errs)
	}
	if left, _ := pamconf.FilesUsingModule(r); len(left) > 0 {
		t.Errorf("still enabled: %v", left)
	}
}

// Named together, su and su-l get one module line, in su, in either order.
func TestEnableSuAndSuL(t *testing.T) {
	dir := copyPamd(t)
	if code, out, errs := run("enable", "--pamd", dir, "su-l", "su"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if found, p, err := pamconf.CheckStack(pamconf.NewDirResolver(dir), "su-l"); err != nil || !found || len(p.Dups) > 0 || p.Entry.File != "su" {
		t.Errorf("su-l: %v %+v %v", found, p, err)
	}
}

// A service that is not isolated is an open door: doctor fails on it.
func TestServiceDoorOpen(t *testing.T) {
	dir := copyPamdMore(t)
	if code, _, errs := run("enable", "--pamd", dir, "su", "sshd", "sudo"); code != 0 {
		t.Fatal(errs)
	}
	doors := doorChecks(dir, false)
	for _, open := range []string{"sudo-i", "cron", "atd", "login"} {
		c := findCheck(t, doors, "PAM service "+open)
		if c.Status != statusFail || !strings.Contains(c.Message, "not isolated") {
			t.Errorf("%+v", c)
		}
	}
	code, out, _ := run("doctor", "--pamd", dir, "--json")
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if code == 0 || rep.OK || findCheck(t, rep.Doors, "PAM service sudo-i").Status != statusFail {
		t.Errorf("exit %d, ok %v", code, rep.OK)
	}
	_, text, _ := run("doctor", "--pamd", dir)
	if strings.Contains(text, "no problems found") || !strings.Contains(text, "✗ PAM service sudo-i: not isolated") {
		t.Errorf("%s", text)
	}
}

func TestProcMounts(t *testing.T) {
	mi := `22 1 0:5 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw,hidepid=invisible
26 25 0:23 / /proc/sys/fs/binfmt_misc rw,relatime shared:14 - autofs systemd-1 rw
90 22 0:22 / /srv/chroot\040one/proc rw,relatime shared:13 - proc proc rw,hidepid=invisible
91 22 0:60 / /mnt/p rw,relatime shared:40 - proc proc rw
`
	c := foreignProcDoor(mi)
	if c.Status != statusFail || len(c.Details) != 2 || !strings.HasPrefix(c.Details[0], "/srv/chroot one/proc ") ||
		!strings.HasPrefix(c.Details[1], "/mnt/p ") {
		t.Errorf("%+v", c)
	}
	if c := foreignProcDoor(strings.Join(strings.Split(mi, "\n")[:3], "\n")); c.Status != statusOK {
		t.Errorf("%+v", c)
	}
}
