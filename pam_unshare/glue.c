/*
 * glue.c - see glue.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "abi/abi.h"
#include "glue.h"

/* The pam_set_data key for our state. */
#define STATE_NAME "pam_unshare:session"

/* Defined in module.go (//export puEndAbandoned). Ends session `id` when the
 * host calls pam_end without pam_close_session. */
extern void puEndAbandoned(pam_handle_t *pamh, long id);

/* Defined in module.go (//export pam_unshare_go_abi): the interface check
 * the front module looks up by the name abi.h gives. Referring to it by
 * that name here makes the library fail to link if the export is spelt
 * otherwise. */
extern int PU_GO_ABI_FUNC(void);
int (*const pu_go_abi_check)(void) = PU_GO_ABI_FUNC;

struct state {
	long id;     /* key into module.go's session table */
	pid_t owner; /* the process that opened the session */
};

void pu_syslog(pam_handle_t *pamh, int priority, const char *msg)
{
	pam_syslog(pamh, priority, "%s", msg);
}

const char *pu_get_item_string(pam_handle_t *pamh, int item)
{
	const void *value = NULL;

	if (pam_get_item(pamh, item, &value) != PAM_SUCCESS)
		return NULL;
	return value;
}

/*
 * The cleanup libpam calls from pam_end, or when the data is replaced.
 *
 * util-linux su calls pam_end(..., PAM_DATA_SILENT) in its forked child:
 * there the Go runtime cannot run and the namespace belongs to the parent,
 * so in any process other than the owner, and under PAM_DATA_SILENT or
 * PAM_DATA_REPLACE, nothing visible may happen. Only a plain pam_end in the
 * owner, which skipped pam_close_session, ends the session here.
 */
static void state_cleanup(pam_handle_t *pamh, void *data, int status)
{
	struct state *st = data;

	if (getpid() != st->owner)
		return; /* a forked copy: leave even the memory alone */
	if (!(status & (PAM_DATA_SILENT | PAM_DATA_REPLACE)))
		puEndAbandoned(pamh, st->id);
	free(st);
}

int pu_state_set(pam_handle_t *pamh, long id)
{
	struct state *st = malloc(sizeof(*st));
	int rc;

	if (!st)
		return PAM_BUF_ERR;
	st->id = id;
	st->owner = getpid();
	rc = pam_set_data(pamh, STATE_NAME, st, state_cleanup);
	if (rc != PAM_SUCCESS)
		free(st);
	return rc;
}

long pu_state_get(pam_handle_t *pamh)
{
	const void *data = NULL;

	if (pam_get_data(pamh, STATE_NAME, &data) != PAM_SUCCESS || !data)
		return 0;
	return ((const struct state *)data)->id;
}

int pu_state_clear(pam_handle_t *pamh)
{
	/* Replacing the data runs state_cleanup with PAM_DATA_REPLACE, which
	 * frees the old state without ending anything. */
	return pam_set_data(pamh, STATE_NAME, NULL, NULL);
}

/* Registered descriptors, each stored as fd + 1 so that 0 (the initial
 * value) means a free slot. */
static int hidden[PU_FDS_MAX];
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_err;

/* In the forked child: close every registered descriptor, and forget them
 * there, so that the child's own later forks do not close descriptors that
 * reuse the numbers. Only atomic loads and close(2). */
static void fds_close_in_child(void)
{
	for (int i = 0; i < PU_FDS_MAX; i++) {
		int v = __atomic_exchange_n(&hidden[i], 0, __ATOMIC_RELAXED);

		if (v > 0)
			close(v - 1);
	}
}

static void atfork_install(void)
{
	atfork_err = pthread_atfork(NULL, NULL, fds_close_in_child);
}

int pu_fds_hide(int fd)
{
	if (fd < 0)
		return EBADF;
	pthread_once(&atfork_once, atfork_install);
	if (atfork_err)
		return atfork_err;
	for (int i = 0; i < PU_FDS_MAX; i++) {
		int free_slot = 0;

		if (__atomic_compare_exchange_n(&hidden[i], &free_slot, fd + 1, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return 0;
	}
	return ENOSPC;
}

void pu_fds_unhide(int fd)
{
	for (int i = 0; i < PU_FDS_MAX; i++) {
		int registered = fd + 1;

		if (__atomic_compare_exchange_n(&hidden[i], &registered, 0, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
	}
}
