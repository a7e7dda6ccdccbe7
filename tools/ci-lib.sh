# Sourced by tools/ci-fresh-root and tools/cross-test: what both need to
# build a Debian 12 root with mmdebstrap. The sourcing script sets $stage
# (the name CI prints) before it calls any of these.

# The one line CI shows when a stage cannot set itself up, then exit 1.
# A stage that cannot run must fail, never pass without having run.
setup_fail() {
	echo "$stage: cannot set up: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || setup_fail "needs root (mmdebstrap, chroot, mount, binfmt_misc)"
}

# Installs the host packages given that are missing, or fails the stage.
host_install() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "$stage: installing on the host: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
		>"${TMPDIR:-/tmp}/m2md-$stage-apt.log" 2>&1 ||
		setup_fail "apt-get install ${missing[*]} failed (log: ${TMPDIR:-/tmp}/m2md-$stage-apt.log)"
}

# Prints, one a line, the Debian 12 sources this host's apt uses (whatever
# mirror it is configured with) as sources.list entries for mmdebstrap:
# bookworm, and bookworm-updates and bookworm-security where the host has
# them. Fails the stage when the host has no bookworm source.
debian_sources() {
	local lines
	lines=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
		'Identifier: Packages' 2>/dev/null |
		awk '$3 == "main" && $2 ~ /^bookworm(-updates|-security)?$/ { print "deb " $1 " " $2 " main" }' |
		sort -u) || true
	grep -q ' bookworm main$' <<<"$lines" ||
		setup_fail "the host's apt has no Debian bookworm main source (apt-get update first?)"
	echo "$lines"
}

# mmdebstrap ARGS... with the host's Debian sources; its log goes to $1.
# Fails the stage, with the log's last lines, when it fails.
mmdebstrap_root() {
	local log=$1 srcs=()
	shift
	mapfile -t srcs < <(debian_sources)
	[ ${#srcs[@]} -gt 0 ] || exit 1
	if ! mmdebstrap --quiet "$@" "${srcs[@]}" >"$log" 2>&1; then
		tail -n 5 "$log" >&2
		setup_fail "mmdebstrap $* failed (log: $log)"
	fi
}
