/*
 * nss-fail.c - an NSS module whose every lookup fails as a directory
 * service does when it is down (an LDAP or SSSD outage): status
 * NSS_STATUS_UNAVAIL with errno EHOSTDOWN, which getpwnam_r and
 * getgrnam_r pass back as an error, not as "no such name".
 *
 * The real-client tests (test/names.sh) mount it, in their private mount
 * namespace only, over the file of an NSS module nobody else uses, and name
 * that module after "files" in /etc/nsswitch.conf: names in the test's
 * /etc/passwd and /etc/group still resolve, every other name fails.
 */
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

#define FAIL(errnop) \
	do { \
		*(errnop) = EHOSTDOWN; \
		return NSS_STATUS_UNAVAIL; \
	} while (0)

/* The module is loaded under the name of the file it is mounted over:
 * NSS_NAME (hesiod) makes the symbols _nss_hesiod_*. */
#define SYM2(name, fn) _nss_##name##_##fn
#define SYM(name, fn) SYM2(name, fn)

enum nss_status SYM(NSS_NAME, getpwnam_r)(const char *, struct passwd *, char *, size_t, int *);
enum nss_status SYM(NSS_NAME, getpwuid_r)(uid_t, struct passwd *, char *, size_t, int *);
enum nss_status SYM(NSS_NAME, getgrnam_r)(const char *, struct group *, char *, size_t, int *);
enum nss_status SYM(NSS_NAME, getgrgid_r)(gid_t, struct group *, char *, size_t, int *);

enum nss_status SYM(NSS_NAME, getpwnam_r)(const char *name, struct passwd *pw, char *buf, size_t len, int *errnop)
{
	(void)name, (void)pw, (void)buf, (void)len;
	FAIL(errnop);
}

enum nss_status SYM(NSS_NAME, getpwuid_r)(uid_t uid, struct passwd *pw, char *buf, size_t len, int *errnop)
{
	(void)uid, (void)pw, (void)buf, (void)len;
	FAIL(errnop);
}

enum nss_status SYM(NSS_NAME, getgrnam_r)(const char *name, struct group *gr, char *buf, size_t len, int *errnop)
{
	(void)name, (void)gr, (void)buf, (void)len;
	FAIL(errnop);
}

enum nss_status SYM(NSS_NAME, getgrgid_r)(gid_t gid, struct group *gr, char *buf, size_t len, int *errnop)
{
	(void)gid, (void)gr, (void)buf, (void)len;
	FAIL(errnop);
}
