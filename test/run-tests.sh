#!/bin/bash
# run-tests.sh [BUILD_DIR [TEST...]] - pam_unshare loaded into real PAM
# clients: the C host test/pamhost.c, su, sudo and sshd. Prints TAP.
#
#   run-tests.sh --list [TEST...]
#
# Each test is a function t_NAME that runs one or more checks (tap.sh:
# `check DESC FUNCTION`), defined in one of the SUITE files below, one file
# per concern (tap.sh, "suites": defining a t_ function registers it). With
# TEST names (NAME or t_NAME) only those run, otherwise all, in the order of
# SUITE and then of the files. The two checks of the whole run (no helper
# left, host /proc intact) always run last. --list prints the tests, after
# checking that the files and their functions agree (make lint runs it).
#
# Needs root (it builds namespaces and mounts proc). It re-executes itself
# inside a private mount namespace and builds its own /etc/pam.d, users,
# sudoers and /dev/log there (lib.sh), so the machine is never changed. It
# also runs in a PID namespace of its own, with its own /proc: "nothing is
# left" then means nothing of this run, whatever else runs on the machine.
set -u

TEST_DIR=$(cd "$(dirname "$0")" && pwd)

# The suite: lib.sh (the test world and what tests share), then one file
# per concern. Each starts with no helper running and leaves none.
SUITE=(lib.sh pamhost.sh front.sh stacks.sh admin.sh planted.sh helper.sh
	procfs.sh su-sudo.sh names.sh run-user.sh sshd.sh scope-user.sh relay.sh
	limits.sh)

SUITE=("${SUITE[@]/#/$TEST_DIR/}")

if [ "${1:-}" = --list ]; then
	shift
	BUILD=$TEST_DIR/../build
	# shellcheck source=/dev/null
	for f in "${SUITE[@]}"; do . "$f"; done
	tap_list t_ "${SUITE[@]}" -- "$@"
	rc=$?
	rm -f "$TAP_OUT"
	exit "$rc"
fi

BUILD=$(cd "${1:-build}" && pwd)
MODULE=$BUILD/pam_unshare.so
HELPER=$BUILD/pam_unshare-init
PAMHOST=$BUILD/pamhost
export TEST_DIR BUILD MODULE HELPER PAMHOST

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP the real-client tests need root"
	exit 0
fi
if [ -z "${PAM_UNSHARE_TEST_NS:-}" ]; then
	PAM_UNSHARE_TEST_NS=1 exec unshare --mount --propagation private \
		--pid --fork --mount-proc --net "$0" "$@"
fi
# A network namespace of our own: the test sshd's port cannot collide with
# anything on the machine, nor with another run of these tests.
ip link set lo up


# shellcheck source=test/stage.sh
. "$TEST_DIR"/stage.sh
# shellcheck source=/dev/null
for f in "${SUITE[@]}"; do . "$f"; done

all_helpers_gone() { wait_until 10 no_helpers || fail "helpers left: $(helpers_alive)"; }

[ $# -gt 0 ] && shift # BUILD_DIR
# Before the world is made: the suite agrees with its functions, and each
# TEST is one of its tests.
out=$(tap_list t_ "${SUITE[@]}" -- "$@") || fatal "${out//$'\n'/; }"

W=$(mktemp -d /tmp/pam_unshare-test.XXXXXX)
world_setup "$W"
trap world_teardown EXIT
# pam_unshare.so loads the Go library from its installed path: put this
# build's there, in this mount namespace only.
GO_MODULE=$(stage_go_module "$BUILD" "$W"/stage) || fatal "cannot stage the Go library"
export GO_MODULE

# A host process that no session may see.
sleep 1001 &
MARKER=$!

tap_run t_ "${SUITE[@]}" -- "$@"

kill "$MARKER"
check "no helper is left after the whole run" all_helpers_gone
check "the host's /proc and binfmt_misc are intact after the whole run" host_proc_intact
plan
summary
