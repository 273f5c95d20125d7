package main

// Small helpers shared by the commands and their checks.

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/pam-unshare/pam-unshare/nsinit"
)

func readFileOr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// selfExe is this program's path, for the probes doctor runs in children.
func selfExe() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// checkOwnership returns "" when path is a regular file that only root
// could have put there (and executable, if exe), or what is wrong. It is
// the module's own check, nsinit.CheckTrusted.
func checkOwnership(path string, exe bool) string {
	var te *nsinit.TrustError
	if err := nsinit.CheckTrusted(path, exe); errors.As(err, &te) {
		return te.Problem
	} else if err != nil {
		return err.Error()
	}
	return ""
}
