package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
)

// copyPamd copies testdata/debian12 into a temporary directory.
func copyPamd(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFiles(t, "testdata/debian12", dir)
	return dir
}

// copyFiles copies the files in directory from into directory to, mode 0644.
func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs the command line and returns its exit status and output.
func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := realMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCmdEnableDisable(t *testing.T) {
	dir := copyPamd(t)
	su := filepath.Join(dir, "su")
	if err := os.Chmod(su, 0o640); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(su)

	code, out, errs := run("enable", "--pamd", dir, "su", "sshd", "--options", "exempt_groups=wheel grace=2")
	if code != 0 {
		t.Fatalf("enable: %d %s", code, errs)
	}
	if !strings.Contains(out, "pam_unshare.so enabled in "+su) {
		t.Errorf("output: %s", out)
	}
	now, _ := os.ReadFile(su)
	if !bytes.Contains(now, []byte("\nsession required pam_unshare.so exempt_groups=wheel grace=2\n")) {
		t.Errorf("su:\n%s", now)
	}
	if st, _ := os.Stat(su); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", st.Mode().Perm())
	}
	if bak, err := os.ReadFile(pamconf.BackupPath(dir, "su")); err != nil || !bytes.Equal(bak, orig) {
		t.Errorf("backup: %v", err)
	}
	if !strings.Contains(out, "(previous version: "+dir+".pam-unshare-backups/su.bak)") {
		t.Errorf("output does not name the backup: %s", out)
	}
	if st, err := os.Stat(pamconf.BackupDir(dir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("backup directory: %v %v, want mode 0700", st, err)
	}
	// No temporary files and no backups left in the PAM directory, where
	// libpam would read each as a service.
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
		t.Errorf("left over: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.bak")); len(m) > 0 {
		t.Errorf("backups in the PAM directory: %v", m)
	}

	// Idempotent.
	code, out, errs = run("enable", "--pamd", dir, "--options", "exempt_groups=wheel grace=2", "su")
	if code != 0 || out != "" || !strings.Contains(errs, "su: already enabled") {
		t.Errorf("second enable: %d %q %q", code, out, errs)
	}

	// The backup is not a service, and doctor's scan must not see it.
	if names, _ := pamconf.NewDirResolver(dir).List(); strings.Contains(strings.Join(names, " "), pamconf.BackupSuffix) {
		t.Errorf("List includes backups: %v", names)
	}

	code, _, errs = run("disable", "--pamd", dir, "su", "sshd")
	if code != 0 {
		t.Fatalf("disable: %d %s", code, errs)
	}
	if now, _ := os.ReadFile(su); !bytes.Equal(now, orig) {
		t.Errorf("disable did not restore su:\n%s", now)
	}
}

func TestCmdEnableDryRun(t *testing.T) {
	dir := copyPamd(t)
	sudo := filepath.Join(dir, "sudo")
	orig, _ := os.ReadFile(sudo)
	code, out, errs := run("enable", "--dry-run", "--pamd", dir, "sudo")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	want := "--- " + sudo + "\n+++ " + sudo + "\n@@ -6,3 +6,6 @@\n" +
		" @include common-auth\n @include common-account\n @include common-session-noninteractive\n" +
		"+# Added by pam-unshare enable: isolate the session in its own PID and mount\n" +
		"+# namespace. Keep this the last session line; see pam_unshare(8).\n" +
		"+session required pam_unshare.so\n"
	if out != want {
		t.Errorf("dry run output:\n%s\nwant:\n%s", out, want)
	}
	if now, _ := os.ReadFile(sudo); !bytes.Equal(now, orig) {
		t.Error("dry run changed the file")
	}
	if _, err := os.Stat(pamconf.BackupDir(dir)); err == nil {
		t.Error("dry run made the backup directory")
	}
	// The diff applies with patch(1), when it is installed.
	if _, err := exec.LookPath("patch"); err == nil {
		cmd := exec.Command("patch", "-s", "-p0", "-o", filepath.Join(t.TempDir(), "out"), sudo)
		cmd.Stdin = strings.NewReader(out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("patch: %v %s", err, b)
		}
	}
}

func TestCmdEnableErrors(t *testing.T) {
	dir := copyPamd(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enable", "--pamd", dir, "nosuch"}, `unknown service "nosuch": ` + dir + "/nosuch does not exist"},
		{[]string{"enable", "--pamd", dir, "../su"}, "is not a service name"},
		{[]string{"enable", "--pamd", dir, "--options", "propagation=shared", "su"}, `bad module argument "propagation=shared"`},
		{[]string{"enable", "--pamd", dir, "--options", "debug # x", "su"}, "cannot be used"},
		{[]string{"enable", "--pamd", dir, "common-session"}, "runs more session modules after it"},
		{[]string{"enable", "--pamd", dir, "--bogus", "su"}, "flag provided but not defined"},
	} {
		code, _, errs := run(tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want failure with %q", tc.args, code, errs, tc.want)
		}
	}
	// One bad service: nothing changes.
	orig, _ := os.ReadFile(filepath.Join(dir, "su"))
	code, _, errs := run("enable", "--pamd", dir, "su", "nosuch")
	if code == 0 || !strings.Contains(errs, "nothing changed") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "su")); !bytes.Equal(now, orig) {
		t.Error("su changed although another service failed")
	}
}

