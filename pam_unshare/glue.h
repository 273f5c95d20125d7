/*
 * glue.h - the C side of the PAM module: what cgo cannot call directly
 * (variadic pam_syslog) or what must be C (the pam_set_data cleanup, which
 * may run in a forked copy of the host where Go cannot run).
 * Implemented in glue.c; used by module.go.
 *
 * This header deliberately includes only pam_appl.h: pam_modules.h declares
 * pam_sm_open_session with a `const char **` argument, which would clash
 * with the prototype cgo generates for the Go export.
 */
#ifndef PAM_UNSHARE_GLUE_H
#define PAM_UNSHARE_GLUE_H

#include <security/pam_appl.h>

/* pam_syslog(pamh, priority, "%s", msg): the module name, service and
 * type prefix come from libpam. */
void pu_syslog(pam_handle_t *pamh, int priority, const char *msg);

/* A string item (PAM_USER, PAM_SERVICE, ...), or NULL if unset. */
const char *pu_get_item_string(pam_handle_t *pamh, int item);

/* Remember the live session `id` (a key into module.go's session table)
 * until pam_close_session. Returns a PAM code. */
int pu_state_set(pam_handle_t *pamh, long id);

/* The id stored by pu_state_set, or 0 if there is none. */
long pu_state_get(pam_handle_t *pamh);

/* Forget the stored id. Returns a PAM code. */
int pu_state_clear(pam_handle_t *pamh);

#endif
