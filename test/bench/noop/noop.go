// Command noop is a PAM session module that does nothing, built the same way
// as pam_unshare.so (a Go c-shared library). The benchmark loads it to
// measure what the Go runtime alone costs a PAM host: the difference between
// this module and pam_permit is the runtime; the difference between
// pam_unshare and this module is the namespace work.
//
// Build: go build -buildmode=c-shared -o noop.so ./test/bench/noop
package main

// The PAM headers are not included: cgo would declare the exports with
// "char **argv" and clash with the "const char **argv" of pam_modules.h.
// The values are Linux-PAM's (security/_pam_types.h).

// #define NOOP_PAM_SUCCESS 0 /* PAM_SUCCESS in _pam_types.h */
import "C"

import "unsafe"

//export pam_sm_open_session
func pam_sm_open_session(pamh unsafe.Pointer, flags, argc C.int, argv unsafe.Pointer) C.int {
	return C.NOOP_PAM_SUCCESS
}

//export pam_sm_close_session
func pam_sm_close_session(pamh unsafe.Pointer, flags, argc C.int, argv unsafe.Pointer) C.int {
	return C.NOOP_PAM_SUCCESS
}

func main() {}
