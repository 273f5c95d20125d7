# shellcheck shell=bash
# stage.sh - sourced by run-tests.sh and bench/bench.sh: install the Go
# library of a build where that build's pam_unshare.so loads it from, in
# the caller's private mount namespace only.
#
# The front module pam_unshare.so loads the Go library from one fixed path
# built into it (GO_MODULE in the Makefile, e.g.
# /usr/libexec/pam_unshare/pam_unshare_go.so), so tests and benchmarks load
# it exactly as an installed system does: from that path, through the
# front module's trust check.

# go_module_path BUILD: the Go library path built into BUILD/pam_unshare.so.
go_module_path() {
	grep -ao '/[[:alnum:]_./-]*/pam_unshare_go\.so' "$1/pam_unshare.so" | head -n 1
}

# stage_go_module BUILD WORKDIR: put BUILD/pam_unshare_go.so at
# go_module_path, root-owned, mode 0644. The nearest existing directory
# above that path gets a writable overlay whose upper layer lives in
# WORKDIR; what that directory holds on the machine stays visible and is
# never written. Must run in a private mount namespace, as root. Prints
# the staged path.
stage_go_module() {
	local build=$1 work=$2 path dir base
	path=$(go_module_path "$build")
	[ -n "$path" ] || { echo "stage: no Go library path in $build/pam_unshare.so" >&2; return 1; }
	dir=${path%/*}
	base=$dir
	while [ ! -d "$base" ]; do base=${base%/*}; done
	mkdir -p "$work/upper" "$work/work"
	chmod 0755 "$work/upper"
	mount -t overlay pam_unshare_stage \
		-o "lowerdir=$base,upperdir=$work/upper,workdir=$work/work" "$base" || return 1
	mkdir -p "$dir" && chmod 0755 "$dir"
	install -o root -g root -m 0644 "$build/pam_unshare_go.so" "$path" || return 1
	# Written back now: until then its pages count as dirty in smaps, as
	# private memory of every process that maps it, which an installed
	# library's are not.
	sync "$path"
	echo "$path"
}
