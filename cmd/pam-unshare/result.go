package main

import "github.com/pam-unshare/pam-unshare/cmd/pam-unshare/internal/result"

// The checks of this package speak internal/result's words; these names
// keep them short here.
type (
	check    = result.Check
	liveDoor = result.LiveDoor
)

const (
	statusOK   = result.OK
	statusWarn = result.Warn
	statusFail = result.Fail
	statusSkip = result.Skip
)