func TestCmdEnableFollowsSymlink(t *testing.T) {
	dir := copyPamd(t)
	real := filepath.Join(t.TempDir(), "real-su")
	b, _ := os.ReadFile(filepath.Join(dir, "su"))
	os.WriteFile(real, b, 0o644)
	os.Remove(filepath.Join(dir, "su"))
	if err := os.Symlink(real, filepath.Join(dir, "su")); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("enable", "--pamd", dir, "su"); code != 0 {
		t.Fatal(errs)
	}
	if st, _ := os.Lstat(filepath.Join(dir, "su")); st.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced by a file")
	}
	if now, _ := os.ReadFile(real); !bytes.Contains(now, []byte(pamconf.ModuleName)) {
		t.Error("the symlink's target was not edited")
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCmdEnableKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	dir := copyPamd(t)
	su := filepath.Join(dir, "su")
	if err := os.Chown(su, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("enable", "--pamd", dir, "su"); code != 0 {
		t.Fatal(errs)
	}
	for _, p := range []string{su, pamconf.BackupPath(dir, "su")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1234 || sys.Gid != 5678 {
			t.Errorf("%s: owner %d:%d, want 1234:5678", p, sys.Uid, sys.Gid)
		}
	}
}

// Backups an older release left in pam.d move to the backup directory, by
// enable/disable and by __migrate-backups; a newer backup already there wins.
func TestMigrateBackups(t *testing.T) {
	dir := copyPamd(t)
	writeFile(t, filepath.Join(dir, "su"+pamconf.BackupSuffix), "old su\n")
	writeFile(t, filepath.Join(dir, "sshd"+pamconf.BackupSuffix), "old sshd\n")
	if err := os.Chmod(filepath.Join(dir, "sshd"+pamconf.BackupSuffix), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run("disable", "--dry-run", "--pamd", dir)
	if code != 0 || !strings.Contains(out, "would move "+filepath.Join(dir, "su"+pamconf.BackupSuffix)) {
		t.Errorf("disable --dry-run: %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "su"+pamconf.BackupSuffix)); err != nil {
		t.Error("dry run moved a backup")
	}
	if err := os.MkdirAll(pamconf.BackupDir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, pamconf.BackupPath(dir, "sshd"), "newer sshd\n")
	code, out, errs := run(migrateBackupsCmd, "--pamd", dir)
	if code != 0 {
		t.Fatalf("%s: %d %s", migrateBackupsCmd, code, errs)
	}
	t.Log(out)
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+pamconf.BackupSuffix)); len(m) > 0 {
		t.Errorf("left in the PAM directory: %v", m)
	}
	if b, _ := os.ReadFile(pamconf.BackupPath(dir, "su")); string(b) != "old su\n" {
		t.Errorf("su backup: %q", b)
	}
	if b, _ := os.ReadFile(pamconf.BackupPath(dir, "sshd")); string(b) != "newer sshd\n" {
		t.Errorf("sshd backup: %q, want the newer one kept", b)
	}
	// enable moves them too, before it makes its own.
	writeFile(t, filepath.Join(dir, "sudo"+pamconf.BackupSuffix), "old sudo\n")
	if code, _, errs := run("enable", "--pamd", dir, "su"); code != 0 {
		t.Fatal(errs)
	}
	if b, _ := os.ReadFile(pamconf.BackupPath(dir, "sudo")); string(b) != "old sudo\n" {
		t.Errorf("sudo backup after enable: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "sudo"+pamconf.BackupSuffix)); err == nil {
		t.Error("enable left the old backup in the PAM directory")
	}
	// Nothing to move, or no directory at all: success.
	if code, _, errs := run(migrateBackupsCmd, "--pamd", filepath.Join(dir, "none")); code != 0 {
		t.Errorf("missing directory: %d %s", code, errs)
	}
}

func TestLiveNote(t *testing.T) {
	if s := liveNote(nil); s != "" {
		t.Errorf("no sessions: %q", s)
	}
	s := liveNote([]session{{User: "alice"}, {User: "bob"}})
	if !strings.Contains(s, "2 isolated sessions or per-user namespaces are still live") ||
		!strings.Contains(s, "pam-unshare stop USER") || strings.Contains(s, "\n") {
		t.Errorf("two sessions: %q", s)
	}
	if s := liveNote([]session{{User: "alice"}}); !strings.Contains(s, "1 isolated session or per-user namespace is still live") {
		t.Errorf("one session: %q", s)
	}
}
