package nsinit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
