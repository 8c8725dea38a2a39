#!/bin/sh
# Rebuild mode on PostgreSQL: the app's schema copied to ferry_staging for
# the transforms, schema.sql run in ferry_new, the common tables and
# columns copied across, swapped in by renames in one transaction; the
# app's schema untouched until that commit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"

export FERRY_MIGRATIONS_MODE=rebuild

mkdir -p "$TMP/m1"
cat >"$TMP/m1/0001_init.sql" <<'EOF'
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE legacy (id serial PRIMARY KEY, junk text);
EOF

schema_v3() {
	mkdir -p "$1/transforms"
	cat >"$1/schema.sql" <<-'EOF'
	-- ferry:version 3
	CREATE TABLE users (
	    id serial PRIMARY KEY,
	    first_name text NOT NULL,
	    last_name text NOT NULL,
	    email text NOT NULL DEFAULT 'none'
	);
	CREATE TABLE posts (
	    id serial PRIMARY KEY,
	    user_id integer NOT NULL REFERENCES users(id),
	    title text
	);
	CREATE INDEX posts_user ON posts (user_id);
	CREATE FUNCTION welcome() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    INSERT INTO posts (user_id, title) VALUES (NEW.id, 'welcome');
	    RETURN NEW;
	END $$;
	CREATE TRIGGER users_welcome AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION welcome();
	EOF
}
split_sql="ALTER TABLE users ADD COLUMN first_name text, ADD COLUMN last_name text;
UPDATE users SET first_name = split_part(name, ' ', 1), last_name = split_part(name, ' ', 2);"
schema_v3 "$TMP/r3"
printf '%s\n' "$split_sql" >"$TMP/r3/transforms/1-2.sql"
schema_v3 "$TMP/r3pair"
cp "$TMP/r3/transforms/1-2.sql" "$TMP/r3pair/transforms/"
cat >"$TMP/r3pair/transforms/2-3.sql" <<'EOF'
ALTER TABLE users ADD COLUMN email text;
UPDATE users SET email = lower(first_name) || '@example.com';
EOF
schema_v3 "$TMP/r3one"
{ printf '%s\n' "$split_sql"; cat "$TMP/r3pair/transforms/2-3.sql"; } >"$TMP/r3one/transforms/1-3.sql"

v1() {
	pg_fresh_appdb
	FERRY_MIGRATIONS_MODE=in-place pgf "$TMP/m1" migrate
	[ "$rc" = 0 ] || echo "# setup failed: $err"
	psql_as app appdb "INSERT INTO users (name) VALUES ('Ada Lovelace'), ('Alan Turing');
		INSERT INTO legacy (junk) VALUES ('x')" >/dev/null
}
users() { qa "SELECT id, first_name, last_name, email FROM users ORDER BY id" | tr '\n' ' '; }
schema_dump() {
	"$PGBIN/pg_dump" -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres --schema-only -n public \
		-T ferry_migrations -T ferry_journal -T 'ferry_migrations_*' -d appdb 2>&1 |
		grep -Ev '^\\(un)?restrict |^--|^$|SCHEMA public'
}
public_data() {
	"$PGBIN/pg_dump" -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres --data-only -n public \
		-T ferry_migrations -T ferry_journal -d appdb 2>&1 | grep -Ev '^\\(un)?restrict '
	qa 'SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version'
}
scratch_schemas() { qa "SELECT string_agg(nspname, ' ') FROM pg_namespace WHERE nspname LIKE 'ferry%'"; }

