package nsinit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckTrusted(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root to create root-owned files; not with -short")
	}
	// A root-owned, non-writable directory chain: the test's temp dir
	// lives below /tmp, which is sticky, so it qualifies.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "helper")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckTrusted(exe, true); err != nil {
		t.Fatalf("root-owned 0755 file: %v", err)
	}
	for _, tc := range []struct {
		name    string
		setup   func() error
		problem string
	}{
		{"group-writable", func() error { return os.Chmod(exe, 0o775) }, "must not be writable"},
		{"not executable", func() error { return os.Chmod(exe, 0o644) }, "not executable"},
		{"owned by a user", func() error { os.Chmod(exe, 0o755); return os.Chown(exe, 65534, 0) }, "must be owned by root"},
		{"writable directory", func() error { os.Chown(exe, 0, 0); return os.Chmod(dir, 0o777) }, "directory " + dir},
		{"missing", func() error { os.Chmod(dir, 0o755); return os.Remove(exe) }, "missing"},
	} {
		if err := tc.setup(); err != nil {
			t.Fatal(err)
		}
		err := CheckTrusted(exe, true)
		var te *TrustError
		if !errors.As(err, &te) || !strings.Contains(te.Problem, tc.problem) {
			t.Errorf("%s: got %v, want a problem containing %q", tc.name, err, tc.problem)
		}
	}
	if err := CheckTrusted(dir, false); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: got %v", err)
	}
}

// A symlink is judged by the file it resolves to: a root-made link into a
// directory other users can write is refused and the problem names the
// real path; a chain of links through root-only directories is accepted,
// and the descriptor OpenTrusted returns is the target's.
func TestCheckTrustedSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create root-owned files")
	}
	root := t.TempDir()
	safe, open := filepath.Join(root, "safe"), filepath.Join(root, "open")
	for _, d := range []string{safe, open} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil { // writable by all, not sticky
		t.Fatal(err)
	}
	for _, d := range []string{safe, open} {
		if err := os.WriteFile(filepath.Join(d, "helper"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// safe/link -> safe/chain -> ../safe/helper: root-only all the way.
	mustSymlink(t, "../safe/helper", filepath.Join(safe, "chain"))
	mustSymlink(t, "chain", filepath.Join(safe, "link"))
	fd, err := OpenTrusted(filepath.Join(safe, "link"), true)
	if err != nil {
		t.Fatalf("symlink chain through root-only directories: %v", err)
	}
	var got, want syscall.Stat_t
	if err := syscall.Fstat(fd, &got); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	if err := syscall.Stat(filepath.Join(safe, "helper"), &want); err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino || got.Dev != want.Dev {
		t.Errorf("OpenTrusted returned inode %d, want the target's %d", got.Ino, want.Ino)
	}
	// safe/bad -> open/helper: the link's directory is fine, the target's
	// is not.
	mustSymlink(t, filepath.Join(open, "helper"), filepath.Join(safe, "bad"))
	err = CheckTrusted(filepath.Join(safe, "bad"), true)
	wantProblem := "real path " + filepath.Join(open, "helper") + ": directory " + open + " must be owned by root"
	if err == nil || !strings.Contains(err.Error(), wantProblem) {
		t.Errorf("symlink into a world-writable directory: got %v, want %q", err, wantProblem)
	}
	// A symlinked directory on the way counts by its target too.
	mustSymlink(t, open, filepath.Join(safe, "dirlink"))
	if err := CheckTrusted(filepath.Join(safe, "dirlink", "helper"), true); err == nil {
		t.Error("helper below a symlink to a world-writable directory: accepted")
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// checkReplacedHelper against what /proc/PID/exe and its fstat give for a
// helper that dpkg renamed a new file over, and for everything that must
// not pass for one.
func TestCheckReplacedHelper(t *testing.T) {
	const helper = "/usr/libexec/pam_unshare/pam_unshare-init"
	good := func() unix.Stat_t { return unix.Stat_t{Mode: unix.S_IFREG | 0o755, Uid: 0, Nlink: 0} }
	if err := checkReplacedHelper(helper+" (deleted)", ptr(good()), helper); err != nil {
		t.Fatalf("a root-owned 0755 helper renamed over: %v", err)
	}
	for _, tc := range []struct {
		name, exe string
		st        func(*unix.Stat_t)
		problem   string
	}{
		{"not deleted", helper, func(*unix.Stat_t) {}, "nor a file that was there"},
		{"another path", "/tmp/pam_unshare-init (deleted)", func(*unix.Stat_t) {}, "nor a file that was there"},
		{"a longer path", helper + ".old (deleted)", func(*unix.Stat_t) {}, "nor a file that was there"},
		{"owned by a user", helper + " (deleted)", func(s *unix.Stat_t) { s.Uid = 1000 }, "owned by uid 1000"},
		{"group-writable", helper + " (deleted)", func(s *unix.Stat_t) { s.Mode = unix.S_IFREG | 0o775 }, "writable by group or others"},
		{"other-writable", helper + " (deleted)", func(s *unix.Stat_t) { s.Mode = unix.S_IFREG | 0o757 }, "writable by group or others"},
		{"still linked", helper + " (deleted)", func(s *unix.Stat_t) { s.Nlink = 1 }, "still has 1 links"},
		{"not a regular file", helper + " (deleted)", func(s *unix.Stat_t) { s.Mode = unix.S_IFDIR | 0o755 }, "not a regular file"},
	} {
		st := good()
		tc.st(&st)
		err := checkReplacedHelper(tc.exe, &st, helper)
		if err == nil || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.problem)
		}
	}
}

func ptr[T any](v T) *T { return &v }
