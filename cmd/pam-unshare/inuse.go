package main

// __in-use: the one check, for every package's removal script, of whether
// PAM service files still load the module.

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/pamconf"
)

// inUseCmd is the hidden command that the deb prerm, the RPM %preun and
// the Arch pre_remove run before the module is removed. A "session
// required pam_unshare.so" line whose module is gone makes every session
// of that service fail, which would lock users and administrators out of
// su, sudo and ssh. It lists such files and exits 1 while there are any.
const inUseCmd = "__in-use"

func cmdInUse(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(inUseCmd, stderr)
	pamd := fs.String("pamd", pamconf.DefaultDir, "read PAM service files in `DIR`")
	if err := parseFlagsOnly(fs, args, stdout, stderr); err != nil {
		return err
	}
	files, err := pamconf.FilesUsingModule(pamconf.DirResolver{*pamd})
	if err != nil {
		return err // exit 1: the removal is refused when we cannot tell
	}
	if len(files) == 0 {
		return nil
	}
	fmt.Fprintf(stderr, "%s: %s is still enabled in:\n", progName, pamconf.ModuleName)
	for _, f := range files {
		fmt.Fprintf(stderr, "    %s\n", filepath.Join(*pamd, f))
	}
	fmt.Fprintf(stderr, "%s: run \"%s disable SERVICE...\" for those files first; "+
		"removing the module now would make their sessions fail.\n", progName, progName)
	return exitError(1)
}
