package main

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestSshdRoute(t *testing.T) {
	// Trimmed "sshd -T" output of Debian 12.
	const yes = "port 22\naddressfamily any\nusepam yes\npermitrootlogin without-password\n"
	if c := sshdRoute(yes, nil); c.Status != statusOK {
		t.Errorf("usepam yes: %+v", c)
	}
	no := strings.Replace(yes, "usepam yes", "usepam no", 1)
	if c := sshdRoute(no, nil); c.Status != statusFail || !strings.Contains(c.Message, "UsePAM no") {
		t.Errorf("usepam no: %+v", c)
	}
	if c := sshdRoute("port 22\n", nil); c.Status != statusWarn {
		t.Errorf("no usepam: %+v", c)
	}
	if c := sshdRoute("", errors.New("exit status 255")); c.Status != statusSkip {
		t.Errorf("sshd -T failed: %+v", c)
	}
}

// memSudoers is a sudoersFS over a map of files.
func memSudoers(files map[string]string) sudoersFS {
	return sudoersFS{
		read: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		readDir: func(dir string) ([]string, error) {
			var names []string
			for p := range files {
				if filepath.Dir(p) == dir {
					names = append(names, filepath.Base(p))
				}
			}
			sort.Sort(sort.Reverse(sort.StringSlice(names))) // the reader must sort
			return names, nil
		},
	}
}

func TestSudoRoutes(t *testing.T) {
	files := map[string]string{
		// Debian 12's /etc/sudoers, with a rule added.
		"/etc/sudoers": `#
# This file MUST be edited with the 'visudo' command as root.
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty
# Defaults !pam_session  (a comment, not a setting)
root	ALL=(ALL:ALL) ALL
%sudo	ALL=(ALL:ALL) ALL
#1000	ALL=(ALL) ALL
@includedir /etc/sudoers.d
#include extra
`,
		"/etc/sudoers.d/README":      "# Defaults !pam_session\n",
		"/etc/sudoers.d/10-backup":   "Defaults:backup  !pam_session, \\\n   !lecture\nbackup ALL=(alice) NOPASSWD: /usr/bin/rsync\n",
		"/etc/sudoers.d/20-svc":      "Defaults pam_service=sudo-noiso  # sessions through another file\nDefaults pam_login_service=sudo-i\n",
		"/etc/sudoers.d/skipped.bak": "Defaults !pam_session\n",
		"/etc/sudoers.d/skipped~":    "Defaults !pam_session\n",
		"/etc/extra":                 "Defaults>bob pam_session=false\n",
	}
	lines, errs := readSudoers(memSudoers(files), "/etc/sudoers", 0)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checks := sudoRoutes(lines, func(svc string) bool { return svc == "sudo" || svc == "sudo-i" })
	var got []string
	for _, c := range checks {
		if c.Status != statusFail {
			t.Errorf("%+v", c)
		}
		got = append(got, c.Message)
	}
	want := []string{
		"/etc/sudoers.d/10-backup line 1: Defaults:backup  !pam_session,     !lecture (Defaults:backup)",
		"/etc/sudoers.d/20-svc line 1: pam_service=sudo-noiso: sudo opens its sessions with PAM service sudo-noiso",
		"/etc/extra line 1: Defaults>bob pam_session=false (Defaults>bob)",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d routes, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("route %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}

	// A loop of includes ends.
	loop := map[string]string{"/etc/sudoers": "@include /etc/sudoers\n"}
	if _, errs := readSudoers(memSudoers(loop), "/etc/sudoers", 0); len(errs) == 0 {
		t.Error("include loop: no error")
	}
}

func TestStripSudoersComment(t *testing.T) {
	for in, want := range map[string]string{
		"Defaults env_reset # why":  "Defaults env_reset",
		"#1000 ALL=(ALL) ALL":       "#1000 ALL=(ALL) ALL",
		"%#1000 ALL=(ALL) ALL":      "%#1000 ALL=(ALL) ALL",
		"alice ALL=(#0) ALL":        "alice ALL=(#0) ALL",
		"# Defaults !pam_session":   "",
		"Defaults !pam_session#not": "Defaults !pam_session#not",
	} {
		if got := stripSudoersComment(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestTransientUnits(t *testing.T) {
	// What systemd 252 writes for "systemd-run --uid=bob sh -c 'sleep 600; : SECRET'".
	const runBob = `# This is a transient unit file, created programmatically via the systemd API. Do not edit.
[Unit]
Description=[systemd-run] /usr/bin/sh -c "sleep 600; : SECRET"

[Service]
User=bob
ExecStart=
ExecStart="/usr/bin/sh" "-c" "sleep 600; : SECRET"
`
	// With --description= the command line is still in ExecStart.
	named := strings.Replace(runBob, `Description=[systemd-run] /usr/bin/sh -c "sleep 600; : SECRET"`, "Description=nightly job", 1)
	// A session scope: nothing of a command line.
	scope := "[Unit]\nDescription=Session 3 of User alice\n[Scope]\nSlice=user-1000.slice\n"
	// A program without arguments, named by the admin.
	plain := "[Unit]\nDescription=backup\n[Service]\nExecStart=\nExecStart=\"/usr/local/sbin/backup\"\n"
	checks := transientChecks([]transientUnit{
		parseTransient("run-u7.service", runBob),
		parseTransient("named.service", named),
		parseTransient("session-3.scope", scope),
		parseTransient("plain.service", plain),
	})
	if len(checks) != 2 {
		t.Fatalf("%+v", checks)
	}
	c := findCheck(t, checks, "transient run-u7.service")
	if c.Status != statusFail || !strings.Contains(c.Message, "runs as bob") || len(c.Details) != 3 ||
		!strings.Contains(c.Details[0], "SECRET") || !strings.HasPrefix(c.Details[1], "Description=[systemd-run]") {
		t.Errorf("%+v", c)
	}
	if c := findCheck(t, checks, "transient named.service"); len(c.Details) != 2 || !strings.HasPrefix(c.Details[0], "ExecStart=") {
		t.Errorf("%+v", c)
	}
	if c := transientChecks(nil); len(c) != 1 || c[0].Status != statusOK {
		t.Errorf("%+v", c)
	}
}

func TestMailRoutes(t *testing.T) {
	has := func(p string) bool { return p == "/usr/sbin/exim4" }
	c := mailRoutes(has, func(string) bool { return false })
	if len(c) != 1 || c[0].Status != statusWarn || !strings.Contains(c[0].Details[0], "enable --unit exim4.service") {
		t.Errorf("%+v", c)
	}
	if c := mailRoutes(has, func(u string) bool { return u == "exim4.service" }); c[0].Status != statusOK {
		t.Errorf("guarded: %+v", c)
	}
	if c := mailRoutes(func(string) bool { return false }, nil); len(c) != 1 || c[0].Status != statusOK {
		t.Errorf("no MTA: %+v", c)
	}
}
