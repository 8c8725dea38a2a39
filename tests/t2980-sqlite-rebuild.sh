#!/bin/sh
# Rebuild mode ([migrations] mode = rebuild) on SQLite: a fresh database
# from schema.sql, the old data copied in through the transforms on a
# staging copy, swapped in with one rename; the old database untouched
# until then, whatever fails or crashes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

export FERRY_MIGRATIONS_MODE=rebuild

# m1: version 1, the in-place history of the old release (users.name, a
# legacy table that version 3 drops)
mkdir -p "$TMP/m1"
cat >"$TMP/m1/0001_init.sql" <<'EOF'
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE legacy (id INTEGER PRIMARY KEY, junk TEXT);
EOF

# schema_v3 DIR: version 3's whole schema: name split in two, an email
# with a default, posts (AUTOINCREMENT, a trigger), legacy gone
schema_v3() {
	mkdir -p "$1/transforms"
	cat >"$1/schema.sql" <<-'EOF'
	-- ferry:version 3
	CREATE TABLE users (
	    id INTEGER PRIMARY KEY,
	    first_name TEXT NOT NULL,
	    last_name TEXT NOT NULL,
	    email TEXT NOT NULL DEFAULT 'none'
	);
	CREATE TABLE posts (
	    id INTEGER PRIMARY KEY AUTOINCREMENT,
	    user_id INTEGER NOT NULL REFERENCES users(id),
	    title TEXT
	);
	CREATE INDEX posts_user ON posts(user_id);
	CREATE TRIGGER users_welcome AFTER INSERT ON users BEGIN
	    INSERT INTO posts (user_id, title) VALUES (new.id, 'welcome');
	END;
	EOF
}
split_sql='ALTER TABLE users ADD COLUMN first_name TEXT;
ALTER TABLE users ADD COLUMN last_name TEXT;
UPDATE users SET first_name = substr(name, 1, instr(name, '"' '"') - 1),
                 last_name = substr(name, instr(name, '"' '"') + 1);'
# r3: one transform 1-2 (the split; 2-3 needs no data change)
schema_v3 "$TMP/r3"
printf '%s\n' "$split_sql" >"$TMP/r3/transforms/1-2.sql"
# r3pair: 1-2 and 2-3 (2-3 fills the new email from the names)
schema_v3 "$TMP/r3pair"
cp "$TMP/r3/transforms/1-2.sql" "$TMP/r3pair/transforms/"
cat >"$TMP/r3pair/transforms/2-3.sql" <<'EOF'
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET email = lower(first_name) || '@example.com';
EOF
# r3one: the same as one 1-3
schema_v3 "$TMP/r3one"
{ printf '%s\n' "$split_sql"; cat "$TMP/r3pair/transforms/2-3.sql"; } >"$TMP/r3one/transforms/1-3.sql"

# v1 NAME: a database at version 1 with two users and a legacy row
v1() {
	new_db "$1"
	FERRY_MIGRATIONS_MODE=in-place "$FERRY" migrate --database-url "sqlite://$DB" \
		--migrations "$TMP/m1" >/dev/null 2>"$TMP/.setup.err" ||
		echo "# setup failed: $(cat "$TMP/.setup.err")"
	q "$DB" "INSERT INTO users (name) VALUES ('Ada Lovelace'), ('Alan Turing');
		INSERT INTO legacy (junk) VALUES ('x');"
	rm -rf "$DBDIR/.ferry"
}
users() { q "$1" "SELECT id, first_name, last_name, email FROM users ORDER BY id" | tr '\n' ' '; }
schema_of() { sqlite3 "$1" .schema | grep -v ferry_migrations | LC_ALL=C sort; }
no_side_files() { is "$(files_in "$1" | grep -E 'rebuild-(staging|new)')" "" "$2"; }

# ---- v1 -> v3: a split column, a dropped table, a new one -------------------
v1 plain
fy "$DB" "$TMP/r3" migrate
expect_status 0 "v1 -> v3 rebuilt"
is "$(users "$DB")" "1|Ada|Lovelace|none 2|Alan|Turing|none " "the name was split by 1-2.sql; the new email took its default"
is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'legacy'")" 0 "the dropped table is gone"
is "$(q "$DB" 'SELECT count(*) FROM posts')" 0 "the schema's trigger did not fire for the copied rows"
is "$(ledger_versions "$DB")" 3 "the ledger holds the schema's version alone"
is "$(q "$DB" 'SELECT sha256 FROM ferry_migrations')" "$(filesum "$TMP/r3/schema.sql")" "its checksum is schema.sql's"
like "$err" "rebuild: users 2 rows" "the log counts the rows per table"
like "$err" "legacy is not in schema.sql: not copied" "the log names the dropped table"
like "$err" "database rebuilt from 1 to 3" "the log says it was rebuilt"
check "the snapshot of version 1 is kept" test -f "$DB.pre-upgrade"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "integrity_check of the rebuilt database"
no_side_files "$DBDIR" "no staging or new file left"
check "no journal left" test ! -e "$DBDIR/.ferry/journal"
q "$DB" "INSERT INTO users (first_name, last_name) VALUES ('Grace', 'Hopper')"
is "$(q "$DB" 'SELECT title FROM posts')" welcome "the trigger works again after the copy"
rebuilt_schema=$DB

