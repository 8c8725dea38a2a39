#!/bin/sh
# bench/pid1.sh: the cost of ferry as a plain init (no database configured)
# against tini and dumb-init, each starting `true`; once as an ordinary
# child, once as PID 1 of a new PID namespace (what docker run gives it).
BENCH_NAME=pid1
. "$(dirname "$0")/lib.sh"

if ! command -v tini >/dev/null || ! command -v dumb-init >/dev/null; then
	skip pid1 "tini or dumb-init is not installed (apt-get install tini dumb-init)"
	skip pid1-ns "tini or dumb-init is not installed"
	exit 0
fi
TRUE=$(command -v true)
if [ "$QUICK" = 1 ]; then rounds=40; else rounds=400; fi

# cases PREFIX: the spec's cases, each command run under PREFIX
cases() {
	cat <<-EOF
	case true
	exec $1 $TRUE
	case tini
	exec $1 tini -- $TRUE
	case dumb-init
	exec $1 dumb-init $TRUE
	case ferry (build/ferry)
	exec $1 $FERRY run -- $TRUE
	EOF
	if [ -n "$FERRY_STATIC" ] && command -v tini-static >/dev/null; then
		cat <<-EOF
		case tini-static
		exec $1 tini-static -- $TRUE
		case ferry (static)
		exec $1 $FERRY_STATIC run -- $TRUE
		EOF
	fi
}

static_note="build/ferry is the dynamically linked development build (glibc, libpq,
libarchive, libcrypto...); the static musl binary (make static) is what
images ship."
if [ -z "$FERRY_STATIC" ]; then
	static_note="$static_note The static binary was not timed in this run (absent, or older
than src/: run make static first)."
fi

say "init overhead, $rounds rounds"
ab pid1 <<EOF
title PID-1 overhead
rounds $rounds
warmup 10
maxtime 120
ref tini
base true
$(cases "")
note $(echo "$static_note" | tr '\n' ' ')
EOF

if unshare --pid --fork "$TRUE" 2>/dev/null; then
	say "init overhead as PID 1 of a new PID namespace"
	ab pid1-ns <<-EOF
	title PID-1 overhead, as PID 1 of a new PID namespace
	rounds $((rounds / 2))
	warmup 5
	maxtime 120
	ref tini
	base true
	$(cases "unshare --pid --fork")
	EOF
else
	skip pid1-ns "unshare --pid does not work here (needs root or user namespaces)"
fi
