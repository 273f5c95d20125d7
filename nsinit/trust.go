package nsinit

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// TrustError says why a file could have been written by someone other
// than root.
type TrustError struct {
	Path    string
	Problem string
}

func (e *TrustError) Error() string { return e.Path + ": " + e.Problem }

// CheckTrusted returns nil if only root could have put path in place: it is
// a regular file (executable, if executable is set) owned by root and not
// writable by group or others, and so is every directory above it (sticky
// directories such as /tmp excepted). The module runs the helper as root
// in every session and refuses sessions when this fails; pam-unshare
// doctor reports the same check.
func CheckTrusted(path string, executable bool) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); errors.Is(err, fs.ErrNotExist) {
		return &TrustError{path, "missing"}
	} else if err != nil {
		return &TrustError{path, err.Error()}
	}
	perm := st.Mode & 0o7777
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &TrustError{path, "not a regular file"}
	case st.Uid != 0:
		return &TrustError{path, fmt.Sprintf("owned by uid %d, must be owned by root", st.Uid)}
	case perm&0o022 != 0:
		return &TrustError{path, fmt.Sprintf("mode %04o: must not be writable by group or others", perm)}
	case executable && perm&0o100 == 0:
		return &TrustError{path, fmt.Sprintf("mode %04o: not executable", perm)}
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if err := unix.Stat(dir, &st); err != nil {
			return &TrustError{path, fmt.Sprintf("directory %s: %v", dir, err)}
		}
		sticky := st.Mode&unix.S_ISVTX != 0
		if st.Uid != 0 || (st.Mode&0o022 != 0 && !sticky) {
			return &TrustError{path, fmt.Sprintf("directory %s must be owned by root and not writable by group or others", dir)}
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}
