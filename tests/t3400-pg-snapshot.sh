#!/bin/sh
# PostgreSQL snapshots and restores, and the database commands.  A run
# with a no-transaction migration takes a snapshot first: a template
# database (appdb_pre_upgrade) when the role may create databases and
# nobody else is connected, else a logical, zstd-compressed file in
# snapshot.dir (a rolling update: old replicas still connected; no
# CREATEDB).  A later failure restores it: schema, data, sequences'
# values, indexes, a view, plpgsql functions, a trigger, an enum, foreign
# keys all exactly as before.  Then status, migrate --dry-run, snapshot,
# rollback, cleanup.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

mkdir -p "$TMP/r1" "$TMP/r3" "$TMP/rbad"
cat >"$TMP/r1/0001_shop.sql" <<'EOF'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customers (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    mood mood,
    created timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    amount numeric(10, 2) NOT NULL CHECK (amount >= 0),
    note text,
    tags text[],
    meta jsonb
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_meta ON orders USING gin (meta);
CREATE UNIQUE INDEX customers_lower_email ON customers (lower(email));
CREATE SEQUENCE invoice_no START 1000 INCREMENT 7;
CREATE VIEW customer_totals AS
    SELECT c.id, c.email, coalesce(sum(o.amount), 0) AS total
    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
    GROUP BY c.id, c.email;
CREATE FUNCTION next_invoice() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN nextval('invoice_no');
END $$;
CREATE FUNCTION default_note() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.note := coalesce(NEW.note, 'none; given');
    RETURN NEW;
END;
$fn$;
CREATE TRIGGER orders_note BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION default_note();
COMMENT ON TABLE orders IS 'orders; one row per purchase';
COMMENT ON COLUMN orders.note IS 'free text';
ALTER TABLE orders ADD COLUMN amount_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED;
CREATE INDEX orders_big ON orders (amount) WHERE amount > 1000;
GRANT USAGE ON SCHEMA public TO weak;
GRANT SELECT ON orders, customer_totals TO weak;
EOF
cp "$TMP/r1/0001_shop.sql" "$TMP/r3/"
cat >"$TMP/r3/0002_amount_index.sql" <<'EOF'
CREATE INDEX CONCURRENTLY orders_amount ON orders (amount);
EOF
cat >"$TMP/r3/0003_backfill.sql" <<'EOF'
-- ferry:no-transaction
UPDATE customers SET mood = 'happy' WHERE mood IS NULL;
SELECT next_invoice();
CREATE TABLE audit (id serial PRIMARY KEY, what text);
INSERT INTO audit (what) VALUES ('backfilled');
DELETE FROM orders WHERE id % 10 = 0;
EOF
cp "$TMP/r3/"*.sql "$TMP/rbad/"
cat >"$TMP/rbad/0004_bad.sql" <<'EOF'
INSERT INTO customers (email) VALUES ('new@example.com');
SELECT next_invoice();
UPDATE orders SET amount = amount * 2;
DROP VIEW customer_totals;
ALTER TABLE orders ALTER COLUMN note SET DEFAULT 'n/a';
INSERT INTO orders (customer_id, amount) VALUES (999999, 1);
EOF

# r1_appdb: appdb at version 1 of the shop, with data that tests a
# logical copy (NULLs, tabs, newlines, backslashes, quotes, unicode,
# arrays, jsonb) and sequences that moved (deleted rows, nextval calls).
r1_appdb() {
	pg_fresh_appdb
	"$FERRY" migrate --database-url "$PGURL" --migrations "$TMP/r1" >"$TMP/.setup.out" 2>"$TMP/.setup.err" ||
		echo "# setup: first boot failed: $(cat "$TMP/.setup.err")"
	psql_as app appdb "
		INSERT INTO customers (email, mood) SELECT 'c' || x || '@example.com',
			(ARRAY['sad', 'ok', 'happy', NULL])[x % 4 + 1]::mood FROM generate_series(1, 300) x;
		INSERT INTO orders (customer_id, amount, note, tags, meta)
			SELECT x % 300 + 1, (x * 1.37)::numeric(10, 2),
				CASE x % 5 WHEN 0 THEN NULL WHEN 1 THEN E'tab\\there\\nnewline' WHEN 2 THEN E'back\\\\slash ''quote'''
					WHEN 3 THEN 'ünïcödé ✓' ELSE 'plain' END,
				ARRAY['a', 'b;c', NULL], jsonb_build_object('n', x, 's', 'x\"y')
			FROM generate_series(1, 3000) x;
		DELETE FROM customers WHERE id > 290;
		SELECT next_invoice(); SELECT next_invoice(); SELECT next_invoice();" >/dev/null
	drop_snapshots
}

# same_as_before DESC: appdb has the state $state, no INVALID index
same_as_before() {
	same_state "$(pg_state)" "$state" "$1: schema, data and sequences exactly as before"
	is "$(invalid_indexes)" "" "$1: no INVALID index"
}

# ---- no CREATEDB: a logical snapshot ----------------------------------------------------------
# (a session of another process connected beside a no-transaction step is
# waited for, then refused: t3800)
r1_appdb
state=$(pg_state)
seqs=$(qa "SELECT last_value || ' ' || is_called FROM invoice_no")
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
pgf "$TMP/rbad" migrate
expect_status 70 "no CREATEDB: a no-transaction step then a failing migration"
like "$err" "logical" "the log says it took a logical snapshot"
like "$err" "CREATEDB" "and why (the role may not create databases)"
like "$err" "0004_bad" "names the failing migration"
like "$err" "foreign key|violates" "with PostgreSQL's error"
like "$err" "restored" "says it restored the snapshot"
like "$err" "still at version 1" "says the database is still at version 1"
check "the logical snapshot is $(snapshot_file)" test -f "$(snapshot_file)"
check "it is zstd-compressed" zstd -q -t "$(snapshot_file)"
is "$(stat -c %a "$(snapshot_file)" 2>/dev/null)" 600 "it is readable by its owner only"
is "$(db_list)" appdb "no template database was made"
same_as_before "restored from the logical snapshot"
no_ferry_tables "restored from the logical snapshot"
is "$(qa "SELECT last_value || ' ' || is_called FROM invoice_no")" "$seqs" "the sequence's value is back"
is "$(qa "SELECT nextval('customers_id_seq')")" 301 "the serial's next value is back"
is "$(qa "SELECT count(*) FROM orders WHERE amount_cents = (amount * 100)::bigint")" \
	"$(qa "SELECT count(*) FROM orders")" "the generated column is right"
is "$(qa "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'orders'::regclass")" 1 \
	"the foreign key is there"
is "$(qa "SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_note'")" 1 "the trigger is there"

# the fixed image upgrades with a logical snapshot; a rollback from it
# while another session is connected
r1_appdb
state=$(pg_state)
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
pgf "$TMP/r3" migrate
expect_status 0 "no CREATEDB, the fixed image: upgrade with a logical snapshot"
like "$err" "logical" "the log says logical"
is "$(ledger_versions)" "1 2 3" "upgraded to 3"
is "$(qa "SELECT count(*) FROM audit")" 1 "the backfill ran"
check "the snapshot file is kept" test -f "$(snapshot_file)"
hold_connection
pgf "$TMP/r3" rollback
expect_status 0 "ferry rollback from the logical snapshot, another session connected"
same_as_before "rolled back from the logical snapshot"
pgf "$TMP/r1" status
like "$out" "database version: 1" "status says version 1"
kill_tree "$holdpid"
wait "$holdpid" 2>/dev/null
wait_for pg_true "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'old-replica'"

# ---- nobody else connected, CREATEDB: a template database -------------------------------------
r1_appdb
state=$(pg_state)
pgf "$TMP/rbad" migrate
expect_status 70 "template: a failing migration after a no-transaction step"
like "$err" "template|appdb_pre_upgrade" "the log says it took a template copy"
like "$err" "restored" "says it restored"
same_as_before "restored from the template copy"
no_ferry_tables "restored from the template copy"
is "$(qa "SELECT nextval('customers_id_seq')")" 301 "the serial's next value is back"
is "$(ls -A "$FERRY_SNAPSHOT_DIR" | grep -v '^\.')" "" "no snapshot file was written"

r1_appdb
state=$(pg_state)
pgf "$TMP/r3" migrate
expect_status 0 "template: the fixed image upgrades"
like "$err" "template|appdb_pre_upgrade" "with a template copy"
is "$(db_list)" "appdb appdb_pre_upgrade" "the snapshot database is kept"
same_state "$(pg_state appdb_pre_upgrade)" "$state" "it holds the pre-upgrade database"
pgf "$TMP/r3" status --json
expect_status 0 "status --json after the upgrade"
is "$(json 'j["database_version"]')" 3 "--json: database_version 3"
check "--json: the snapshot is named" test "$(json 'j["snapshot"]')" != None
psql_as app appdb "INSERT INTO audit (what) VALUES ('written after the upgrade')" >/dev/null
pgf "$TMP/r3" rollback
expect_status 0 "ferry rollback from the template copy"
same_as_before "rolled back from the template copy"
pgf "$TMP/r1" migrate
expect_status 0 "the old image boots on the rolled-back database"
like "$err" "up to date" "up to date"
pgf "$TMP/r3" cleanup
expect_status 0 "ferry cleanup"
is "$(db_list)" appdb "no snapshot database is left"
is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "no snapshot file is left"
same_as_before "cleanup"
pgf "$TMP/r3" rollback
check "rollback without a snapshot fails (exit $rc)" test "$rc" != 0
like "$err" "snapshot" "and says there is no snapshot"
same_as_before "rollback without a snapshot"

# ---- no CREATEDB: logical, and why ---------------------------------------------------------
r1_appdb
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
state=$(pg_state)
pgf "$TMP/rbad" migrate
expect_status 70 "no CREATEDB: a failing run"
like "$err" "logical" "a logical snapshot"
like "$err" "CREATEDB" "because the role lacks CREATEDB"
same_as_before "no CREATEDB: restored from the logical snapshot"
pgf "$TMP/r3" migrate
expect_status 0 "no CREATEDB: the fixed image upgrades"
is "$(ledger_versions)" "1 2 3" "to 3"

# ---- an identity column in a logical snapshot ------------------------------------------------------
r1_appdb
psql_as app appdb "CREATE TABLE events (
	    id integer GENERATED ALWAYS AS IDENTITY (START WITH 50) PRIMARY KEY,
	    customer_id integer REFERENCES customers (id) ON DELETE SET NULL,
	    what text NOT NULL
	) WITH (fillfactor = 70);
	INSERT INTO events (customer_id, what) SELECT x, 'signup' FROM generate_series(1, 40) x;
	DELETE FROM events WHERE id > 80" >/dev/null
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
state=$(pg_state)
pgf "$TMP/rbad" migrate
expect_status 70 "logical snapshot of a table with an identity column: a failing run is restored"
same_as_before "identity column: restored from the logical snapshot"
is "$(qa "SELECT nextval(pg_get_serial_sequence('events', 'id'))")" 90 "the identity's next value is back"

