#!/bin/sh
# tests/soak/pg-soak.sh: the PostgreSQL half of the crash soak, run by
# soak.sh (FERRY, SOAK_COUNTS, SOAK_PG_TRIALS in the environment). It starts
# its own server the way the t3* tests do (tests/pg-lib.sh).
#
# Each trial: appdb at version 1 with SOAK_PG_ROWS rows (from a template);
# writer.py running psql once per row (each INSERT its own autocommit
# transaction; the id logged once psql returned success), now busy, now
# sparse, so that ferry's snapshot is sometimes logical (sessions are
# connected) and sometimes a template copy; ferry migrate to version 4,
# with a no-transaction step (CREATE INDEX CONCURRENTLY, so a snapshot is
# taken), killed at a random instant or left to fail and restore; then the
# recovery boot, and the same checks as for SQLite: ledger, schema
# (pg_dump), a checksum of every migrated table and of the sequences, every
# logged writer row, no INVALID index, no journal table left.
set -u
SOAK_DIR=$(cd "$(dirname "$0")" && pwd)
. "$SOAK_DIR/../lib.sh"
. "$SOAK_DIR/../pg-lib.sh"
. "$SOAK_DIR/soak-lib.sh"

TRIALS=${SOAK_PG_TRIALS:-50}
ROWS=${SOAK_PG_ROWS:-20000}
KEEP_FAILED=${SOAK_KEEP_FAILED:-3}
WORK=${SOAK_WORK:-$TMP}
export FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60
CHECK="python3 -I -S $SOAK_DIR/check.py"

# ---- the migrations ---------------------------------------------------------------
# good: 0001 (items, the writer's table), 0002 rewrites items in a
# transaction, 0003 (no transaction) builds two indexes concurrently with
# an UPDATE between, 0004 adds a table and a view. bad: the same with a
# 0004 that fails at its last statement.
P1=$TMP/pg1 GOOD=$TMP/pggood BAD=$TMP/pgbad
mkdir -p "$P1" "$GOOD" "$BAD"
cat >"$P1/0001_base.sql" <<'EOF'
CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, qty integer NOT NULL,
    note text NOT NULL);
CREATE TABLE writes (id bigint PRIMARY KEY, writer text NOT NULL, at timestamptz NOT NULL);
EOF
cat >"$GOOD/0002_total.sql" <<'EOF'
ALTER TABLE items ADD COLUMN total integer;
UPDATE items SET total = qty * 3, name = upper(name);
ALTER TABLE items ALTER COLUMN total SET NOT NULL;
EOF
cat >"$GOOD/0003_indexes.sql" <<'EOF'
-- ferry:no-transaction
CREATE INDEX CONCURRENTLY items_qty ON items (qty);
UPDATE items SET qty = qty + 1, note = note || '/v3' WHERE id % 2 = 0;
CREATE INDEX CONCURRENTLY items_total ON items (total);
EOF
cat >"$GOOD/0004_summary.sql" <<'EOF'
CREATE TABLE summary AS SELECT qty, count(*) AS n, sum(total) AS t FROM items GROUP BY qty;
CREATE VIEW big_items AS SELECT id, name FROM items WHERE qty > 50;
EOF
cp "$P1/0001_base.sql" "$GOOD/"
cp "$P1/0001_base.sql" "$GOOD/0002_total.sql" "$GOOD/0003_indexes.sql" "$BAD/"
cat >"$BAD/0004_summary_fails.sql" <<'EOF'
UPDATE items SET qty = qty + 100, name = name || '/v4';
CREATE TABLE summary AS SELECT qty, count(*) AS n FROM items GROUP BY qty;
DELETE FROM items WHERE id % 3 = 0;
INSERT INTO items (id, name, qty, note, total) VALUES (1, 'duplicate key', 0, '', 0);
EOF

