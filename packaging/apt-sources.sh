# shellcheck shell=bash
# packaging/apt-sources.sh - sourced by shell scripts (bash) that need the
# Debian archive this machine installs from: packaging/deps-go.sh (for a
# backports source) and test/vm/run.sh (for the guest image). No host name
# is written anywhere else: the archive is always the one apt already uses.

# debian_mirror prints the Debian archive URI of this machine's apt
# sources, the only place the guest image's mirror comes from: the first
# enabled "deb" source of a release suite (one without -security, -updates
# or -backports) in /etc/apt/sources.list and sources.list.d/*.list
# (one-line format), then sources.list.d/*.sources (deb822). Prints
# nothing if there is none.
debian_mirror() {
	local f
	{
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -E 's/#.*//; s/\[[^]]*\]//' |
			awk '$1 == "deb" && $3 != "" && $3 !~ /-/ { print $2 }'
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk 'BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; uris = ""; suites = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^[ \t]*#/ || $i !~ /:/) continue
					key = tolower($i); sub(/[ \t]*:.*/, "", key)
					value = $i; sub(/^[^:]*:[ \t]*/, "", value)
					if (key == "types") types = value
					else if (key == "uris") uris = value
					else if (key == "suites") suites = value
					else if (key == "enabled") enabled = tolower(value)
				}
				if (enabled == "no" || (" " types " ") !~ /[ \t]deb[ \t]/) next
				n = split(suites, s, /[ \t]+/)
				for (j = 1; j <= n; j++)
					if (s[j] != "" && s[j] !~ /-/) { split(uris, u, /[ \t]+/); print u[1]; next }
			}' "$f"
		done
	} | grep -m1 -E '^(https?|file)://' || true
}