# ---- a materialized view in a logical snapshot --------------------------------------------------
r1_appdb
psql_as app appdb "CREATE MATERIALIZED VIEW mood_counts AS SELECT mood, count(*) AS n FROM customers GROUP BY mood;
	CREATE UNIQUE INDEX mood_counts_mood ON mood_counts (mood)" >/dev/null
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
state=$(pg_state)
pgf "$TMP/rbad" migrate
expect_status 70 "logical snapshot of a database with a materialized view: a failing run is restored"
same_as_before "materialized view: restored from the logical snapshot"
is "$(qa "SELECT count(*) FROM mood_counts")" 4 "the materialized view has its rows"

# ---- the snapshot cannot be written: 73, nothing changed ---------------------------------------------
r1_appdb
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
state=$(pg_state)
: >"$TMP/afile"
FERRY_SNAPSHOT_DIR=$TMP/afile/snap pgf "$TMP/r3" migrate
expect_status 73 "a snapshot dir that cannot be created"
like "$err" "$TMP/afile/snap" "names the directory"
same_as_before "cannot write the snapshot"
no_ferry_tables "cannot write the snapshot"
is "$(qa "SELECT count(*) FROM ferry_migrations WHERE dirty")" 0 "no dirty ledger row"
pgf "$TMP/r3" status --json
is "$(json 'j["journal"]')" none "no journal left"

