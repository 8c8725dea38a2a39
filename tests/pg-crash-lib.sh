# tests/pg-crash-lib.sh: the fixtures of the PostgreSQL crash tests (t3200,
# t3210).  Source it after lib.sh and pg-lib.sh.  It is not a test script.
#
# c1: version 1.  cn: 0002 transactional, 0003 no-transaction (detected:
# CREATE INDEX CONCURRENTLY, with an UPDATE between), 0004 transactional.
# cbad: the same with a 0004 that fails after doing work (a restore
# follows).  ct: transactional only (one transaction, no snapshot).
# The references: ref_old (version 1 with $ROWS rows), ref_new_cn and
# ref_new_ct (ref_old upgraded by ferry); their pg_state in $old_state,
# $new_state_cn, $new_state_ct.
#
# The boot after a crash is pinned to the old version: it resolves what
# the crash left, then finds nothing to do (old) or refuses because the
# database is ahead (new).  pg_dump of the database must then equal the
# reference old or new database's.

ROWS=${ROWS:-3000}
RANDOM_RUNS=${RANDOM_RUNS:-30}
export FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60

mkdir -p "$TMP/c1" "$TMP/cn" "$TMP/cbad" "$TMP/ct"
cat >"$TMP/c1/0001_items.sql" <<'EOF'
CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, qty integer NOT NULL);
CREATE INDEX items_name ON items (name);
EOF
cat >"$TMP/cn/0002_total.sql" <<'EOF'
ALTER TABLE items ADD COLUMN total integer;
UPDATE items SET total = qty * 3, name = upper(name);
ALTER TABLE items ALTER COLUMN total SET NOT NULL;
EOF
cat >"$TMP/cn/0003_indexes.sql" <<'EOF'
CREATE INDEX CONCURRENTLY items_qty ON items (qty);
UPDATE items SET qty = qty + 1 WHERE id % 2 = 0;
CREATE INDEX CONCURRENTLY items_total ON items (total);
EOF
cat >"$TMP/cn/0004_summary.sql" <<'EOF'
CREATE TABLE summary AS SELECT qty, count(*) AS n, sum(total) AS t FROM items GROUP BY qty;
CREATE VIEW big_items AS SELECT id, name FROM items WHERE qty > 50;
EOF
cp "$TMP/c1/0001_items.sql" "$TMP/cn/"
cp "$TMP/cn/0001_items.sql" "$TMP/cn/0002_total.sql" "$TMP/cn/0003_indexes.sql" "$TMP/cbad/"
cat >"$TMP/cbad/0004_bad.sql" <<'EOF'
UPDATE items SET qty = qty + 100, name = name || '/v4';
CREATE TABLE summary AS SELECT qty, count(*) AS n FROM items GROUP BY qty;
DELETE FROM items WHERE id % 3 = 0;
INSERT INTO items (id, name, qty, total) VALUES (1, 'duplicate key', 0, 0);
EOF
cp "$TMP/cn/0001_items.sql" "$TMP/cn/0002_total.sql" "$TMP/ct/"
cp "$TMP/cn/0004_summary.sql" "$TMP/ct/0003_summary.sql"

# ---- the references: ref_old (version 1 with data), ref_new_SET ----------------------
pg_fresh_appdb
pgf "$TMP/c1" migrate
expect_status 0 "setup: version 1"
psql_as app appdb "INSERT INTO items (name, qty)
	SELECT 'item ' || x || ' ' || md5(x::text), x % 97 FROM generate_series(1, $ROWS) x" >/dev/null
pg_save_as ref_old
old_state=$(pg_state ref_old)

# make_ref SET: ref_new_<set> (ref_old upgraded by ferry); its state in
# $new_state_<set>, the upgrade's wall time in $secs_<set>.
make_ref() {
	pg_fresh_appdb ref_old
	_t0=$(date +%s.%N)
	pgf "$TMP/$1" migrate
	_t1=$(date +%s.%N)
	expect_status 0 "setup: reference upgrade with $1"
	eval "secs_$1=\$(awk -v a=\"\$_t0\" -v b=\"\$_t1\" 'BEGIN { printf \"%.3f\", b - a }')"
	drop_snapshots
	pg_save_as "ref_new_$1"
	eval "new_state_$1=\$(pg_state ref_new_$1)"
}
make_ref cn
make_ref ct
# shellcheck disable=SC2154
check "setup: old and new states differ" test "$old_state" != "$new_state_cn"
is "$(ledger_versions ref_new_cn)" "1 2 3 4" "setup: the reference is at version 4"
echo "# upgrade of $ROWS rows: $secs_cn s (with a no-transaction step), $secs_ct s (transactional)"

# fresh_old VARIANT: appdb = ref_old; for the logical variant the role
# may not create databases (so ferry must write a logical snapshot).
fresh_old() {
	pg_fresh_appdb ref_old
	[ "$1" = logical ] && psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
	return 0
}

# classify SET: "old", "new" or "between" for appdb. Lines are compared
# sorted: an upgrade rolled back by PostgreSQL itself (no restore) leaves
# dead tuples, so the same rows may come out of pg_dump in another order.
classify() {
	_s=$(pg_state | LC_ALL=C sort)
	if [ "$_s" = "$(printf '%s\n' "$old_state" | LC_ALL=C sort)" ]; then echo old
	elif eval "[ \"\$_s\" = \"\$(printf '%s\n' \"\$new_state_$1\" | LC_ALL=C sort)\" ]"; then echo new
	else
		pg_state >"$TMP/between.txt"
		echo between
	fi
}

# recover_boot SET: the boot after the crash, pinned to version 1.  Sets
# $rc, $err and $was (old, new or between).
recover_boot() {
	FERRY_MIGRATIONS_TARGET_VERSION=1 pgf "$TMP/$1" migrate
	was=$(classify "$1")
}

# leftovers: databases other than appdb, its snapshot and the references
leftovers() {
	db_list | tr ' ' '\n' | grep -Ev '^(appdb|appdb_pre_upgrade|ref_old|ref_new_.*)$' | tr '\n' ' '
}

