// Command pam_unshare is the Go half of the PAM session module, built with
// go build -buildmode=c-shared and installed as pam_unshare_go.so. It
// isolates each session it opens in a new PID and mount namespace with its
// own /proc; see the pam_unshare(8) man page. PAM loads the C front
// module pam_unshare.so (front/front.c), which loads this library only when
// a session opens and calls the two entry points below; see front.c for
// what it checks first.
//
// This file is the boundary with libpam: the two exported entry points, each
// one line that calls an adapter, and the adapters that turn Go results into
// PAM codes. The logic is in session.go. The exported functions run on the
// host's thread (the one that called pam_open_session), which is exactly
// the thread whose namespaces nsinit changes.
//
// containermaxprocs=0: since Go 1.25 the runtime opens its cgroup's CPU
// limit files when it starts (at dlopen) and keeps them open to follow
// limit changes. The host's forked children inherit every descriptor the
// module holds: sshd's post-auth child, which runs as the user and never
// execs, would keep them for the whole connection. With this setting the
// runtime reads the files once and closes them. A GODEBUG in the host's
// environment still overrides it; glue.c covers the module's own
// descriptors.
//
// updatemaxprocs=0: no periodic re-reading of the CPU limit by sysmon. The
// front module starts the runtime with one P anyway (front/front.c,
// go_dlopen).
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

/*
#cgo CFLAGS: -Wall -Wextra -Werror
#cgo LDFLAGS: -lpam
#include <stdlib.h>
#include <syslog.h>
#include <security/pam_appl.h>
#include "glue.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"syscall"
	"unsafe"

	"github.com/msteinert/pam/v2"

	"github.com/pam-unshare/pam-unshare/pam_unshare/abi"
)

//export pam_sm_open_session
func pam_sm_open_session(pamh *C.pam_handle_t, flags, argc C.int, argv **C.char) C.int {
	return adapt(pamh, argc, argv, openSession)
}

//export pam_sm_close_session
func pam_sm_close_session(pamh *C.pam_handle_t, flags, argc C.int, argv **C.char) C.int {
	return adapt(pamh, argc, argv, closeSession)
}

// pam_unshare_go_abi lets the front module check that it loaded this
// library, of the same interface version (abi/abi.h: PU_GO_ABI, and this
// function's name, PU_GO_ABI_FUNC, which cgo needs spelt out here; glue.c
// refers to it by the header's name, so the two cannot differ).
//
//export pam_unshare_go_abi
func pam_unshare_go_abi() C.int { return abi.Version }

// puEndAbandoned is called by glue.c's pam_set_data cleanup when the host
// ends the PAM transaction without pam_close_session.
//
//export puEndAbandoned
func puEndAbandoned(pamh *C.pam_handle_t, id C.long) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	endAbandoned(host{pamh}, int64(id))
}

// adapt runs an entry point: it keeps the goroutine on the host's thread,
// turns a panic into PAM_SYSTEM_ERR with a log line, and converts the result.
//
// runtime.LockOSThread matters beyond pinning: once the thread has
// unshared its PID namespace it cannot create threads, and a locked thread
// makes the runtime create any new thread from its template thread instead.
func adapt(pamh *C.pam_handle_t, argc C.int, argv **C.char, entry func(host, []string) pam.Error) (rc C.int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h := host{pamh}
	defer func() {
		if r := recover(); r != nil {
			h.log(C.LOG_CRIT, fmt.Sprintf("internal error: %v\n%s", r, debug.Stack()))
			rc = C.int(pam.ErrSystem)
		}
	}()
	return C.int(entry(h, goStrings(argc, argv)))
}

func goStrings(argc C.int, argv **C.char) []string {
	if argc <= 0 || argv == nil {
		return nil
	}
	args := make([]string, 0, int(argc))
	for _, p := range unsafe.Slice(argv, int(argc)) {
		args = append(args, C.GoString(p))
	}
	return args
}

// host is the PAM handle of the calling application.
type host struct{ pamh *C.pam_handle_t }

func (h host) log(priority C.int, msg string) {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.pu_syslog(h.pamh, priority, cmsg)
}

func (h host) item(item C.int) string {
	if p := C.pu_get_item_string(h.pamh, item); p != nil {
		return C.GoString(p)
	}
	return ""
}

func (h host) user() string    { return h.item(C.PAM_USER) }
func (h host) service() string { return h.item(C.PAM_SERVICE) }

// hideFDs keeps fds from every process the host forks from now on (see
// pu_fds_hide in glue.h). On error none of them is registered.
func hideFDs(fds []int) error {
	for i, fd := range fds {
		if rc := C.pu_fds_hide(C.int(fd)); rc != 0 {
			unhideFDs(fds[:i])
			return fmt.Errorf("cannot keep descriptor %d from forked children: %w", fd, syscall.Errno(rc))
		}
	}
	return nil
}

// unhideFDs forgets fds registered by hideFDs; call it before they close.
func unhideFDs(fds []int) {
	for _, fd := range fds {
		C.pu_fds_unhide(C.int(fd))
	}
}

func (h host) setState(id int64) pam.Error { return pam.Error(C.pu_state_set(h.pamh, C.long(id))) }
func (h host) state() int64                { return int64(C.pu_state_get(h.pamh)) }
func (h host) clearState()                 { C.pu_state_clear(h.pamh) }