# ---- status, migrate --dry-run, snapshot ------------------------------------------------------------------
v1_appdb
state=$(pg_state)
pgf "$TMP/p3" status
expect_status 0 "ferry status"
like "$out" "database version: 1" "status: database version"
like "$out" "image version: 3" "status: image version"
like "$out" "pending: 2" "status: pending count"
like "$out" "0002_email" "status: names a pending migration"
pgf "$TMP/p3" status --json
expect_status 0 "ferry status --json"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "--json: one line"
is "$(json 'j["database_version"]')" 1 "--json: database_version"
is "$(json 'j["image_version"]')" 3 "--json: image_version"
is "$(json 'j["pending"]')" "['0002_email', '0003_posts']" "--json: pending is the list of names"
is "$(json 'j["unknown"]')" "[]" "--json: unknown is an empty list"
is "$(json 'j["dirty"]')" "[]" "--json: dirty is an empty list"
is "$(json 'j["snapshot"]')" "None" "--json: no snapshot is null"
is "$(json 'j["journal"]')" "none" "--json: no journal is \"none\""
pgf "$TMP/p3" migrate --dry-run
expect_status 0 "migrate --dry-run"
like "$out" "0002_email" "the plan names 0002"
like "$out" "0003_posts" "the plan names 0003"
unlike "$out" "0001_users" "not the applied one"
pgf "$TMP/p3" version
expect_status 0 "ferry version"
like "$out" "database schema version: 1" "the database schema version"
same_as_before "status, dry run and version"
is "$(db_list)" appdb "no snapshot database"
is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "no snapshot file"

pgf "$TMP/p3" snapshot
expect_status 0 "ferry snapshot"
check "a snapshot database or file exists" sh -c \
	"[ -f '$(snapshot_file)' ] || [ \"$(db_list)\" = 'appdb appdb_pre_upgrade' ]"
pgf "$TMP/p3" status --json
check "--json: the snapshot is named" test "$(json 'j["snapshot"]')" != None
same_as_before "ferry snapshot"
pgf "$TMP/p3" migrate
expect_status 0 "upgrade 1 -> 3 after a manual snapshot"
pgf "$TMP/p3" rollback
expect_status 0 "rollback to the manual snapshot"
same_as_before "rollback to the manual snapshot"
pgf "$TMP/p3" cleanup
expect_status 0 "cleanup"
is "$(db_list)" appdb "cleanup: no snapshot database"
is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "cleanup: no snapshot file"

secret_never_shown
done_testing
