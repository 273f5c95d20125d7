#!/bin/bash
# pam_unshare scenarios, run as root inside the test guest by runner.sh.
#
#   scenarios.sh [SCENARIO...]
#   scenarios.sh --list [SCENARIO...]
#
# Each scenario is a function named sc_NAME that prints one or more TAP
# lines, defined in one of the SUITE files below, one file per concern
# (tap.sh, "suites": defining an sc_ function registers it); with no
# arguments all but the manual ones run, in the order of SUITE and then of
# the files. Output is TAP: one line per check, diagnostics as "# " lines
# after a failing check, the plan last. With VM_SMOKE=1 only the harness
# checks run (the module is not installed). --list prints the scenarios
# (or checks the names given) without running anything; run.sh and make
# lint run it.
#
# The guest is prepared by build-image.sh (users alice, bob, carol in group
# vmtest; root's ssh key logs in as each of them) and by runner.sh, which
# installs the package (dpkg -i; VM_INSTALL=make: copies a `make install`
# tree), creates /etc/pam.d/pamtester-unshare and runs `pam-unshare enable`
# (every service that starts a user's processes, and the guards) and
# `pam-unshare enable pamtester-unshare` (VM_ENABLE=append: appends
# `session required pam_unshare.so` to each itself, and installs no guard).
# shellcheck disable=SC2034 # the settings below are for the scenario files
set -u
export LC_ALL=C

HELPER=/usr/libexec/pam_unshare/pam_unshare-init
MODULE=/usr/lib/x86_64-linux-gnu/security/pam_unshare.so
# The Go library that MODULE loads when a session opens (GO_MODULE in the
# Makefile).
GO_MODULE=/usr/libexec/pam_unshare/pam_unshare_go.so
CLI=/usr/sbin/pam-unshare
PKG=pam-unshare
SERVICES=${SERVICES:-su su-l sshd sudo sudo-i login cron atd pamtester-unshare}
# How runner.sh installed the module (deb or make) and where its logs are.
VM_INSTALL=${VM_INSTALL:-deb}
VM_OUT=${VM_OUT:-/nonexistent}
USER_A=alice
# The module line runner.sh wrote (VM_PAM_ARGS: extra module arguments).
PAM_LINE="session required pam_unshare.so${VM_PAM_ARGS:+ $VM_PAM_ARGS}"
# Per-command limit, so one hung session cannot stall the whole run.
T=120

# tap.sh, the TAP library: next to this file in the guest payload (run.sh
# copies it there), one directory up in the source tree.
here=$(cd "$(dirname "$0")" && pwd)
lib=$here/tap.sh
[ -f "$lib" ] || lib=$here/../tap.sh
# Polling is costly under TCG: helper_pids reads /proc of every process.
TAP_POLL=0.2
# shellcheck source=test/tap.sh
. "$lib"

# The suite: guest.sh (what the scenarios share), then one file per
# concern, in the order they run (tap.sh, "suites"): the module as
# installed first, lifecycle.sh (restarts, upgrade, uninstall) last.
SUITE=(guest.sh install.sh sessions.sh peruser.sh doors.sh user_manager.sh
	systemd.sh admin_trust.sh hostwide.sh lifecycle.sh)
SUITE=("${SUITE[@]/#/$here/}")
if [ "${1:-}" = --list ]; then
	shift
	tap_select sc_ "${SUITE[@]}" -- "$@"
	rc=$?
	rm -f "$TAP_OUT"
	exit "$rc"
fi

tmp=$(mktemp -d /tmp/scenarios.XXXXXX) || fatal "mktemp failed"
host_pidns=$(readlink /proc/1/ns/pid)

# shellcheck source=/dev/null
for f in "${SUITE[@]}"; do . "$f"; done

if [ "${VM_SMOKE:-0}" = 1 ]; then
	tap_run sc_ "${SUITE[@]}" -- harness
else
	tap_run sc_ "${SUITE[@]}" -- "$@"
fi
rm -rf "$tmp"
plan
