#!/bin/sh
# tests/soak/soak.sh: the crash soak, `make soak`. Promise 1 (a kill -9 at
# any instant leaves the old version with the old data or the new version
# with the migrated data) and promise 6 (no write another process saw
# committed is discarded) checked over many trials, with another process
# writing to the database all along.
#
# Each SQLite trial: a ~100 MB WAL database at version 1 (cached, copied per
# trial); writer.py committing rows to a table no migration touches; ferry
# migrate to version 3, killed with SIGKILL at a random instant, or, in the
# "fail" trials, left to fail and restore its snapshot; the writer stopped;
# ferry migrate again (the recovery boot: pinned to version 1, or finishing
# the upgrade); then from outside, the ledger, the schema and a checksum of
# every migrated table against the references, every row id the writer
# logged as committed, and PRAGMA integrity_check. Then SOAK_PG_TRIALS
# trials of the same against a PostgreSQL server it starts (pg-soak.sh).
#
# At the instant of a kill the writer is frozen (SIGSTOP), and killed after
# ferry: every row it logged was committed while ferry still ran. Rows
# committed after ferry died are beyond what ferry can hold off; the soak
# makes none. In the fail trials the writer runs on for 0.2 s after ferry
# exits: rows committed after the restore must stay too.
#
# The violations, each counted once per trial: wrong-version (the ledger is
# neither the old nor the new one, or the trial may not end there: a failed
# upgrade that ends new), data-mismatch (the ledger of one version, but the
# schema or a table of neither), lost-rows, integrity (integrity_check;
# INVALID indexes on PostgreSQL), recovery (an unexpected exit status, the
# journal left), leftovers (temp files or databases), hang (a run of ferry
# longer than SOAK_HANG_SECONDS, default 20, is killed and counted).
#
#   FERRY=build/ferry sh tests/soak/soak.sh
#   SOAK_TRIALS=500        SQLite trials (default 500)
#   SOAK_PG_TRIALS=N       PostgreSQL trials (default SOAK_TRIALS / 10; 0: none)
#   SOAK_SEED_MB=100       size of the database
#   SOAK_CACHE=DIR         where the base database is kept between runs
#                          (default $TMPDIR/ferry-soak-cache)
#   SOAK_TMPDIR=DIR        where the trials run (default $TMPDIR or /tmp)
#   SOAK_KEEP_FAILED=3     how many failed trials' files to keep
#   SOAK_HANG_SECONDS=20   a run of ferry that long is a hang
#   SOAK_PG_ROWS=20000     rows of the PostgreSQL database
#   SOAK_WRITER_PAUSE=0.002  seconds the SQLite writer waits between rows
#
# One line per trial, then the counts; exit 1 when any trial broke a promise.
set -u
SOAK_DIR=$(cd "$(dirname "$0")" && pwd)
. "$SOAK_DIR/soak-lib.sh"

if [ -z "${FERRY:-}" ] || [ ! -x "$FERRY" ]; then
	echo "soak: FERRY=path/to/ferry is required" >&2
	exit 64
fi
for _c in python3 sqlite3 od awk pgrep; do
	command -v "$_c" >/dev/null || { echo "soak: $_c is required" >&2; exit 69; }
done
TRIALS=${SOAK_TRIALS:-500}
PG_TRIALS=${SOAK_PG_TRIALS:-$((TRIALS / 10))}
SEED_MB=${SOAK_SEED_MB:-100}
KEEP_FAILED=${SOAK_KEEP_FAILED:-3}
TMPBASE=${SOAK_TMPDIR:-${TMPDIR:-/tmp}}
CACHE=${SOAK_CACHE:-$TMPBASE/ferry-soak-cache}

