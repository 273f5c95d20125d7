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

/*
 * Descriptors kept from the host's forked children.
 *
 * While a session is open the module holds descriptors on the host's
 * side: the saved namespaces, root and working directory, the helper's
 * control socket and pidfd. All are close-on-exec, but a child the host
 * forks and that never execs keeps them: sshd's post-auth child, which
 * runs as the user for the whole connection and is the session's PID 2,
 * would hold a root directory of the host (and with it the host's /proc),
 * the host's namespaces and the helper's socket. A pthread_atfork child
 * handler closes every descriptor registered here in each child forked
 * with fork(2) (glibc runs it in the child before fork returns there).
 * posix_spawn and vfork children run no handlers; they exec at once.
 *
 * The table is a fixed array of atomics, so the child handler takes no
 * lock and calls only close(2): it runs in a copy of a multi-threaded
 * process. Self-contained, so it can move with the PAM entry points.
 */
/* Room for this many descriptors over all sessions open in one process. */
#define PU_FDS_MAX 256

/* Register fd. Returns 0, or an errno value: ENOSPC when the table is
 * full, or what pthread_atfork returned on the first call. */
int pu_fds_hide(int fd);

/* Forget fd; call it before closing fd. Unknown descriptors are ignored. */
void pu_fds_unhide(int fd);

#endif
