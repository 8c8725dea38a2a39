#!/bin/sh
# Promise 1 on PostgreSQL, at random instants: ferry migrate killed with
# SIGKILL at a random moment of an upgrade (with a template snapshot, a
# logical snapshot, or in one transaction); the next boot finds the
# database exactly at the old or exactly at the new version.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
ROWS=${ROWS:-20000}  # a longer upgrade: more instants to land in
. "$(dirname "$0")/pg-crash-lib.sh"

# the logical variant's duration (no CREATEDB: a logical snapshot)
fresh_old logical
t0=$(date +%s.%N)
pgf "$TMP/cn" migrate
t1=$(date +%s.%N)
expect_status 0 "setup: reference upgrade with a logical snapshot"
secs_cn_logical=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
echo "# with a logical snapshot: $secs_cn_logical s"

# ---- random instants -----------------------------------------------------------------
# kill_at SET SECONDS VARIANT: one ferry migrate killed after SECONDS;
# checks old or new afterwards.  Counts in olds, news, bad.
olds=0 news=0 bad=0 i=0
kill_at() {
	i=$((i + 1))
	fresh_old "$3"
	"$FERRY" migrate --database-url "$PGURL" --migrations "$TMP/$1" \
		>"$TMP/rnd.out" 2>"$TMP/rnd.err" &
	pid=$!
	sleep "$2"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	krc=$?
	no_secret "killed ferry" "$TMP/rnd.out" "$TMP/rnd.err"
	recover_boot "$1"
	echo "# kill $i ($1, $3) after $2 s: ferry exit $krc, then $was (exit $rc)"
	case $was/$rc in
	old/0) olds=$((olds + 1)) ;;
	new/65) news=$((news + 1)) ;;
	*)
		bad=$((bad + 1))
		fail "random kill $i ($1, $3) after $2 s (ferry exit $krc): old or new" \
			"state $was, recovery exit $rc" "$(printf '%s' "$err" | tail -5)"
		;;
	esac
	if [ -n "$(invalid_indexes)" ]; then
		bad=$((bad + 1)); fail "random kill $i: no INVALID index after recovery" "$(invalid_indexes)"
	fi
	# now and then, the normal boot afterwards too
	if [ $((i % 6)) = 0 ]; then
		pgf "$TMP/$1" migrate
		if [ "$rc" != 0 ] || [ "$(classify "$1")" != new ]; then
			bad=$((bad + 1))
			fail "random kill $i: the next normal boot reaches the new version" "exit $rc" "$err"
		fi
	fi
}
rnd_delay() { # rnd_delay SECONDS: uniform in [0, 1.1 * SECONDS]
	_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	awk -v r="$_r" -v d="$1" 'BEGIN { printf "%.3f", r / 65535 * d * 1.1 }'
}
j=0
while [ $j -lt "$RANDOM_RUNS" ]; do
	j=$((j + 1))
	case $((j % 3)) in
	0) kill_at cn "$(rnd_delay "$secs_cn")" template ;;
	1) kill_at cn "$(rnd_delay "$secs_cn_logical")" logical ;;
	2) kill_at ct "$(rnd_delay "$secs_ct")" template ;;
	esac
done
echo "# random kills: $olds old, $news new, $bad bad"
is "$bad" 0 "$RANDOM_RUNS random kill -9 instants: always old or new ($olds old, $news new)"

secret_never_shown
done_testing