WORK=$(mktemp -d "$TMPBASE/ferry-soak.XXXXXX") || exit 73
export SOAK_COUNTS="$WORK/counts"
: >"$SOAK_COUNTS"
cleanup() {
	[ -n "${wpid:-}" ] && signal_tree KILL "$wpid"
	[ -n "${fpid:-}" ] && kill -KILL "$fpid" 2>/dev/null
	if ls "$WORK"/failed-* >/dev/null 2>&1; then
		find "$WORK" -mindepth 1 -maxdepth 1 ! -name 'failed-*' -exec rm -rf {} +
		echo "soak: the failed trials' files are in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The binary under test is copied once: others rebuild build/ meanwhile.
cp "$FERRY" "$WORK/ferry" || exit 73
FERRY=$WORK/ferry
export FERRY
export FERRY_CONFIG="$WORK/none.ini" # never read the host's /etc/ferry
: >"$FERRY_CONFIG"
unset DATABASE_URL FERRY_MIGRATIONS_DIR FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS \
	FERRY_MIGRATIONS_AUTO_UPGRADE FERRY_MIGRATIONS_TARGET_VERSION \
	FERRY_SNAPSHOT_DIR FERRY_SNAPSHOT_KEEP FERRY_DATABASE_STATE_DIR \
	FERRY_TEST_CRASH_AT FERRY_DATABASE_URL FERRY_LOG_LEVEL FERRY_LOG_FORMAT
export FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60

# ---- the migrations ---------------------------------------------------------------
# good: 0001 (items, blobs, the writer's table), 0002 rebuilds items, 0003
# changes items and some blobs, adds an index and a table. bad: the same
# with a 0003 that fails at its last statement, after all its work.
GOOD=$WORK/good BAD=$WORK/bad M1=$WORK/m1
mkdir -p "$GOOD" "$BAD" "$M1"
cat >"$M1/0001_base.sql" <<'EOF'
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL,
    note TEXT NOT NULL);
CREATE TABLE blobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE writes (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, at REAL NOT NULL);
EOF
cat >"$GOOD/0002_rebuild_items.sql" <<'EOF'
CREATE TABLE items_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL,
    note TEXT NOT NULL, total INTEGER NOT NULL);
INSERT INTO items_new (id, name, qty, note, total)
    SELECT id, upper(name), qty, note, qty * 3 FROM items;
DROP TABLE items;
ALTER TABLE items_new RENAME TO items;
CREATE INDEX items_name ON items(name);
EOF
cat >"$GOOD/0003_summary.sql" <<'EOF'
UPDATE items SET qty = qty + 1, note = note || '/v3' WHERE id % 2 = 0;
CREATE INDEX items_qty ON items(qty, total);
CREATE TABLE summary AS SELECT qty, count(*) AS n, sum(total) AS t FROM items
    GROUP BY qty ORDER BY qty;
UPDATE blobs SET kind = 'v3:' || kind WHERE id % 20 = 0;
EOF
cp "$M1/0001_base.sql" "$GOOD/"
cp "$M1/0001_base.sql" "$GOOD/0002_rebuild_items.sql" "$BAD/"
{
	cat "$GOOD/0003_summary.sql"
	echo "INSERT INTO items (id, name, qty, note, total) VALUES (1, 'duplicate key', 0, '', 0);"
} >"$BAD/0003_summary_fails.sql"