fy "$DB" "$TMP/r3" migrate
expect_status 0 "the next boot"
like "$err" "schema up to date: database and image at version 3" "a database at N takes the fast path"

# ---- empty volume: schema.sql at version N ----------------------------------
new_db fresh
fy "$DB" "$TMP/r3" migrate
expect_status 0 "an empty volume"
is "$(ledger_versions "$DB")" 3 "a fresh database at the schema's version"
is "$(schema_of "$rebuilt_schema")" "$(schema_of "$DB")" "the rebuilt schema equals the one schema.sql creates"
fy "$DB" "$TMP/r3" status
expect_status 0 "ferry status on a rebuilt database"

# ---- skipped releases: 1-2 then 2-3, or one 1-3 -----------------------------
for set in r3pair r3one; do
	v1 "db-$set"
	fy "$DB" "$TMP/$set" migrate
	expect_status 0 "$set: v1 -> v3"
	is "$(users "$DB")" "1|Ada|Lovelace|ada@example.com 2|Alan|Turing|alan@example.com " "$set: both releases' data changes applied"
done
like "$err" "rebuilding it from .*schema.sql \(1 transform\)" "r3one: one transform"

# a database at 2 skips 1-2
new_db at2
fy "$DB" "$TMP/r3pair" migrate >/dev/null
q "$DB" "DROP TABLE posts; DROP TRIGGER IF EXISTS users_welcome; UPDATE ferry_migrations SET version = 2;
	ALTER TABLE users DROP COLUMN email; INSERT INTO users (first_name, last_name) VALUES ('Edsger', 'Dijkstra')"
rm -rf "$DBDIR/.ferry" "$DB.pre-upgrade"
fy "$DB" "$TMP/r3pair" migrate
expect_status 0 "a database at 2"
is "$(users "$DB")" "1|Edsger|Dijkstra|edsger@example.com " "only 2-3 ran"

# ---- refusals of the image: 65, the file named, the database untouched -----
refuse_case() { # DESC PATTERN: with $TMP/bad as the image
	v1 "refuse$n"
	before=$(dump "$DB")
	fy "$DB" "$TMP/bad" migrate
	expect_status 65 "$1"
	like "$err" "$2" "$1: the message names it"
	is "$(dump "$DB")" "$before" "$1: the database is untouched"
	n=$((n + 1))
}
n=0
bad() { rm -rf "$TMP/bad"; schema_v3 "$TMP/bad"; }
bad; cp "$TMP/r3pair/transforms/"*.sql "$TMP/bad/transforms/"; cp "$TMP/r3one/transforms/1-3.sql" "$TMP/bad/transforms/"
refuse_case "overlapping transforms" "transforms '.*/bad/transforms/1-2.sql' and '.*/bad/transforms/1-3.sql' overlap"
bad; echo 'SELECT 1;' >"$TMP/bad/transforms/one-2.sql"
refuse_case "a transform name without versions" "bad/transforms/one-2.sql'.*<from>-<to>.sql"
bad; echo 'SELECT 1;' >"$TMP/bad/transforms/2-2.sql"
refuse_case "from not below to" "2-2.sql'.*not below"
bad; echo 'SELECT 1;' >"$TMP/bad/transforms/2-4.sql"
refuse_case "a transform past the schema's version" "2-4.sql'.*above the schema's version 3"
bad; rm "$TMP/bad/schema.sql"
refuse_case "no schema.sql" "bad/schema.sql' is missing"
bad; sed -i 1d "$TMP/bad/schema.sql"
refuse_case "no version line" "bad/schema.sql:1: the first line must be '-- ferry:version N'"
bad; sed -i '1s/.*/-- ferry:version three/' "$TMP/bad/schema.sql"
refuse_case "a bad version" "bad/schema.sql:1: 'three' is no version"

# a database ahead of the image
new_db ahead
fy "$DB" "$TMP/r3" migrate >/dev/null
bad; sed -i '1s/.*/-- ferry:version 2/' "$TMP/bad/schema.sql"
fy "$DB" "$TMP/bad" migrate
expect_status 65 "a database ahead of the image"
like "$err" "database is at 3 but this image knows migrations up to 2" "it says so"