# ---- v1 -> v3 -------------------------------------------------------------------
v1
pgf "$TMP/r3" migrate
expect_status 0 "v1 -> v3 rebuilt"
is "$(users)" "1|Ada|Lovelace|none 2|Alan|Turing|none " "the name was split by 1-2.sql; the new email took its default"
check "the dropped table is gone" test "$(qa "SELECT to_regclass('public.legacy') IS NULL")" = t
is "$(qa 'SELECT count(*) FROM posts')" 0 "the schema's trigger did not fire for the copied rows"
is "$(ledger_versions)" 3 "the ledger holds the schema's version alone"
is "$(qa 'SELECT sha256 FROM ferry_migrations')" "$(filesum "$TMP/r3/schema.sql")" "its checksum is schema.sql's"
like "$err" "rebuild: users 2 rows" "the log counts the rows per table"
like "$err" "legacy is not in schema.sql: not copied" "the log names the dropped table"
like "$err" "database rebuilt from 1 to 3" "the log says it was rebuilt"
is "$(scratch_schemas)" "" "no staging, new or old schema left"
psql_as app appdb "INSERT INTO users (first_name, last_name) VALUES ('Grace', 'Hopper')" >/dev/null
is "$(qa "SELECT id FROM users WHERE first_name = 'Grace'")" 3 "the id sequence goes on after the copied rows"
is "$(qa 'SELECT title FROM posts')" welcome "the trigger works after the copy"
rebuilt=$(schema_dump)

pgf "$TMP/r3" migrate
expect_status 0 "the next boot"
like "$err" "schema up to date: database and image at version 3" "a database at N takes the fast path"

pg_fresh_appdb
pgf "$TMP/r3" migrate
expect_status 0 "an empty database"
is "$(ledger_versions)" 3 "a fresh database at the schema's version"
same_state "$rebuilt" "$(schema_dump)" "the rebuilt schema equals the one schema.sql creates (pg_dump --schema-only)"

# ---- skipped releases ----------------------------------------------------------------
for set in r3pair r3one; do
	v1
	pgf "$TMP/$set" migrate
	expect_status 0 "$set: v1 -> v3"
	is "$(users)" "1|Ada|Lovelace|ada@example.com 2|Alan|Turing|alan@example.com " "$set: both releases' data changes applied"
done

# ---- refusals and failures: the old data intact ----------------------------------------
bad() { rm -rf "$TMP/bad"; schema_v3 "$TMP/bad"; }
v1
before=$(pg_data)
bad; cp "$TMP/r3pair/transforms/"*.sql "$TMP/r3one/transforms/1-3.sql" "$TMP/bad/transforms/"
pgf "$TMP/bad" migrate
expect_status 65 "overlapping transforms"
like "$err" "transforms '.*1-2.sql' and '.*1-3.sql' overlap" "both files named"

fail_case() { # DESC PATTERN
	pgf "$TMP/bad" migrate
	expect_status 70 "$1"
	like "$err" "$2" "$1: the message names what failed"
	same_state "$(pg_data)" "$before" "$1: the old data is intact (pg_dump --data-only)"
	is "$(ledger_versions)" 1 "$1: still at version 1"
	is "$(scratch_schemas)" "" "$1: no scratch schema left"
}
bad; printf '%s\n' "$split_sql" 'UPDATE no_such_table SET x = 1;' >"$TMP/bad/transforms/1-2.sql"
fail_case "a broken transform" "transform '.*bad/transforms/1-2.sql' failed: .*no_such_table"
bad; printf '%s\n' "$split_sql" >"$TMP/bad/transforms/1-2.sql"
sed -i "s/email text NOT NULL DEFAULT 'none'/email text NOT NULL/" "$TMP/bad/schema.sql"
fail_case "rows a NOT NULL column refuses" "table 'users': .*null value in column \"email\".*Failing row contains \(1, Ada"

# ---- kill -9 ------------------------------------------------------------------------
for point in rebuild:staged rebuild:copied rebuild:before-commit rebuild:swapped; do
	v1
	before=$(public_data)
	FERRY_TEST_CRASH_AT=$point pgf "$TMP/r3" migrate
	expect_status 137 "$point: ferry killed itself there"
	if [ $point = rebuild:swapped ]; then
		is "$(users)" "1|Ada|Lovelace|none 2|Alan|Turing|none " "$point: the new schema is complete"
	else
		same_state "$(public_data)" "$before" "$point: the old data in public is intact"
	fi
	pgf "$TMP/r3" migrate
	expect_status 0 "$point: the next boot"
	is "$(users)" "1|Ada|Lovelace|none 2|Alan|Turing|none " "$point: the data at version 3"
	is "$(scratch_schemas)" "" "$point: no scratch schema left"
done

done_testing