# ---- the base database, cached -------------------------------------------------------
# Version 1 made by ferry, filled with ~SEED_MB: 95% blobs of 20 KB, the
# rest items; WAL mode, checkpointed. The cache key covers what makes it,
# not the binary: a newer ferry must take an older ferry's database as it is.
key=$( (cat "$M1/0001_base.sql"; echo "$SEED_MB v1"; sqlite3 --version) | sha256sum | cut -c1-16)
BASE=$CACHE/base-$key.db
if [ ! -f "$BASE" ]; then
	echo "soak: making the ${SEED_MB} MB base database (cached in $CACHE)"
	mkdir -p "$CACHE" || exit 73
	mk=$WORK/mkbase
	mkdir -p "$mk"
	"$FERRY" migrate --database-url "sqlite://$mk/app.db" --migrations "$M1" 2>"$mk/err" ||
		{ echo "soak: ferry cannot create version 1: $(cat "$mk/err")" >&2; exit 70; }
	nblobs=$((SEED_MB * 1024 * 1024 * 95 / 100 / 20480))
	nitems=$((SEED_MB * 1000))
	sqlite3 "$mk/app.db" >/dev/null <<-EOF || exit 70
	PRAGMA journal_mode = WAL;
	BEGIN;
	WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $nitems)
	    INSERT INTO items SELECT x, 'item ' || x || ' ' || hex(randomblob(8)), x % 97,
	        'note ' || hex(randomblob(24)) FROM c;
	WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $nblobs)
	    INSERT INTO blobs SELECT x, 'kind' || (x % 7), randomblob(20000) FROM c;
	COMMIT;
	PRAGMA wal_checkpoint(TRUNCATE);
	EOF
	[ ! -s "$mk/app.db-wal" ] || { echo "soak: the base database was not checkpointed" >&2; exit 70; }
	cp "$mk/app.db" "$BASE.tmp.$$" && mv "$BASE.tmp.$$" "$BASE" || exit 73
	rm -rf "$mk"
fi

# ---- the references ---------------------------------------------------------------
# old: the base; new: the base upgraded by ferry with nobody else writing.
python3 -I -S "$SOAK_DIR/check.py" fingerprint "$BASE" >"$WORK/fp-old" || exit 70
ref=$WORK/ref
mkdir -p "$ref"
cp --reflink=auto "$BASE" "$ref/app.db"
"$FERRY" migrate --database-url "sqlite://$ref/app.db" --migrations "$GOOD" 2>"$ref/err" ||
	{ echo "soak: the reference upgrade failed: $(cat "$ref/err")" >&2; exit 70; }
python3 -I -S "$SOAK_DIR/check.py" fingerprint "$ref/app.db" >"$WORK/fp-new" || exit 70
[ "$(sqlite3 "$ref/app.db" 'SELECT group_concat(version) FROM ferry_migrations')" = 1,2,3 ] ||
	{ echo "soak: the reference is not at version 3" >&2; exit 70; }
cmp -s "$WORK/fp-old" "$WORK/fp-new" && { echo "soak: old and new references agree" >&2; exit 70; }
rm -rf "$ref"

# ---- the trials ---------------------------------------------------------------
T=$WORK/trial
# start_ferry NAME ARGS...: ferry ARGS on $T/app.db in the background, its
# output in $T/NAME.out and .err; its pid in $fpid
start_ferry() {
	_name=$1
	shift
	"$FERRY" --database-url "sqlite://$T/app.db" "$@" >"$T/$_name.out" 2>"$T/$_name.err" &
	fpid=$!
}
# fresh_trial: $T holds a copy of the base database, nothing else
fresh_trial() {
	rm -rf "$T"
	mkdir -p "$T"
	cp --reflink=auto "$BASE" "$T/app.db"
}

# The expected run times, measured once with the writer running.
calibrate() { # calibrate SET: prints the seconds and the exit status
	fresh_trial
	writer_start "$T/writer.log" sqlite "$T/app.db" "$T/writer.log" reconnect || return 1
	_t0=$(now)
	start_ferry ferry migrate --migrations "$1"
	wait_ferry
	_s=$(elapsed "$_t0")
	writer_stop
	echo "$_s $frc"
}
# shellcheck disable=SC2046
set -- $(calibrate "$GOOD")
[ "${2:-}" = 0 ] || { echo "soak: the timed upgrade failed: $(cat "$T/ferry.err")" >&2; exit 70; }
SECS_GOOD=$1
# shellcheck disable=SC2046
set -- $(calibrate "$BAD")
[ "${2:-}" = 70 ] || { echo "soak: the failing set did not fail with 70: $(cat "$T/ferry.err")" >&2; exit 70; }
SECS_BAD=$1
echo "soak: sqlite, $(du -m "$BASE" | cut -f1) MB database; the upgrade takes $SECS_GOOD s," \
	"the failing one $SECS_BAD s (writer running); $TRIALS trials"

