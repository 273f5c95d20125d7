package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/pamstack"
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
	if bak, err := os.ReadFile(su + backupSuffix); err != nil || !bytes.Equal(bak, orig) {
		t.Errorf("backup: %v", err)
	}
	// No temporary files left behind.
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
		t.Errorf("left over: %v", m)
	}

	// Idempotent.
	code, out, errs = run("enable", "--pamd", dir, "--options", "exempt_groups=wheel grace=2", "su")
	if code != 0 || out != "" || !strings.Contains(errs, "su: already enabled") {
		t.Errorf("second enable: %d %q %q", code, out, errs)
	}

	// The backup is not a service, and doctor's scan must not see it.
	if names, _ := newDirResolver(dir).List(); strings.Contains(strings.Join(names, " "), backupSuffix) {
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
	if _, err := os.Stat(sudo + backupSuffix); err == nil {
		t.Error("dry run wrote a backup")
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
	if now, _ := os.ReadFile(real); !bytes.Contains(now, []byte(moduleName)) {
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
	for _, p := range []string{su, su + backupSuffix} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1234 || sys.Gid != 5678 {
			t.Errorf("%s: owner %d:%d, want 1234:5678", p, sys.Uid, sys.Gid)
		}
	}
}

func TestVendorDir(t *testing.T) {
	etc, vendor := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(vendor, "login"), "session required pam_limits.so\n@include common-session\n")
	writeFile(t, filepath.Join(vendor, "common-session"), "session required pam_unix.so\n")
	writeFile(t, filepath.Join(etc, "su"), "session include login\n")
	r := dirResolver{etc, vendor}
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
