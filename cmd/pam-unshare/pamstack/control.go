package pamstack

import (
	"strconv"
	"strings"
)

// Return values of PAM modules, as in Linux-PAM's _pam_types.h. The names
// are the ones the [value=action] syntax uses (_pam_token_returns in
// libpam/pam_tokens.h), in the same order.
const (
	Success    = 0  // PAM_SUCCESS
	SystemErr  = 4  // PAM_SYSTEM_ERR
	PermDenied = 6  // PAM_PERM_DENIED: libpam's PAM_MUST_FAIL_CODE
	NewAuthtok = 12 // PAM_NEW_AUTHTOK_REQD
	SessionErr = 14 // PAM_SESSION_ERR
	Ignore     = 25 // PAM_IGNORE
	Incomplete = 31 // PAM_INCOMPLETE

	// NumReturns is _PAM_RETURN_VALUES: the number of valid return values.
	NumReturns = 32
)

// returnNames are _pam_token_returns; index NumReturns is "default".
var returnNames = [NumReturns + 1]string{
	"success", "open_err", "symbol_err", "service_err", "system_err",
	"buf_err", "perm_denied", "auth_err", "cred_insufficient",
	"authinfo_unavail", "user_unknown", "maxtries", "new_authtok_reqd",
	"acct_expired", "session_err", "cred_unavail", "cred_expired",
	"cred_err", "no_module_data", "conv_err", "authtok_err",
	"authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging",
	"try_again", "ignore", "abort", "authtok_expired", "module_unknown",
	"bad_item", "conv_again", "incomplete",
	"default",
}

// ReturnName is the C name of a return value: "PAM_SYSTEM_ERR".
func ReturnName(v int) string {
	if v < 0 || v >= NumReturns {
		return "an invalid return value"
	}
	if v == 21 {
		return "PAM_AUTHTOK_RECOVERY_ERR" // the one whose token differs
	}
	return "PAM_" + strings.ToUpper(returnNames[v])
}

// Action is what libpam does with a module's return value
// (_PAM_ACTION_* in pam_private.h): a positive value jumps over that many
// modules; the others are the named actions.
type Action int

// The named actions, with libpam's values.
const (
	ActIgnore Action = 0
	ActOK     Action = -1
	ActDone   Action = -2
	ActBad    Action = -3
	ActDie    Action = -4
	ActReset  Action = -5
	actUndef  Action = -6
)

// actionNames are _pam_token_actions, indexed by -Action.
var actionNames = [...]string{"ignore", "ok", "done", "bad", "die", "reset"}

func (a Action) String() string {
	switch {
	case a > 0:
		return strconv.Itoa(int(a))
	case a <= actUndef:
		return "undefined"
	}
	return actionNames[-a]
}

// Actions maps each return value to an action.
type Actions [NumReturns]Action

// setDefault is _pam_set_default_control: every undefined entry gets a.
func (as *Actions) setDefault(a Action) {
	for i := range as {
		if as[i] == actUndef {
			as[i] = a
		}
	}
}

func undefActions() Actions {
	var as Actions
	for i := range as {
		as[i] = actUndef
	}
	return as
}

// ParseControl returns the actions of a control word as libpam sets them
// in _pam_parse_conf_file: the four keywords (case-insensitive), or a
// bracketed [value=action ...] list whose unset values are "bad". include
// and substack have no actions of their own (ok is false for them, and for
// a missing control).
func ParseControl(control string) (as Actions, ok bool) {
	as = undefActions()
	word := controlWord(control)
	switch strings.ToLower(word) {
	case "":
		as.setDefault(ActBad)
		return as, false
	case "required":
		as[Success], as[NewAuthtok], as[Ignore] = ActOK, ActOK, ActIgnore
		as.setDefault(ActBad)
	case "requisite":
		as[Success], as[NewAuthtok], as[Ignore] = ActOK, ActOK, ActIgnore
		as.setDefault(ActDie)
	case "optional":
		as[Success], as[NewAuthtok] = ActOK, ActOK
		as.setDefault(ActIgnore)
	case "sufficient":
		as[Success], as[NewAuthtok] = ActDone, ActDone
		as.setDefault(ActIgnore)
	case "include", "substack":
		return as, false
	default:
		// libpam parses any other word as a list, whether or not it was in
		// brackets: the word "optinal" is a parse error (all bad).
		parseList(&as, word)
		as.setDefault(ActBad)
	}
	return as, true
}

// parseList is _pam_parse_control: "value=action" pairs separated by
// blanks, names matched by prefix in table order, actions ignore, ok, done,
// bad, die, reset or a positive jump. Any error makes every value bad.
func parseList(as *Actions, tok string) {
	for {
		tok = strings.TrimLeft(tok, " \t\n\r\v\f")
		if tok == "" {
			return
		}
		ret := -1
		for i, name := range returnNames {
			if strings.HasPrefix(tok, name) {
				ret = i
				break
			}
		}
		if ret < 0 || len(tok) == len(returnNames[ret]) {
			allBad(as)
			return
		}
		tok = strings.TrimLeft(tok[len(returnNames[ret]):], " \t\n\r\v\f")
		if !strings.HasPrefix(tok, "=") {
			allBad(as)
			return
		}
		tok = strings.TrimLeft(tok[1:], " \t\n\r\v\f")
		if tok == "" {
			allBad(as)
			return
		}
		act := Action(1) // not found yet
		for i, name := range actionNames {
			if strings.HasPrefix(tok, name) {
				act = Action(-i)
				tok = tok[len(name):]
				break
			}
		}
		if act > 0 {
			n := 0
			digits := 0
			for digits < len(tok) && tok[digits] >= '0' && tok[digits] <= '9' {
				n = n*10 + int(tok[digits]-'0')
				digits++
			}
			if digits == 0 || n == 0 {
				allBad(as)
				return
			}
			act = Action(n)
			tok = tok[digits:]
		}
		if ret == NumReturns {
			as.setDefault(act)
		} else {
			as[ret] = act
		}
	}
}

func allBad(as *Actions) {
	for i := range as {
		as[i] = ActBad
	}
}