kept=0 not_wal=0
# sqlite_trial N KIND WRITER-MODE RECOVERY: one trial; KIND kill-good
# (the good set, killed), kill-bad (the failing set, killed: also during
# its restore) or fail (the failing set, not killed); RECOVERY pin (the
# boot after is pinned to version 1: it resolves the journal and reports
# old or new) or finish (the boot after has the good set: ends new).
sqlite_trial() {
	n=$1 kind=$2 wmode=$3 recovery=$4
	t_start=$(now)
	bad=
	fresh_trial
	if ! writer_start "$T/writer.log" sqlite "$T/app.db" "$T/writer.log" "$wmode"; then
		tally_trial - recovery
		trial_line sqlite "$n" "$kind" "VIOLATION recovery: the writer did not start"
		return
	fi
	upgrade_or_kill
	how=$(snapshot_how "$T/ferry.err")
	what="$what${how:+ ($how)}"
	wstats=$(writer_stats "$T/writer.log")

	case $kind/$frc in
	kill-good/137 | kill-good/0 | kill-bad/137 | kill-bad/70 | fail/70) ;;
	*) [ -n "$hung" ] || bad="$bad recovery" ;;
	esac
	if [ "$recovery" = pin ]; then
		FERRY_MIGRATIONS_TARGET_VERSION=1 start_ferry recovery migrate --migrations "$GOOD"
	else
		start_ferry recovery migrate --migrations "$GOOD"
	fi
	wait_ferry
	rrc=$frc
	[ -n "$hung" ] && bad="$bad hang"
	what="$what, $wmode writer, recovery $recovery $rrc"
	[ -e "$T/.ferry/journal" ] && bad="$bad recovery"
	# no temp file left behind either (t2200's no_leftovers)
	left=$(cd "$T" && find . -mindepth 1 | sed 's|^\./||' | grep -Ev \
		'^(app\.db(-wal|-shm)?|app\.db\.pre-upgrade(\.[0-9]+)?|\.ferry|\.ferry/lock|\.ferry/journal|(ferry|recovery)\.(out|err)|writer\.log.*)$' |
		tr '\n' ' ')
	[ -n "$left" ] && bad="$bad leftovers"

	res=$(python3 -I -S "$SOAK_DIR/check.py" verify "$T/app.db" "$WORK/fp-old" "$WORK/fp-new" \
		"$T/writer.log" 2>&1)
	state=$(printf '%s\n' "$res" | sed -n 's/^state=\([^ ]*\).*/\1/p')
	lost=$(printf '%s\n' "$res" | sed -n 's/.* lost=\([0-9]*\).*/\1/p')
	logged=$(printf '%s\n' "$res" | sed -n 's/.* logged=\([0-9]*\).*/\1/p')
	detail=$(printf '%s\n' "$res" | sed -n 's/.* detail=//p')
	[ -n "$left" ] && detail="$detail${detail:+ | }left behind: $left"
	jmode=$(printf '%s\n' "$res" | sed -n 's/.* journal_mode=\([^ ]*\).*/\1/p')
	case $res in *integrity=ok*) ;; *) bad="$bad integrity" ;; esac
	case $state in
	old | new) ;;
	data-mismatch) bad="$bad data-mismatch" ;;
	*) bad="$bad wrong-version" state=${state:-unreadable} ;;
	esac
	# what each kind of trial may end at, and the recovery's status there
	case $kind/$recovery/$state in
	kill-good/pin/old | kill-bad/pin/old | fail/pin/old) [ "$rrc" = 0 ] || bad="$bad recovery" ;;
	kill-good/pin/new) [ "$rrc" = 65 ] || bad="$bad recovery" ;;
	*/finish/new) [ "$rrc" = 0 ] || bad="$bad recovery" ;;
	*/finish/old) bad="$bad recovery" ;;
	*/old | */new) bad="$bad wrong-version" ;;
	esac
	[ "${lost:-1}" = 0 ] || bad="$bad lost-rows"
	# shellcheck disable=SC2086
	bad=$(printf '%s\n' $bad | sort -u | tr '\n' ' ' | sed 's/ $//')

	result="$state, writer ${logged:-?} rows, ${lost:-?} lost ($(elapsed "$t_start") s)"
	# not a violation (no data depends on it), but the app may: say it
	if [ -n "$jmode" ] && [ "$jmode" != wal ]; then
		result="$result, journal_mode $jmode"
		not_wal=$((not_wal + 1))
	fi
	if [ -n "$bad" ]; then
		# shellcheck disable=SC2086
		tally_trial "$state" $bad
		trial_line sqlite "$n" "$what" "$result  VIOLATION: $bad"
		echo "       | ${detail:-$res}"
		echo "       | writer: ${wstats:-killed}"
		echo "       | ferry: $(tail -1 "$T/ferry.err")"
		echo "       | recovery: $(tail -1 "$T/recovery.err")"
		if [ "$kept" -lt "$KEEP_FAILED" ]; then
			kept=$((kept + 1))
			mv "$T" "$WORK/failed-sqlite-$n"
		fi
	else
		tally_trial "$state"
		trial_line sqlite "$n" "$what" "$result"
	fi
}

