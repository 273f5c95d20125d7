package pamconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/udiff"
	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
)

// debian12 loads the Debian 12 pam.d files in testdata/debian12 (copied
// from a system with login, util-linux, sudo and openssh-server installed),
// plus any extra files.
func debian12(t *testing.T, extra ...string) pamstack.Files {
	t.Helper()
	r := pamstack.Files{}
	if err := r.Load("../../testdata/debian12"); err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		if err := r.Load("../../testdata/fixtures", extra...); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestParsePAM(t *testing.T) {
	r := debian12(t, "continued", "dash-session")
	lines := Parse([]byte(r["continued"]))
	if len(lines) != 3 {
		t.Fatalf("continued: %d logical lines, want 3", len(lines))
	}
	if l := lines[1]; l.Num != 3 || l.Module != "pam_succeed_if.so" || !reflect.DeepEqual(l.Args, []string{"quiet", "user", "ingroup", "nopasswdlogin"}) {
		t.Errorf("continued line: %+v", l)
	}
	lines = Parse([]byte(r["dash-session"]))
	if l := lines[3]; !l.Dash || l.Type != "session" || l.Module != "pam_systemd.so" {
		t.Errorf("-session line: %+v", l)
	}
	// sshd: comments after '#' are not arguments.
	for _, l := range Parse([]byte(r["sshd"])) {
		if l.Module == "pam_mail.so" && !reflect.DeepEqual(l.Args, []string{"standard", "noenv"}) {
			t.Errorf("pam_mail args %q", l.Args)
		}
	}
}

// lastSessionModule returns the last module of a service's session stack.
func lastSessionModule(t *testing.T, r Resolver, name string) pamstack.Entry {
	t.Helper()
	stack, err := pamstack.Load(r, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(stack.Entries) == 0 {
		t.Fatalf("%s: empty session stack", name)
	}
	return stack.Entries[len(stack.Entries)-1]
}

// removeLines deletes the lines of b that contain any of the needles.
func removeLines(b []byte, needles ...string) string {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		keep := true
		for _, n := range needles {
			if strings.Contains(l, n) {
				keep = false
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestEnableDebian12(t *testing.T) {
	for _, svc := range []string{"su", "sshd", "sudo", "sudo-i", "login", "runuser"} {
		t.Run(svc, func(t *testing.T) {
			r := debian12(t)
			orig := r[svc]
			res, err := Enable(r, svc, []byte(orig), []string{"exempt_groups=wheel"})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Changed {
				t.Fatal("not changed")
			}
			// Only the module line and its comment were added.
			if got := removeLines(res.Out, ModuleName, "# Added by pam-unshare", "# namespace. Keep this"); got != orig {
				t.Errorf("other lines changed:\n%s", udiff.Unified("a", "b", []byte(orig), []byte(got)))
			}
			if !strings.Contains(string(res.Out), "\nsession required pam_unshare.so exempt_groups=wheel\n") {
				t.Errorf("module line missing:\n%s", res.Out)
			}
			r[svc] = string(res.Out)
			if e := lastSessionModule(t, r, svc); !IsModuleEntry(e) || e.File != svc {
				t.Errorf("last session module is %v", e)
			}
			found, p, err := CheckStack(r, svc)
			if err != nil || !found || len(p.After) > 0 || len(p.Dups) > 0 {
				t.Errorf("CheckStack: found=%v %+v %v", found, p, err)
			}

			// Enabling again changes nothing.
			again, err := Enable(r, svc, res.Out, []string{"exempt_groups=wheel"})
			if err != nil || again.Changed {
				t.Errorf("second enable: changed=%v err=%v", again.Changed, err)
			}
			// Other options replace the line in place.
			other, err := Enable(r, svc, res.Out, []string{"debug"})
			if err != nil || !other.Changed || strings.Count(string(other.Out), ModuleName) != 1 ||
				!strings.Contains(string(other.Out), "session required pam_unshare.so debug\n") {
				t.Errorf("enable with other options: err=%v\n%s", err, other.Out)
			}
			// Disable restores the original byte for byte.
			dis, err := Disable(r, svc, res.Out)
			if err != nil || !dis.Changed || string(dis.Out) != orig {
				t.Errorf("disable: changed=%v err=%v\n%s", dis.Changed, err, udiff.Unified("orig", "disabled", []byte(orig), dis.Out))
			}
		})
	}
}

func TestEnableSSHDBeforePasswordInclude(t *testing.T) {
	r := debian12(t)
	res, err := Enable(r, "sshd", []byte(r["sshd"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Out)
	mod := strings.Index(out, "session required pam_unshare.so\n")
	selinux := strings.Index(out, "pam_selinux.so open")
	password := strings.Index(out, "@include common-password")
	if !(selinux < mod && mod < password) {
		t.Errorf("want the module after pam_selinux.so open and before @include common-password:\n%s", out)
	}
}

func TestEnableTrailingIncludes(t *testing.T) {
	r := debian12(t, "trailing-includes")
	_, err := Enable(r, "trailing-includes", []byte(r["trailing-includes"]), nil)
	if err == nil || !strings.Contains(err.Error(), `"@include site-session-extra"`) || !strings.Contains(err.Error(), "rejects the whole service") {
		t.Fatalf("want an error about the missing include, got %v", err)
	}
	// Once the included file exists, the module goes after it and before
	// the password include.
	r["site-session-extra"] = "session optional pam_mail.so\n"
	res, err := Enable(r, "trailing-includes", []byte(r["trailing-includes"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "@include site-session-extra\n" + markerComment + "\nsession required pam_unshare.so\n@include common-password\n"
	if !strings.HasSuffix(string(res.Out), want) {
		t.Errorf("got:\n%s", res.Out)
	}
	// A file whose includes add no session modules gets the line after its
	// last own session line.
	r["site-session-extra"] = "auth optional pam_permit.so\n"
	res, err = Enable(r, "trailing-includes", []byte(r["trailing-includes"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want = "@include common-session\n" + markerComment + "\nsession required pam_unshare.so\n@include site-session-extra\n"
	if !strings.Contains(string(res.Out), want) {
		t.Errorf("got:\n%s", res.Out)
	}
}

func TestEnableDashSession(t *testing.T) {
	r := debian12(t, "dash-session")
	res, err := Enable(r, "dash-session", []byte(r["dash-session"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "-session optional pam_systemd.so\n" + markerComment + "\nsession required pam_unshare.so\npassword include  common-password\n"
	if !strings.HasSuffix(string(res.Out), want) {
		t.Errorf("got:\n%s", res.Out)
	}
}

func TestEnableRefusesIncludedFiles(t *testing.T) {
	r := debian12(t)
	_, err := Enable(r, "common-session", []byte(r["common-session"]), nil)
	if err == nil || !strings.Contains(err.Error(), "runs more session modules after it: pam_motd.so (sshd line 33)") {
		t.Errorf("common-session: want a refusal naming sshd's modules, got %v", err)
	}
	_, err = Enable(r, "common-session-noninteractive", []byte(r["common-session-noninteractive"]), nil)
	if err == nil || !strings.Contains(err.Error(), "included by many services") {
		t.Errorf("common-session-noninteractive: want a refusal, got %v", err)
	}
}

func TestEnableTwiceThroughInclude(t *testing.T) {
	r := debian12(t)
	res, err := Enable(r, "su", []byte(r["su"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	r["su"] = string(res.Out)
	// su-l includes su: the module would run twice.
	if _, err := Enable(r, "su-l", []byte(r["su-l"]), nil); err == nil || !strings.Contains(err.Error(), "only once") {
		t.Errorf("su-l: want a refusal, got %v", err)
	}
	// And the other way round.
	r = debian12(t)
	r["su-l"] += "session required pam_unshare.so\n"
	if _, err := Enable(r, "su", []byte(r["su"]), nil); err == nil || !strings.Contains(err.Error(), "already runs pam_unshare.so") {
		t.Errorf("su: want a refusal, got %v", err)
	}
}

func TestEnableMovesMisplacedLine(t *testing.T) {
	r := debian12(t, "misplaced")
	res, err := Enable(r, "misplaced", []byte(r["misplaced"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || strings.Count(string(res.Out), ModuleName) != 1 {
		t.Fatalf("got:\n%s", res.Out)
	}
	r["misplaced"] = string(res.Out)
	if e := lastSessionModule(t, r, "misplaced"); !IsModuleEntry(e) {
		t.Errorf("last session module is %v", e)
	}
}

func TestEnableEmptyAndNoSession(t *testing.T) {
	r := pamstack.Files{"x": "auth required pam_permit.so\n", "empty": ""}
	res, err := Enable(r, "x", []byte(r["x"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "auth required pam_permit.so\n\n" + markerComment + "\nsession required pam_unshare.so\n"
	if string(res.Out) != want {
		t.Errorf("got %q", res.Out)
	}
	res, err = Enable(r, "empty", nil, nil)
	if err != nil || string(res.Out) != markerComment+"\nsession required pam_unshare.so\n" {
		t.Errorf("empty: %q %v", res.Out, err)
	}
}

func TestEnableIncludeLoop(t *testing.T) {
	r := pamstack.Files{"a": "@include b\n", "b": "@include a\n"}
	if _, err := Enable(r, "a", []byte(r["a"]), nil); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("want an include-loop error, got %v", err)
	}
}

func TestDisableKeepsForeignComments(t *testing.T) {
	r := pamstack.Files{}
	in := "session required pam_limits.so\n# my own comment\nsession required /lib/security/pam_unshare.so debug\n"
	res, err := Disable(r, "x", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := "session required pam_limits.so\n# my own comment\n"; string(res.Out) != want {
		t.Errorf("got %q, want %q", res.Out, want)
	}
	res, err = Disable(r, "x", res.Out)
	if err != nil || res.Changed || len(res.Notes) == 0 {
		t.Errorf("second disable: %+v %v", res, err)
	}
}

func TestDisableNotesInclude(t *testing.T) {
	r := debian12(t)
	r["su"] += "session required pam_unshare.so\n"
	res, err := Disable(r, "su-l", []byte(r["su-l"]))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || !strings.Contains(strings.Join(res.Notes, "\n"), "su-l still runs pam_unshare.so through an include: su line") {
		t.Errorf("notes: %q", res.Notes)
	}
}

func TestVendorDir(t *testing.T) {
	etc, vendor := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(vendor, "login"), "session required pam_limits.so\n@include common-session\n")
	writeFile(t, filepath.Join(vendor, "common-session"), "session required pam_unix.so\n")
	writeFile(t, filepath.Join(etc, "su"), "session include login\n")
	r := DirResolver{etc, vendor}
	if names, _ := r.List(); strings.Join(names, " ") != "common-session login su" {
		t.Errorf("List: %q", names)
	}
	stack, err := pamstack.Load(r, "su")
	if err != nil || len(stack.Entries) != 2 || stack.Entries[1].Module != "pam_unix.so" {
		t.Errorf("su stack through the vendor dir: %v %v", stack, err)
	}
	_, err = planEdit(r, etc, "login", "enable", nil)
	if err == nil || !strings.Contains(err.Error(), "only the distribution's default "+filepath.Join(vendor, "login")) {
		t.Errorf("enable login: %v", err)
	}
}

func TestBackupDirFor(t *testing.T) {
	for pamd, want := range map[string]string{
		"/etc/pam.d":       "/var/backups/pam-unshare",
		"/etc/pam.d/":      "/var/backups/pam-unshare",
		"/mnt/etc/pam.d":   "/mnt/var/backups/pam-unshare",
		"/tmp/x/pamd":      "/tmp/x/pamd.pam-unshare-backups",
		"/tmp/x/my/pam.d/": "/tmp/x/my/pam.d.pam-unshare-backups",
	} {
		if got := BackupDir(pamd); got != want {
			t.Errorf("backupDirFor(%q) = %q, want %q", pamd, got, want)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
