// Command pam-unshare administers the pam_unshare PAM module: it adds the
// module to pam.d service files and removes it (enable, disable), checks
// that the system can run it (doctor), lists live isolated sessions
// (status), ends a user's shared namespace (stop) and runs a command in a namespace exactly as a session gets one
// (run). See pam-unshare(8).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
	hidden  bool // internal: not listed in usage
}

var commands []command

func init() {
	commands = []command{
		{"enable", "[--pamd DIR] [--options ARGS] [--dry-run] [SERVICE...] | --unit [--restart] [--dry-run] UNIT...", "add pam_unshare.so as the last session line of services (default: every service that starts a user's processes) and install the guards", cmdEnable, false},
		{"disable", "[--pamd DIR] [--dry-run] [SERVICE...] | --unit [--restart] [--dry-run] UNIT...", "remove pam_unshare.so from services (default: all), and the guards once no service uses it", cmdDisable, false},
		{"doctor", "[--pamd DIR] [--module PATH] [--helper PATH] [--manager-user USER] [--host-wide] [--json]", "check that this system can isolate sessions", cmdDoctor, false},
		{"status", "[--json] [--helper PATH] [--pamd DIR]", "list live isolated sessions and per-user namespaces", cmdStatus, false},
		{"stop", "[--helper PATH] USER", "end a user's per-user namespace and everything in it", cmdStop, false},
		{"run", "[--user USER] [--options ARGS] -- COMMAND [ARG...]", "run a command in a new namespace, as a session would", cmdRun, false},
		{probeUnshareCmd, "", "", cmdProbeUnshare, true},
		{probeInsideCmd, "", "", cmdProbeInside, true},
		{inUseCmd, "[--pamd DIR]", "exit 1 while PAM service files use the module (package removal scripts)", cmdInUse, true},
		{migrateBackupsCmd, "[--pamd DIR]", "move backups an older release left in DIR to the backup directory (package upgrade)", cmdMigrateBackups, true},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s COMMAND [OPTIONS] [ARGS]\n\nCommands:\n", progName)
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun \"%s COMMAND --help\" for a command's options, \"%s --version\" for the release. See pam-unshare(8).\n", progName, progName)
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs one command and returns the exit status.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintf(stdout, "%s %s\n", progName, version)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		var code exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.As(err, &code):
			return int(code)
		}
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return 1
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", progName, args[0])
	usage(stderr)
	return 2
}