# ---- fingerprints -------------------------------------------------------------------
# pg_fp DB: the lines check.py compares: the ledger, the schema as pg_dump
# prints it (less ferry's journal table, checked on its own), each table
# but the writer's and the ledger, the sequences' values.
pg_fp() {
	echo "ledger $(psql_su "$1" "SELECT md5(coalesce(string_agg(concat_ws(' ', version, name,
		sha256, dirty), E'\n' ORDER BY version), '')) FROM ferry_migrations" 2>&1 | tr -d ' \n')"
	echo "schema $("$PGBIN/pg_dump" -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres --no-owner \
		--schema-only --exclude-table=ferry_journal -d "$1" 2>&1 |
		grep -Ev '^\\(un)?restrict ' | md5sum | cut -d' ' -f1)"
	for _t in $(psql_su "$1" "SELECT tablename FROM pg_tables WHERE schemaname = 'public'
		AND tablename NOT IN ('writes', 'ferry_migrations', 'ferry_journal') ORDER BY 1"); do
		echo "table $_t $(psql_su "$1" "SELECT md5(coalesce(string_agg(t::text, E'\n'
			ORDER BY t::text), '')) FROM public.\"$_t\" t")"
	done
	echo "sequences $(psql_su "$1" "SELECT md5(coalesce(string_agg(concat_ws(' ', sequencename,
		last_value), E'\n' ORDER BY sequencename), '')) FROM pg_sequences
		WHERE schemaname = 'public'")"
}

# ---- the references ---------------------------------------------------------------
pg_fresh_appdb
"$FERRY" migrate --database-url "$PGURL" --migrations "$P1" >/dev/null 2>"$TMP/setup.err" ||
	{ echo "soak: postgres: version 1 failed: $(cat "$TMP/setup.err")" >&2; exit 70; }
psql_as app appdb "INSERT INTO items (name, qty, note) SELECT 'item ' || x || ' ' || md5(x::text),
	x % 97, 'note ' || md5((x * 7)::text) FROM generate_series(1, $ROWS) x" >/dev/null || exit 70
pg_save_as ref_old
pg_fp ref_old >"$TMP/fp-old"
pg_fresh_appdb ref_old
"$FERRY" migrate --database-url "$PGURL" --migrations "$GOOD" >/dev/null 2>"$TMP/setup.err" ||
	{ echo "soak: postgres: the reference upgrade failed: $(cat "$TMP/setup.err")" >&2; exit 70; }
drop_snapshots
pg_save_as ref_new
pg_fp ref_new >"$TMP/fp-new"
[ "$(ledger_versions ref_new)" = "1 2 3 4" ] ||
	{ echo "soak: postgres: the reference is not at version 4" >&2; exit 70; }
cmp -s "$TMP/fp-old" "$TMP/fp-new" && { echo "soak: postgres: old and new agree" >&2; exit 70; }

# ---- the trials ---------------------------------------------------------------
T=$TMP/trial
start_ferry() { # start_ferry NAME ARGS...: like soak.sh's, against appdb
	_name=$1
	shift
	"$FERRY" --database-url "$PGURL" "$@" >"$T/$_name.out" 2>"$T/$_name.err" &
	fpid=$!
}
fresh_trial() {
	rm -rf "$T"
	mkdir -p "$T"
	pg_fresh_appdb ref_old
}
PSQL_APP="$PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h $PG_SOCKDIR -p $PGPORT -U app -d appdb"
calibrate() { # calibrate SET: prints the seconds and the exit status
	fresh_trial
	# shellcheck disable=SC2086
	writer_start "$T/writer.log" psql "$T/writer.log" $PSQL_APP || return 1
	_t0=$(now)
	start_ferry ferry migrate --migrations "$1"
	wait_ferry
	_s=$(elapsed "$_t0")
	writer_stop
	echo "$_s $frc"
}
# shellcheck disable=SC2046
set -- $(calibrate "$GOOD")
[ "${2:-}" = 0 ] || { echo "soak: postgres: the timed upgrade failed: $(cat "$T/ferry.err")" >&2; exit 70; }
SECS_GOOD=$1
# shellcheck disable=SC2046
set -- $(calibrate "$BAD")
[ "${2:-}" = 70 ] || { echo "soak: postgres: the failing set did not fail with 70: $(cat "$T/ferry.err")" >&2; exit 70; }
SECS_BAD=$1
echo "soak: postgres $("$PGBIN/postgres" --version | sed 's/^[^0-9]*\([0-9.]*\).*/\1/'), $ROWS rows; the upgrade" \
	"takes $SECS_GOOD s, the failing one $SECS_BAD s (writer running); $TRIALS trials"

