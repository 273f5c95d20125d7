package main

// What every command shares: the program's name and release, the errors
// that end a command with a status, and GNU-style flag parsing whose -h
// output shows the command's row of the table in main.go.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// progName prefixes every error message.
const progName = "pam-unshare"

// version is the release, set by the build (the Makefile's VERSION, from
// packaging/debian/changelog, through -ldflags -X); "unknown" in a plain
// go build.
var version = "unknown"

// errUsage is returned after the usage text has been printed; main exits 2.
var errUsage = errors.New("usage")

// exitError carries an exit status without a message (doctor, run).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// newFlags returns a FlagSet for command name whose -h output shows the
// synopsis and the flags.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var synopsis, summary string
	for _, c := range commands {
		if c.name == name {
			synopsis, summary = c.args, c.summary
		}
	}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s %s %s\n\n%s.\n", progName, name, synopsis, capitalize(summary))
		printFlags(fs)
	}
	return fs
}

// printFlags lists the flags GNU-style ("--pamd DIR"), the way the man page
// writes them; the flag package accepts one dash or two.
func printFlags(fs *flag.FlagSet) {
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintf(fs.Output(), "\nOptions:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + strings.ToUpper(name)
		}
		fmt.Fprintf(fs.Output(), "  --%s%s\n        %s", f.Name, name, usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(fs.Output(), " (default %q)", f.DefValue)
		}
		fmt.Fprintln(fs.Output())
	})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseFlagsOnly parses a command that takes flags but no other arguments.
func parseFlagsOnly(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	pos, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "%s %s: unexpected argument %q\n", progName, fs.Name(), pos[0])
		return errUsage
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments ("enable su --dry-run"); "--" ends the flags.
// --help prints the usage on stdout and returns flag.ErrHelp.
func parseInterspersed(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, flag.ErrHelp
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops after "--" (everything left is positional) or at
		// the first positional argument.
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
