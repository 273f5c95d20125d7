package main

/*
#include <syslog.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"

	"github.com/msteinert/pam/v2"

	"github.com/pam-unshare/pam-unshare/nsinit"
	"github.com/pam-unshare/pam-unshare/pam_unshare/options"
	"github.com/pam-unshare/pam-unshare/pam_unshare/plan"
	"github.com/pam-unshare/pam-unshare/pam_unshare/policy"
)

const success = pam.Error(0) // PAM_SUCCESS

// live is one isolated session, from open to close.
type live struct {
	ns      *nsinit.Session
	user    string
	service string
}

// The sessions open in this process, by id. Only the id crosses into C
// (pam_set_data), so no Go pointer is ever held by C.
var (
	sessionsMu sync.Mutex
	sessions   = map[int64]*live{}
	lastID     int64
)

func register(l *live) int64 {
	sessionsMu.Lock()
	defer sessionsMu.Unlock()
	lastID++
	sessions[lastID] = l
	return lastID
}

func take(id int64) *live {
	sessionsMu.Lock()
	defer sessionsMu.Unlock()
	l := sessions[id]
	delete(sessions, id)
	return l
}

// logger adds the debug switch to the host's syslog.
type logger struct {
	host
	debug bool
}

func (l logger) errorf(format string, a ...any) { l.log(C.LOG_ERR, fmt.Sprintf(format, a...)) }
func (l logger) infof(format string, a ...any)  { l.log(C.LOG_INFO, fmt.Sprintf(format, a...)) }
func (l logger) debugf(format string, a ...any) {
	if l.debug {
		l.log(C.LOG_DEBUG, fmt.Sprintf(format, a...))
	}
}

// refuse logs why a session is refused and returns the PAM error for it:
// PAM_USER_UNKNOWN when the user does not exist, else PAM_SYSTEM_ERR with
// failed ("cannot ...") saying what did not work.
func (l logger) refuse(err error, userName, failed string) pam.Error {
	if errors.Is(err, policy.ErrUnknownUser) {
		l.errorf("cannot look up user %s: %v; refusing the session", userName, err)
		return pam.ErrUserUnknown
	}
	l.errorf("%s: %v; refusing the session", failed, err)
	return pam.ErrSystem
}

func openSession(h host, args []string) pam.Error {
	opts, err := options.Parse(args)
	if err != nil {
		h.log(C.LOG_ERR, err.Error()+"; refusing the session")
		return pam.ErrSystem
	}
	l := logger{h, opts.Debug}
	service, userName := h.service(), h.user()
	if policy.StartedBySystemd(service) {
		l.log(C.LOG_NOTICE, fmt.Sprintf("service %s starts sessions through systemd, which cannot be isolated; not isolating", service))
		return pam.ErrIgnore
	}
	// Read before any namespace changes: the host's own /proc. A host
	// whose /proc/self does not resolve is not systemd's.
	if exe, _ := os.Readlink("/proc/self/exe"); policy.OpenedBySystemd(exe) {
		l.log(C.LOG_NOTICE, fmt.Sprintf("service %s: this session is opened through systemd (%s, a unit with PAMName=), which cannot be isolated; not isolating", service, exe))
		return pam.ErrIgnore
	}
	if userName == "" {
		l.errorf("no user name (PAM_USER is not set); refusing the session")
		return pam.ErrUserUnknown
	}
	decision, err := policy.Decide(opts, userName, policy.System)
	var badName *policy.NameError
	if errors.As(err, &badName) {
		// The option and the value, as written in the pam.d line.
		l.errorf("%v; refusing the session", err)
		return pam.ErrSystem
	}
	if err != nil {
		return l.refuse(err, userName, "cannot look up the groups of user "+userName)
	}
	if !decision.Isolate {
		l.debugf("not isolating: %s", decision.Reason)
		return pam.ErrIgnore
	}
	if h.state() != 0 {
		l.errorf("a session is already open in this PAM transaction; refusing a second one")
		return pam.ErrSystem
	}
	l.debugf("entering %s PID and mount namespaces for user %s (propagation=%s, grace=%v, linger=%v, helper=%s)",
		scopeWords(opts.Scope), userName, opts.Propagation, opts.Grace, opts.Linger, nsinit.Config{HelperPath: opts.Helper}.Helper())
	ns, err := enter(l, opts, service, userName)
	if err != nil {
		return l.refuse(err, userName, "cannot isolate the session of user "+userName)
	}
	if err := hideFDs(ns.Descriptors()); err != nil {
		endErr := ns.End()
		l.errorf("%v; refusing the session%s", err, suffix(endErr))
		return pam.ErrSystem
	}
	id := register(&live{ns: ns, user: userName, service: service})
	if rc := h.setState(id); rc != success {
		take(id)
		endErr := end(ns)
		l.errorf("cannot store session state (%v); refusing the session%s", rc, suffix(endErr))
		return pam.ErrSystem
	}
	l.infof("session opened for user %s: helper pid %d", userName, ns.HelperPID())
	return success
}

func closeSession(h host, args []string) pam.Error {
	// A bad argument already refused the open; closing still has to end
	// whatever is live, so only the debug switch is taken from the options.
	opts, _ := options.Parse(args)
	l := logger{h, opts.Debug}
	id := h.state()
	if id == 0 {
		l.debugf("no isolated session to close")
		return pam.ErrIgnore
	}
	s := take(id)
	h.clearState()
	if s == nil {
		l.errorf("session state %d is unknown to this process; nothing to close", id)
		return pam.ErrSession
	}
	l.debugf("ending the namespace of helper pid %d", s.ns.HelperPID())
	if err := end(s.ns); err != nil {
		l.errorf("closing the session of user %s: %v", s.user, err)
		return pam.ErrSession
	}
	l.infof("session closed for user %s", s.user)
	return success
}

// enter puts the host thread into the session's namespace: a new one, or
// with scope=user the user's shared one, joined or created, as the plan
// for these options says.
func enter(l logger, opts options.Options, service, userName string) (*nsinit.Session, error) {
	acct := plan.Account{Name: userName}
	if plan.NeedsIDs(opts) {
		// The namespace is keyed by UID, and the relay runs as the
		// account: names can alias one account, so look it up once, here.
		var err error
		if acct.UID, acct.GID, err = lookupIDs(userName); err != nil {
			return nil, err
		}
	}
	req := plan.Make(opts, service, acct)
	if !req.PerUser {
		return nsinit.Enter(req.Config)
	}
	return enterUser(l, req.Config, req.UID, req.Linger)
}

// lookupIDs is the UID and GID of the account userName.
func lookupIDs(userName string) (uid, gid int, err error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return 0, 0, fmt.Errorf("%w %q: %v", policy.ErrUnknownUser, userName, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %s has a non-numeric uid or gid %q:%q", userName, u.Uid, u.Gid)
	}
	return uid, gid, nil
}

// enterUser is EnterUser, with its two ways out into a namespace of the
// session only. A host inside an isolated session (sudo, su, cron run from
// one) must neither create a per-user namespace there, below the session
// whose owner sees and signals everything in it, nor join one. And a
// helper that is ours but cannot serve a join (an older or newer build
// that answers something else, or none at all) must not lock the user
// out: the login is isolated all the same, only not shared.
func enterUser(l logger, cfg nsinit.Config, uid int, linger bool) (*nsinit.Session, error) {
	ns, err := nsinit.EnterUser(cfg, uid, linger)
	var joinErr *nsinit.JoinError
	switch {
	case errors.Is(err, nsinit.ErrNestedHost):
		l.infof("user %s gets a namespace of this session only, not the per-user one: %v", cfg.User, err)
		return nsinit.Enter(cfg)
	case errors.As(err, &joinErr):
		l.log(C.LOG_WARNING, fmt.Sprintf("cannot join the per-user namespace of user %s: %v; this session gets a namespace of its own", cfg.User, err))
		return nsinit.Enter(cfg)
	case err != nil:
		return nil, err
	}
	if v, replaced, joined := ns.JoinedHelper(); joined && (replaced || v != nsinit.ProtoVersion) {
		l.debugf("joined helper pid %d of protocol version %d (this module: %d), replaced executable: %v",
			ns.HelperPID(), v, nsinit.ProtoVersion, replaced)
	}
	return ns, nil
}

func scopeWords(scope string) string {
	if scope == options.ScopeUser {
		return "the per-user"
	}
	return "new"
}

// endAbandoned ends a session whose host called pam_end without
// pam_close_session.
func endAbandoned(h host, id int64) {
	s := take(id)
	if s == nil {
		return
	}
	err := end(s.ns)
	h.log(C.LOG_NOTICE, fmt.Sprintf("pam_end without pam_close_session: ended the session of user %s%s", s.user, suffix(err)))
}

// end ends a session whose descriptors hideFDs registered.
func end(ns *nsinit.Session) error {
	unhideFDs(ns.Descriptors())
	return ns.End()
}

func suffix(err error) string {
	if err == nil {
		return ""
	}
	return "; " + err.Error()
}

// main is required by -buildmode=c-shared and never runs.
func main() {}