kept=0
# pg_trial N KIND PACE RECOVERY: as sqlite_trial in soak.sh; PACE busy
# (a session is nearly always connected) or sparse (0.15 s between rows)
pg_trial() {
	n=$1 kind=$2 pace=$3 recovery=$4
	t_start=$(now)
	bad=
	fresh_trial
	case $pace in busy) pause=0.002 ;; *) pause=0.15 ;; esac
	# shellcheck disable=SC2086
	if ! SOAK_WRITER_PAUSE=$pause writer_start "$T/writer.log" psql "$T/writer.log" $PSQL_APP; then
		tally_trial - recovery
		trial_line postgres "$n" "$kind" "VIOLATION recovery: the writer did not start"
		return
	fi
	upgrade_or_kill
	case $(grep 'snapshot written' "$T/ferry.err") in
	*'template database'*) how=template ;;
	*logical*) how=logical ;;
	*) how= ;;
	esac
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
	what="$what, $pace writer, recovery $recovery $rrc"
	# no journal (a table in appdb, or a file), no temp file or database left
	[ -n "$(ferry_tables)" ] && bad="$bad recovery"
	[ -e "$FERRY_DATABASE_STATE_DIR/journal" ] && bad="$bad recovery"
	left=$(
		db_list | tr ' ' '\n' | grep -Ev '^(appdb|appdb_pre_upgrade|ref_old|ref_new)$'
		cd "$FERRY_SNAPSHOT_DIR" && find . -mindepth 1 | sed 's|^\./||' |
			grep -Ev '^appdb\.pre-upgrade(\.[0-9]+)?$'
		cd "$FERRY_DATABASE_STATE_DIR" && find . -mindepth 1 | sed 's|^\./|state/|' |
			grep -Ev '^state/(lock|journal)$'
	)
	left=$(echo $left)
	[ -n "$left" ] && bad="$bad leftovers"

	pg_fp appdb >"$T/fp"
	res=$($CHECK compare "$T/fp" "$TMP/fp-old" "$TMP/fp-new" 2>&1)
	state=$(printf '%s\n' "$res" | sed -n 's/^state=\([^ ]*\).*/\1/p')
	detail=$(printf '%s\n' "$res" | sed -n 's/.* detail=//p')
	[ "$state" = wrong-version ] && detail="$detail: ledger versions $(ledger_versions)"
	psql_su appdb "SELECT id FROM writes" >"$T/present" 2>&1
	res2=$($CHECK lost "$T/writer.log" "$T/present" 2>&1)
	lost=$(printf '%s\n' "$res2" | sed -n 's/^lost=\([0-9]*\).*/\1/p')
	logged=$(printf '%s\n' "$res2" | sed -n 's/.* logged=\([0-9]*\).*/\1/p')
	d2=$(printf '%s\n' "$res2" | sed -n 's/.* detail=//p')
	detail="$detail${detail:+${d2:+ | }}$d2"
	[ -n "$left" ] && detail="$detail${detail:+ | }left behind: $left"
	invalid=$(invalid_indexes)
	if [ -n "$invalid" ]; then
		bad="$bad integrity" detail="$detail${detail:+ | }INVALID indexes: $invalid"
	fi
	case $state in
	old | new) ;;
	data-mismatch) bad="$bad data-mismatch" ;;
	*) bad="$bad wrong-version" state=${state:-unreadable} ;;
	esac
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
	if [ -n "$bad" ]; then
		# shellcheck disable=SC2086
		tally_trial "$state" $bad
		trial_line postgres "$n" "$what" "$result  VIOLATION: $bad"
		echo "       | ${detail:-$res}"
		echo "       | writer: ${wstats:-killed}"
		echo "       | ferry: $(tail -1 "$T/ferry.err")"
		echo "       | recovery: $(tail -1 "$T/recovery.err")"
		if [ "$kept" -lt "$KEEP_FAILED" ]; then
			kept=$((kept + 1))
			# the logs, and the database as it was left
			mkdir -p "$WORK/failed-postgres-$n"
			cp -r "$T/." "$WORK/failed-postgres-$n/"
			pg_state >"$WORK/failed-postgres-$n/pg_state.txt" 2>&1
		fi
	else
		tally_trial "$state"
		trial_line postgres "$n" "$what" "$result"
	fi
}

tally_init postgres
i=0
while [ "$i" -lt "$TRIALS" ]; do
	i=$((i + 1))
	case $(rnd 10) in
	0 | 1 | 2 | 3) kind=kill-good ;;
	4 | 5 | 6) kind=kill-bad ;;
	*) kind=fail ;;
	esac
	case $(rnd 2) in 0) pace=busy ;; *) pace=sparse ;; esac
	case $(rnd 3) in 0) recovery=finish ;; *) recovery=pin ;; esac
	pg_trial "$i" "$kind" "$pace" "$recovery"
done
tally_write
