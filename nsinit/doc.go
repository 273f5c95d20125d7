// Package nsinit puts the calling thread into a fresh PID and mount
// namespace whose /proc belongs to that PID namespace, and takes it out
// again. pam_unshare.so calls it from pam_open_session and
// pam_close_session; `pam-unshare run` calls it to try the same isolation
// without PAM.
//
// # What runs where
//
//   - Enter and End run on the caller's thread, which must be locked with
//     runtime.LockOSThread for the whole call. In a PAM module that thread
//     is the host's (su, the sshd monitor, the sudo front end): unshare and
//     setns act on it alone, and the process it forks next becomes the
//     session leader, PID 2 of the new namespace. The Go runtime's other
//     threads never touch namespaces.
//   - After unshare the thread cannot create threads (clone(CLONE_THREAD)
//     gives EINVAL while its PID namespace for children differs from its
//     own). LockOSThread makes the runtime create threads from its template
//     thread instead, which stayed in the host namespaces.
//   - The child is started by nsspawn.c with posix_spawn, so no Go code runs
//     in a forked copy of the host, and Go's os/exec (whose pidfd probe
//     child would become PID 1 and kill the namespace) is never used.
//   - The child is the PID-1 helper, init/*.c, a separate single-threaded
//     C program. It makes / a slave mount, replaces /proc, reports readiness
//     over the control socket (handshake.h), and then waits for the session
//     to end, reaping orphans. See the comment at the top of init/main.c.
//   - End asks the helper to tear down, reaps it, and moves the thread back
//     to the namespaces Enter saved, so the host can open the next session.
//   - EnterUser (scope=user) creates or joins a user's shared namespace
//     only from the top PID namespace (pidns.go): a host inside a session
//     gets ErrNestedHost. It joins only a helper that is root, PID 1 of its
//     own namespace, runs the helper file (or one an upgrade replaced,
//     trust.go) and hangs right below the caller's PID namespace.
//
// See README.md in this directory for the sequence and its failure paths.
package nsinit