tally_init sqlite
i=0
while [ "$i" -lt "$TRIALS" ]; do
	i=$((i + 1))
	case $(rnd 10) in
	0 | 1 | 2 | 3) kind=kill-good ;;
	4 | 5 | 6) kind=kill-bad ;;
	*) kind=fail ;;
	esac
	case $(rnd 2) in 0) wmode=persistent ;; *) wmode=reconnect ;; esac
	case $(rnd 3) in 0) recovery=finish ;; *) recovery=pin ;; esac
	sqlite_trial "$i" "$kind" "$wmode" "$recovery"
done
rm -rf "$T"
tally_write
[ "$not_wal" = 0 ] ||
	echo "soak: sqlite: $not_wal trials ended with the database out of WAL mode (not counted as a violation)"

# ---- PostgreSQL ------------------------------------------------------------------
if [ "$PG_TRIALS" -gt 0 ]; then
	SOAK_PG_TRIALS=$PG_TRIALS SOAK_KEEP_FAILED=$KEEP_FAILED SOAK_WORK=$WORK \
		sh "$SOAK_DIR/pg-soak.sh"
fi

# ---- the counts ------------------------------------------------------------------
echo
awk -v kinds="$KINDS" '
BEGIN {
	nk = split(kinds, k, " ")
	printf "%-9s %6s %9s %9s  violations:", "", "trials", "ended-old", "ended-new"
	for (i = 1; i <= nk; i++) printf " %s", k[i]
	print ""
}
function row(name, v,    i) {
	printf "%-9s %6d %9d %9d %13s", name, v[2], v[3], v[4], ""
	for (i = 1; i <= nk; i++) printf " %" length(k[i]) "d", v[5 + i]
	print ""
}
{
	for (i = 2; i <= 5 + nk; i++) { v[i] = $i; tot[i] += $i }
	row($1, v)
}
END {
	if (NR > 1) row("total", tot)
	printf "%d trials, %d ended old, %d ended new, %d with a violation\n", tot[2], tot[3], tot[4], tot[5]
}' "$SOAK_COUNTS"
status=0
awk '$5 > 0 { bad = 1 } END { exit !bad }' "$SOAK_COUNTS" && status=1
if [ "$PG_TRIALS" -gt 0 ] && ! grep -q '^postgres ' "$SOAK_COUNTS"; then
	echo "soak: the PostgreSQL trials did not run (see above)"
	status=1
fi
if [ $status = 0 ]; then
	echo "soak: no violation"
else
	echo "soak: VIOLATIONS (see the lines marked VIOLATION)"
fi
exit $status
