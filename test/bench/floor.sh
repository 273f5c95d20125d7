#!/bin/bash
# floor.sh - what the Go runtime alone costs a PAM host, and what changes it.
#
# Usage: floor.sh BUILD_DIR
#   BUILD_DIR holds pamhost. Builds variants of the no-op module
#   (test/bench/noop) into a temporary directory and, for each, measures
#   with pam_permit as the baseline:
#     size     the .so on disk
#     cold     pam_start..pam_end of the first session in a fresh process
#              (module load and runtime start), median of 40 processes
#     open     pam_open_session p50 over 200 warm sessions (no fork)
#     PSS/RSS/threads of the host with a session open
# Environment: GO (default go).
# Needs no root and touches no system configuration.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: floor.sh BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
PAMHOST=$BUILD/pamhost
GO=${GO:-go}
SRC=$(cd "$(dirname "$0")/noop" && pwd)
# The version script pam_unshare.so is linked with.
MAP=$(cd "$(dirname "$0")/../../pam_unshare" && pwd)/exports.map

W=$(mktemp -d /tmp/pam_unshare-floor.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/conf" "$W/plain" "$W/imports"

# Two source trees: the no-op as it is, and the same with imports that a
# real module tends to pull in (fmt, os, os/user, strings, time).
cp "$SRC/noop.go" "$W/plain/"
cp "$SRC/noop.go" "$W/imports/"
cat >"$W/imports/imports.go" <<'EOF'
package main

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"
)

// Referenced so that the linker keeps the packages and runs their init.
var _ = []any{fmt.Sprintf, os.Getpid, user.Lookup, strings.Split, time.Now}
EOF
for d in plain imports; do
	printf 'module noop\n\ngo 1.22\n' >"$W/$d/go.mod"
done

# pct FILE P: nearest-rank P-th percentile of the numbers in FILE.
pct() {
	sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 }
		END { if (NR == 0) { print "NA"; exit }
		      i = int((p * NR + 99) / 100); print a[i < 1 ? 1 : i] }'
}
field() { awk -v f="$2:" '$1 == f { print $2; exit }' "$1"; }

# measure NAME SERVICE [ENV...]: one table row for this stack.
measure() {
	local name=$1 svc=$2 i hp so size=-
	shift 2
	so=$(awk '{ print $3 }' "$W/conf/$svc")
	[[ -f $so ]] && size=$(($(stat -c %s "$so") / 1024))
	: >"$W/cold"
	for ((i = 0; i < 40; i++)); do
		env "$@" "$PAMHOST" -c "$W/conf" -s "$svc" -u nobody -m nofork \
			-t 2>/dev/null | cut -d, -f3 >>"$W/cold"
	done
	env "$@" "$PAMHOST" -c "$W/conf" -s "$svc" -u nobody -m nofork \
		-n 200 -t 2>/dev/null | cut -d, -f2 >"$W/warm"
	env "$@" "$PAMHOST" -c "$W/conf" -s "$svc" -u nobody -- /bin/sleep 1 \
		>/dev/null 2>&1 &
	hp=$!
	sleep 0.5
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$size" \
		"$(pct "$W/cold" 50)" "$(pct "$W/warm" 50)" \
		"$(field "/proc/$hp/smaps_rollup" Pss)" \
		"$(field "/proc/$hp/status" VmRSS)" \
		"$(field "/proc/$hp/status" Threads)"
	wait "$hp"
}

# build NAME DIR FLAGS...: build a variant and write its service file.
build() {
	local name=$1 dir=$2
	shift 2
	(cd "$W/$dir" && "$GO" build -buildmode=c-shared "$@" \
		-o "$W/$name.so" .)
	echo "session required $W/$name.so" >"$W/conf/$name"
}

echo "session required pam_permit.so" >"$W/conf/permit"
build default plain
build stripped plain -ldflags=-s\ -w
build trimpath plain -trimpath -ldflags=-s\ -w
build asmodule plain -trimpath \
	-ldflags=-extldflags\ -Wl,--version-script="$MAP"
build gcsections plain -trimpath \
	-ldflags=-s\ -w\ -extldflags=-Wl,--gc-sections,-O1
build imports imports -trimpath -ldflags=-s\ -w

echo "| variant | size KiB | cold us (p50) | open us (p50) | host PSS KiB | host RSS KiB | threads |"
echo "|---|---|---|---|---|---|---|"
measure "pam_permit (baseline)" permit
measure "go default" default
measure "-ldflags=-s -w" stripped
measure "-trimpath -ldflags=-s -w" trimpath
measure "-trimpath + version script (as pam_unshare.so)" asmodule
measure "-trimpath -s -w + -Wl,--gc-sections,-O1" gcsections
measure "default, GOMAXPROCS=1 in env" default GOMAXPROCS=1
measure "default, GODEBUG=madvdontneed=1 in env" default \
	GODEBUG=madvdontneed=1
measure "default, GOGC=off in env" default GOGC=off
measure "imports fmt os os/user strings time" imports
