package main

// doctor's "option names" check: every user and group the module's
// options name must resolve, or the module refuses the sessions of every
// user it does not exempt by name (policy.Decide).

import (
	"fmt"
	"strings"

	"github.com/pam-unshare/pam-unshare/pam_unshare/policy"
)

// namesCheck is the check's name in the report.
const namesCheck = "option names"

// checkNames looks up, through n, every name in the module options of
// services.
func checkNames(services []moduleService, n policy.Names) check {
	c := check{Name: namesCheck, Status: statusOK}
	// One line per bad option value, with every service that has it.
	var order []string
	where := map[string][]string{}
	for _, s := range services {
		for _, e := range policy.Unresolved(s.opts, n) {
			msg := e.Error()
			if _, seen := where[msg]; !seen {
				order = append(order, msg)
			}
			where[msg] = append(where[msg], s.name)
		}
	}
	if len(order) == 0 {
		c.Message = "every user and group named in exempt_users, exempt_groups and only_groups resolves"
		return c
	}
	c.Status = statusFail
	c.Message = fmt.Sprintf("%d option value(s) do not resolve: the module refuses every session "+
		"(PAM_SYSTEM_ERR) but those of users named in exempt_users", len(order))
	for _, msg := range order {
		c.Details = append(c.Details, fmt.Sprintf("%s (service %s)", msg, strings.Join(where[msg], ", ")))
	}
	return c
}
