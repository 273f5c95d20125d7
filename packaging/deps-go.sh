#!/bin/bash
# packaging/deps-go.sh - make sure GO can build this tree; on Debian 12 and
# 13, install Go from Debian's own packages if it cannot. Run by `make deps`
# (root).
#
# Usage: packaging/deps-go.sh GO
#
# A Go of 1.21 or later that runs with GOTOOLCHAIN=auto (Debian's default)
# fetches the toolchain go.mod's `toolchain` line names from the Go module
# proxy the first time it builds here, checks it against the checksum
# database, and runs it. So a packaged Go that is older than go.mod's `go`
# line is enough:
#   - Debian 13 (trixie): golang-go (1.24), from the release itself;
#   - Debian 12 (bookworm): golang-go from bookworm-backports (1.23;
#     bookworm's own 1.19 predates toolchain switching). Without a
#     backports source in apt's sources, one is added for the archive apt
#     already uses (packaging/apt-sources.sh), in
#     /etc/apt/sources.list.d/bookworm-backports.list. Backports packages
#     are installed only when asked for by name, so nothing else changes.
# A Go already on PATH that can build the tree (/usr/local/go/bin/go from
# go.dev, for example) is used as it is, and nothing is installed.
#
# Prints the Go version that builds the tree. Exit status 1 when none can.
set -euo pipefail

go=${1:-go}
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=packaging/apt-sources.sh
. "$top/packaging/apt-sources.sh"

log() { printf 'deps-go: %s\n' "$*" >&2; }

# The release go.mod's `go` line asks for, e.g. 1.26.0.
need=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$top/go.mod")

# builds_here: GO, run in the tree (so that it switches to go.mod's
# toolchain when it can), reports a version of at least $need. Prints it.
builds_here() {
	local have
	command -v "$go" >/dev/null || return 1
	# A Go too old to switch reports its own version; one that can switch
	# downloads the toolchain here, once, and reports that.
	have=$(cd "$top" && "$go" env GOVERSION 2>/dev/null) || return 1
	have=${have#go}
	[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" = "$need" ] || return 1
	echo "go$have"
}

if have=$(builds_here); then
	log "$have ($(command -v "$go")) builds this tree"
	exit 0
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case $codename in
trixie) target=() ;;
bookworm)
	target=(-t bookworm-backports)
	if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		mirror=$(debian_mirror)
		if [ -z "$mirror" ]; then
			log "no Debian archive in apt's sources to take bookworm-backports from"
			exit 1
		fi
		log "adding bookworm-backports from $mirror (/etc/apt/sources.list.d/bookworm-backports.list)"
		printf 'deb %s bookworm-backports main\n' "$mirror" >/etc/apt/sources.list.d/bookworm-backports.list
	fi
	apt-get update -qq
	;;
*)
	log "Go $need or newer is needed on PATH (go.mod), or on Debian 12 or 13 a packaged Go of 1.21 or later; this is ${codename:-an unknown release}: install Go from go.dev/dl and put it on PATH"
	exit 1
	;;
esac

log "installing golang-go ${target[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	"${target[@]}" golang-go ca-certificates >/dev/null
# Debian's golang-go puts go in /usr/bin.
go=go
if have=$(builds_here); then
	log "$have ($(command -v go), which fetched go.mod's toolchain) builds this tree"
	exit 0
fi
log "the packaged $(GOTOOLCHAIN=local go version) cannot build this tree: it needs GOTOOLCHAIN=auto (go env GOTOOLCHAIN) and the Go module proxy (go env GOPROXY) to fetch go.mod's toolchain; go said:"
(cd "$top" && go env GOVERSION) >&2 || true
exit 1
