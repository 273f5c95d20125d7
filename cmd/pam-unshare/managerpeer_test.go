package main

import (
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeManagerProc makes procRoot/PID with an exe link and a cgroup file.
func fakeManagerProc(t *testing.T, pid int, exe, cgroup string) {
	t.Helper()
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestJudgeManagerPeer(t *testing.T) {
	old := procRoot
	procRoot = t.TempDir()
	t.Cleanup(func() { procRoot = old })
	const real = "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n"
	fakeManagerProc(t, 10, "/usr/lib/systemd/systemd", real)
	fakeManagerProc(t, 11, "/lib/systemd/systemd (deleted)", "1:name=systemd:/user.slice/user-1000.slice/user@1000.service/init.scope\n0::/\n")
	fakeManagerProc(t, 12, "/usr/bin/python3.11", real)
	fakeManagerProc(t, 13, "/usr/lib/systemd/systemd", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/fake.service\n")
	fakeManagerProc(t, 14, "/usr/lib/systemd/systemd", "0::/user.slice/user-1000.slice/session-3.scope\n")
	fakeManagerProc(t, 15, "/home/alice/lib/systemd/systemd", real)
	fakeManagerProc(t, 16, "/usr/lib/systemd/systemd", "0::/user.slice/user-1001.slice/user@1001.service/init.scope\n")
	for _, tc := range []struct {
		pid, peerUID int
		want         string // "" for accepted
	}{
		{10, 1000, ""},
		{11, 1000, ""},
		{10, 1001, "runs as uid 1001, not 1000"},
		{0, 1000, "another PID namespace"},
		{12, 1000, "runs /usr/bin/python3.11, not systemd"},
		{13, 1000, "runs in /user.slice/user-1000.slice/user@1000.service/app.slice/fake.service, not in user@1000.service's init.scope"},
		{14, 1000, "session-3.scope"},
		{15, 1000, "not systemd"},
		{16, 1000, "not in user@1000.service"},
		{99, 1000, "pid 99"},
	} {
		err := judgeManagerPeer(1000, tc.pid, tc.peerUID)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("pid %d uid %d: %v, want accepted", tc.pid, tc.peerUID, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("pid %d uid %d: %v, want %q", tc.pid, tc.peerUID, err, tc.want)
		}
	}
}

// TestManagerPeer: a socket planted by anyone but systemd --user is
// refused after one connect, whether its listener answers or not; a
// socket nothing listens on is refused too.
func TestManagerPeer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "private")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // never accepts: the connect still succeeds (backlog)
	exe, _ := os.Executable()
	err = managerPeer(path, os.Getuid())
	if err == nil || !strings.Contains(err.Error(), "not systemd") || !strings.Contains(err.Error(), filepath.Base(exe)) {
		t.Errorf("planted listener: %v", err)
	}
	if err := managerPeer(path, os.Getuid()+1); err == nil || !strings.Contains(err.Error(), "runs as uid") {
		t.Errorf("someone else's listener: %v", err)
	}
	l.Close()
	if err := managerPeer(path, os.Getuid()); err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Errorf("nothing listening: %v", err)
	}
}

// TestPickManagerUserPlanted: with only planted sockets, no user is picked
// and the reason names each socket skipped.
func TestPickManagerUserPlanted(t *testing.T) {
	dir := t.TempDir()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, me.Uid, managerSocket)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, why := pickManagerUser(dir, "")
	if u != nil || !strings.Contains(why, "found no real systemd user manager (skipped "+path+": its listener") {
		t.Errorf("planted: %v %q", u, why)
	}
	u, why = pickManagerUser(dir, me.Username)
	if u != nil || !strings.Contains(why, path+" is not the systemd user manager of "+me.Username) {
		t.Errorf("planted, --manager-user: %v %q", u, why)
	}
}
