package nsinit

// The file rule itself is C (trust.c), shared with the front module
// (front/front.c), which must check the Go library before any Go is loaded.
// What stays here is Go's view of it: opening the file, naming it in
// errors, and the rule for a running helper whose file was replaced, which
// only the module needs.

/*
#include "trust.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// TrustError says why a file could have been written by someone other
// than root.
type TrustError struct {
	Path    string
	Problem string
}

func (e *TrustError) Error() string { return e.Path + ": " + e.Problem }

// CheckTrusted returns nil if only root could have put path in place; see
// OpenTrusted. pam-unshare doctor reports this check.
func CheckTrusted(path string, executable bool) error {
	fd, err := OpenTrusted(path, executable)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// OpenTrusted opens path and checks that only root could have put the
// file there: it is a regular file (executable, if executable is set)
// owned by root and not writable by group or others, and so is every
// directory on its real path, the path with every symlink resolved
// (sticky directories such as /tmp excepted). A root-made symlink into a
// directory a user can write is therefore refused, whatever the
// directories of the link itself are.
//
// It returns an O_PATH|O_CLOEXEC descriptor of the very file it checked:
// the module executes that descriptor (see Enter), so nothing can be
// swapped in between the check and the exec. The caller closes it.
//
// The checks are made on descriptors, not names: the file is fstat'ed
// once open, its real path is read back from /proc/self/fd, and the
// directories of that path are walked from / with O_NOFOLLOW, each
// fstat'ed; the last one must still hold the file that was opened. That
// is pu_trust_fd (trust.c), the code front/front.c runs on the Go library.
func OpenTrusted(path string, executable bool) (int, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, &TrustError{path, "missing"}
	} else if err != nil {
		return -1, &TrustError{path, err.Error()}
	}
	if err := checkOpened(fd, path, executable); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// checkOpened applies the file rule (pu_trust_fd, trust.c) to the file
// open on fd. A problem found on the real path is prefixed with that path
// when it differs from the configured one.
func checkOpened(fd int, path string, executable bool) error {
	var t C.struct_pu_trust
	exe := C.int(0)
	if executable {
		exe = 1
	}
	if C.pu_trust_fd(C.int(fd), exe, &t) == 0 {
		return nil
	}
	problem := C.GoString(&t.problem[0])
	if real := C.GoString(&t.real[0]); real != "" && real != filepath.Clean(path) {
		problem = "real path " + real + ": " + problem
	}
	return &TrustError{path, problem}
}

// deletedSuffix is what the kernel appends to the path of a file that was
// unlinked or renamed over while a process runs it (/proc/PID/exe).
const deletedSuffix = " (deleted)"

// checkReplacedHelper decides whether a running process whose executable
// is not the helper file as installed now still runs a helper root
// installed: exe is its /proc/PID/exe link, st the fstat of that link
// opened (the old file itself, which the process keeps alive), and helper
// the real path of the configured helper. dpkg replaces a file by
// renaming the new one over it, so after an upgrade a running helper's
// exe reads "PATH (deleted)" and its file has no name left. The rule:
//   - the link reads the helper's real path plus " (deleted)": the file
//     was at that path, whose directories OpenTrusted found root's alone;
//   - the file is regular, owned by root and not writable by group or
//     others, so nobody but root wrote it while it was there;
//   - it has no link left (st_nlink 0): it is not still reachable under
//     another name, in a directory whose trust nobody checked.
//
// It returns nil if all hold.
func checkReplacedHelper(exe string, st *unix.Stat_t, helper string) error {
	old, ok := strings.CutSuffix(exe, deletedSuffix)
	switch {
	case !ok || old != helper:
		return fmt.Errorf("not the helper %s, nor a file that was there", helper)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return errors.New("its replaced executable is not a regular file")
	case st.Uid != 0:
		return fmt.Errorf("its replaced executable is owned by uid %d, not root", st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("its replaced executable has mode %04o, writable by group or others", st.Mode&0o7777)
	case st.Nlink != 0:
		return fmt.Errorf("its replaced executable still has %d links", st.Nlink)
	}
	return nil
}
