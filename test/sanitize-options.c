/*
 * sanitize-options.c - linked into the sanitizer builds of the helper and
 * of pamhost ("make test-sanitize"), never into what is installed.
 *
 * The helper runs with stdio on /dev/null and an empty environment, so
 * neither stderr nor ASAN_OPTIONS would reach anyone: the sanitizers read
 * their options from these functions instead and write each report to a
 * file SANITIZE_LOG.PID, which the make target looks for afterwards.
 */
#ifndef SANITIZE_LOG
#error "build with -DSANITIZE_LOG='\"/path/prefix\"'"
#endif

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void)
{
	return "log_path=" SANITIZE_LOG ":detect_leaks=1";
}

const char *__ubsan_default_options(void)
{
	return "log_path=" SANITIZE_LOG ":print_stacktrace=1";
}