# ---- failures of the rebuild: 70, the old database intact -------------------
fail_case() { # DESC PATTERN
	v1 "fail$n"
	before=$(dump "$DB")
	fy "$DB" "$TMP/bad" migrate
	expect_status 70 "$1"
	like "$err" "$2" "$1: the message names what failed"
	is "$(dump "$DB")" "$before" "$1: the old database is intact (.dump identical)"
	no_side_files "$DBDIR" "$1: no staging or new file left"
	check "$1: no journal left" test ! -e "$DBDIR/.ferry/journal"
	n=$((n + 1))
}
bad; printf '%s\n' "$split_sql" 'UPDATE no_such_table SET x = 1;' >"$TMP/bad/transforms/1-2.sql"
fail_case "a broken transform" "transform '.*bad/transforms/1-2.sql' failed: no such table: no_such_table"
bad; printf '%s\n' "$split_sql" >"$TMP/bad/transforms/1-2.sql"
sed -i "s/email TEXT NOT NULL DEFAULT 'none'/email TEXT NOT NULL/" "$TMP/bad/schema.sql"
fail_case "rows a NOT NULL column refuses" "table 'users', row with rowid 1: NOT NULL constraint failed: users.email"
bad; printf '%s\n' "$split_sql" "CREATE TABLE tags (label TEXT PRIMARY KEY, color TEXT);" \
	"INSERT INTO tags VALUES ('misc', 'red'), ('news', NULL);" >"$TMP/bad/transforms/1-2.sql"
echo 'CREATE TABLE tags (label TEXT PRIMARY KEY, color TEXT NOT NULL);' >>"$TMP/bad/schema.sql"
fail_case "a row named by its primary key" "table 'tags', row with rowid 2 \(label = 'news'\): NOT NULL constraint failed: tags.color"
bad; printf '%s\n' "$split_sql" 'UPDATE users SET id = id + 100;' 'CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);' \
	"INSERT INTO posts (user_id, title) VALUES (1, 'orphan');" >"$TMP/bad/transforms/1-2.sql"
fail_case "a foreign key the copied rows break" "foreign key violation: table 'posts'"
bad; echo 'CREATE TABLE broken (' >>"$TMP/bad/schema.sql"
fail_case "a schema.sql that fails" "bad/schema.sql' failed"

# ---- the old database in WAL mode ------------------------------------------
v1 wal
q "$DB" 'PRAGMA journal_mode = WAL' >/dev/null
fy "$DB" "$TMP/r3" migrate
expect_status 0 "a WAL database rebuilt"
is "$(q "$DB" 'PRAGMA journal_mode')" wal "the new database is in WAL mode too"
check "no -wal of the old database beside the new one" test ! -s "$DB-wal"
is "$(users "$DB")" "1|Ada|Lovelace|none 2|Alan|Turing|none " "with the data"

# ---- kill -9 at every step ----------------------------------------------------
for point in snapshot:mid rebuild:staged rebuild:transformed rebuild:copied \
	rebuild:before-swap rebuild:swapped; do
	v1 "crash-$point"
	before=$(dump "$DB")
	FERRY_TEST_CRASH_AT=$point fy "$DB" "$TMP/r3" migrate
	expect_status 137 "$point: ferry killed itself there"
	if [ $point = rebuild:swapped ]; then
		is "$(users "$DB")" "1|Ada|Lovelace|none 2|Alan|Turing|none " "$point: the new database is complete"
		is "$(ledger_versions "$DB")" 3 "$point: at version 3"
	else
		is "$(dump "$DB")" "$before" "$point: the old database is intact"
	fi
	fy "$DB" "$TMP/r3" migrate
	expect_status 0 "$point: the next boot"
	if [ $point = rebuild:swapped ]; then
		like "$err" "after it was verified and committed" "$point: recovery keeps the new database"
	else
		like "$err" "interrupted" "$point: recovery says the upgrade was interrupted"
		like "$err" "database rebuilt from 1 to 3" "$point: and rebuilds again"
	fi
	is "$(users "$DB")" "1|Ada|Lovelace|none 2|Alan|Turing|none " "$point: the data at version 3"
	no_side_files "$DBDIR" "$point: no staging or new file left"
done

# ---- the health gate: an unhealthy release undoes the rebuild ---------------
v1 gate
before=$(dump "$DB")
FERRY_HEALTH_COMMAND=/bin/false FERRY_HEALTH_TIMEOUT_SECONDS=1 FERRY_HEALTH_INTERVAL_SECONDS=1 \
	fy "$DB" "$TMP/r3" run -- /bin/sleep 60
expect_status 70 "an unhealthy server after a rebuild"
like "$err" "the database restored from .*app.db.pre-upgrade, back at version 1" "the snapshot went back"
is "$(dump "$DB")" "$before" "the old database is back as it was"

# ---- the mode key -------------------------------------------------------------
v1 mode
FERRY_MIGRATIONS_MODE=app fy "$DB" "$TMP/r3" migrate
expect_status 78 "mode = app without an identity"
like "$err" "mode = app needs exactly one of \[app\] version" "it names the [app] keys (t2760 tests app mode)"
FERRY_MIGRATIONS_MODE=sideways fy "$DB" "$TMP/r3" migrate
expect_status 78 "an unknown mode"
like "$err" "FERRY_MIGRATIONS_MODE.*expected in-place, rebuild or app" "it names the variable and the choices"

done_testing
