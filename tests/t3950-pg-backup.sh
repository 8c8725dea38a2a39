#!/bin/sh
# PostgreSQL: ferry backup and restore. A database with awkward types
# (bytea, jsonb, arrays, NULLs, text with tabs, newlines and backslashes),
# a sequence, a view, an index and a foreign key, plus an uploads tree, is
# archived (to a file and to stdout), verified, and restored by
# --mode replace: every table, the sequence and the tree come back as they
# were, with no <db>_restore, <db>_pre_restore, staging or journal left.
# [backup] before_upgrade takes one before an upgrade.
# Refused with nothing changed: a corrupted member (verify and replace),
# an archive newer than the image, a database another session keeps.
# kill -9 at each phase of the replace: the next boot finds the old state
# or the restored one, never a mix.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
command -v zstd >/dev/null || { echo "1..0 # skip no zstd CLI"; exit 0; }

mkdir -p "$TMP/b1" "$TMP/b2"
cat >"$TMP/b1/0001_all.sql" <<'EOF'
CREATE TABLE authors (
    id serial PRIMARY KEY,
    name text NOT NULL,
    bio text,
    avatar bytea,
    prefs jsonb,
    tags text[],
    scores integer[]
);
CREATE TABLE books (
    id bigserial PRIMARY KEY,
    author_id integer NOT NULL REFERENCES authors (id),
    title text NOT NULL,
    price numeric(8, 2)
);
CREATE INDEX books_title ON books (title);
CREATE SEQUENCE invoice_no START 1000;
CREATE VIEW author_books AS
    SELECT a.name, count(b.id) AS books FROM authors a LEFT JOIN books b ON b.author_id = a.id
    GROUP BY a.name;
EOF
cp "$TMP/b1/0001_all.sql" "$TMP/b2/"
cat >"$TMP/b2/0002_more.sql" <<'EOF'
ALTER TABLE books ADD COLUMN isbn text;
EOF

tables() {
	for t in authors books author_books; do
		echo "-- $t"
		qa "SELECT * FROM $t ORDER BY 1"
	done
	qa "SELECT last_value, is_called FROM invoice_no"
}
tree() { (cd "$1" && find . -mindepth 1 -printf '%P %m %s\n' | LC_ALL=C sort; find . -type f -exec sha256sum {} + | LC_ALL=C sort); }
leftovers() { # databases, journal and staging a restore may leave
	echo "$(db_list | tr ' ' '\n' | grep -E '_restore|_pre_restore' | tr '\n' ' ')"
	ls -a "$FERRY_DATABASE_STATE_DIR" | grep -E 'restore' || true
	ls -a "$TMP" | grep -E 'ferry-restore|pre-restore' || true
}
bf() { pgf "$TMP/${MIG:-b1}" -c "$TMP/b.ini" "$@"; }

UP=$TMP/uploads
# setup: appdb at version 1 with data, an uploads tree; the archive $TMP/a.ferry
setup() {
	pg_fresh_appdb
	rm -rf "$UP" && mkdir -p "$UP/2024" && printf 'a photo' >"$UP/2024/photo one.jpg"
	printf 'secret' >"$UP/key" && chmod 0600 "$UP/key"
	printf '[backup]\npaths = %s\n' "$UP" >"$TMP/b.ini"
	bf migrate
	[ "$rc" = 0 ] || echo "# setup: migrate failed: $err"
	psql_as app appdb "
		INSERT INTO authors (name, bio, avatar, prefs, tags, scores) VALUES
		  (E'Ada\tLovelace', E'line one\nline two\\\\with a backslash', '\\xdeadbeef00ff',
		   '{\"theme\": \"dark\", \"n\": [1, 2, null]}', ARRAY['a b', 'c,d', NULL], ARRAY[1, NULL, 3]),
		  ('Nobody', NULL, NULL, NULL, NULL, NULL),
		  (E'quote '' and \"dq\"', '', '', '[]', '{}', '{}');
		INSERT INTO books (author_id, title, price) VALUES (1, 'Notes', 12.50), (1, E'tab\there', NULL), (3, 'x', 0);
		SELECT nextval('invoice_no'), nextval('invoice_no'), nextval('invoice_no');" >/dev/null
	bf backup -o "$TMP/a.ferry"
	[ "$rc" = 0 ] || echo "# setup: backup failed: $err"
	want_state=$(pg_state)
	want_tables=$(tables)
	want_tree=$(tree "$UP")
}
# change: the database and the tree moved on after the backup
change() {
	psql_as app appdb "INSERT INTO authors (name) VALUES ('after the backup');
		UPDATE books SET price = 99; SELECT nextval('invoice_no')" >/dev/null
	printf 'changed' >"$UP/2024/photo one.jpg"
	printf 'new' >"$UP/new"
	old_state=$(pg_state)
	old_tables=$(tables)
	old_tree=$(tree "$UP")
}

# ---- backup ----------------------------------------------------------------------
setup
check "backup wrote the archive" test -s "$TMP/a.ferry"
like "$err" "backup: $TMP/a.ferry written: [0-9]+ members, schema version 1" "backup logs what it wrote"
man=$(zstd -dc "$TMP/a.ferry" | tar xOf - manifest.ini 2>/dev/null)
like "$man" "^engine = postgresql$" "the manifest names the engine"
like "$man" "^schema_version = 1$" "the manifest names the schema version"
like "$man" "^rows = 7$" "the manifest counts the dump's rows (3 authors, 3 books, 1 ledger row)"
like "$man" "^f [0-9]+ 0600 [0-9]+ [0-9a-f]{64} database.pgdump$" "the database member has its size and sha256"
like "$man" "^f 7 [0-7]+ [0-9]+ [0-9a-f]{64} paths/0/2024/photo one.jpg$" "the uploads are members"
is "$(zstd -dc "$TMP/a.ferry" | tar tf - 2>/dev/null | head -2 | tr '\n' ' ')" "manifest.ini database.pgdump " \
	"manifest.ini first, then the database"
like "$(zstd -dc "$TMP/a.ferry" | tar xOf - database.pgdump 2>/dev/null | head -1)" "^FERRY-PG-SNAPSHOT 1$" \
	"the member is the logical dump"
is "$(ls "$TMP" | grep -c 'a.ferry.tmp')" "0" "no temporary file is left"

bf backup -o - >/dev/null
expect_status 0 "backup -o - exits 0"
cp "$TMP/.out" "$TMP/stdout.ferry"
bf restore "$TMP/stdout.ferry"
expect_status 0 "the archive written to stdout verifies"
is "$(zstd -dc "$TMP/stdout.ferry" | tar tf - 2>/dev/null | tr '\n' ' ')" \
	"$(zstd -dc "$TMP/a.ferry" | tar tf - 2>/dev/null | tr '\n' ' ')" "it holds the same members"
is "$(ls -a "$FERRY_SNAPSHOT_DIR" "$FERRY_DATABASE_STATE_DIR" | grep -c 'ferry-backup')" 0 \
	"the staged dump of -o - is gone"

# ---- verify ------------------------------------------------------------------------
before=$(pg_state)
bf restore "$TMP/a.ferry" --mode verify
expect_status 0 "restore --mode verify exits 0"
like "$err" "verified: [0-9]+ members, postgresql schema version 1" "verify reports the archive"
same_state "$(pg_state)" "$before" "verify changed nothing"

# ---- replace --------------------------------------------------------------------------
change
bf restore "$TMP/a.ferry" --mode replace
expect_status 0 "restore --mode replace exits 0"
like "$err" "appdb_restore loaded and checked: 7 rows" "the loaded copy's rows are checked against the manifest"
is "$(tables)" "$want_tables" "every table, the view and the sequence are as backed up"
same_state "$(pg_state)" "$want_state" "pg_dump of the database is as backed up"
is "$(tree "$UP")" "$want_tree" "the uploads are as backed up"
is "$(qa "SELECT nextval('invoice_no')")" "1003" "the sequence goes on from its value at the backup"
is "$(qa "SELECT pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'appdb'")" \
	"app UTF8" "the restored database has the owner and encoding"
is "$(leftovers)" "" "no copy, staging or journal is left"
bf migrate
expect_status 0 "migrate after the restore has nothing to do"

# ---- a corrupted member ------------------------------------------------------------------
zstd -dc "$TMP/a.ferry" >"$TMP/a.tar"
python3 - "$TMP/a.tar" "$TMP/bad.tar" <<'EOF'
import sys, tarfile, io
src = tarfile.open(sys.argv[1])
dst = tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT)
for m in src.getmembers():
    data = src.extractfile(m).read() if m.isfile() else None
    if m.name == "database.pgdump":
        i = data.index(b"Lovelace")
        data = data[:i] + b"L0velace" + data[i + 8:]
    dst.addfile(m, io.BytesIO(data) if data is not None else None)
dst.close()
EOF
zstd -q -f "$TMP/bad.tar" -o "$TMP/bad.ferry"
change
bf restore "$TMP/bad.ferry"
expect_status 65 "verify refuses an archive with a corrupted member"
like "$err" "member 'database.pgdump' refused: sha256 differs from the manifest" "it names the member"
bf restore "$TMP/bad.ferry" --mode replace
expect_status 65 "replace refuses it too"
same_state "$(pg_state)" "$old_state" "the database is untouched"
is "$(tree "$UP")" "$old_tree" "the uploads are untouched"
is "$(leftovers)" "" "nothing of the refused restore is left"

# ---- schema versions ----------------------------------------------------------------------
pg_fresh_appdb
MIG=b2 bf migrate
MIG=b2 bf backup -o "$TMP/v2.ferry"
expect_status 0 "setup: an archive at schema version 2"
before=$(pg_state)
bf restore "$TMP/v2.ferry" --mode replace
expect_status 65 "an archive newer than the image is refused"
like "$err" "schema version 2 is newer than this image's 1" "the refusal names both versions"
same_state "$(pg_state)" "$before" "nothing changed"
is "$(leftovers)" "" "nothing of it is left"
MIG=b2 bf restore "$TMP/a.ferry" --mode replace
expect_status 0 "an archive older than the image is restored"
is "$(db_version)" "1" "at its version"
MIG=b2 bf migrate
expect_status 0 "then the normal upgrade runs"
is "$(db_version)" "2" "to the image's version"
is "$(qa 'SELECT count(*) FROM authors')" "3" "with the restored data"

# ---- [backup] before_upgrade -------------------------------------------------------------
setup
printf '[backup]\npaths = %s\nbefore_upgrade = true\ndir = %s/pre\n' "$UP" "$TMP" >"$TMP/pre.ini"
pgf "$TMP/b2" -c "$TMP/pre.ini" migrate
expect_status 0 "an upgrade with before_upgrade = true succeeds"
like "$err" "before_upgrade: writing $TMP/pre/pre-upgrade-[0-9TZ]+\.ferry" "it takes an archive first"
is "$(db_version)" "2" "the upgrade ran after it"
pre=$(ls "$TMP"/pre/pre-upgrade-*.ferry 2>/dev/null | head -1)
like "$(zstd -dc "$pre" | tar xOf - manifest.ini 2>/dev/null)" "^schema_version = 1$" "the archive holds version 1"
pgf "$TMP/b2" -c "$TMP/pre.ini" restore "$pre" --mode replace
expect_status 0 "the pre-upgrade archive restores"
is "$(tables)" "$want_tables" "to the data as it was before the upgrade"

# ---- another session on the database ---------------------------------------------------
setup
change
hold_connection # (the server itself waits 5 s for it before each refusal)
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=2 bf restore "$TMP/a.ferry" --mode replace
expect_status 75 "replace refuses while another session keeps the database"
like "$err" "database 'appdb' is in use \(1 session\(s\): pid [0-9]+ old-replica\)" "it names the session"
kill_tree "$holdpid"
wait_for sh -c "[ \"\$(qa \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'old-replica'\")\" = 0 ]"
same_state "$(pg_state)" "$old_state" "the database is untouched"
is "$(tree "$UP")" "$old_tree" "the uploads are untouched"
is "$(leftovers)" "" "the loaded copy and the staging are gone"
bf restore "$TMP/a.ferry" --mode replace
expect_status 0 "once it is gone, the restore goes through"
same_state "$(pg_state)" "$want_state" "the database is as backed up"

# ---- kill -9 at each phase ------------------------------------------------------------------
for point in restore:mid restore-staged restore-swap-journalled restore-db-renamed \
	restore-swapped-one restore-moved-aside; do
	setup
	change
	FERRY_TEST_CRASH_AT=$point bf restore "$TMP/a.ferry" --mode replace
	expect_status 137 "$point: restore killed there"
	bf status
	expect_status 0 "$point: the next boot (status) runs"
	case $point in
	restore:mid | restore-staged)
		like "$err" "removing the staging of an interrupted restore" "$point: it removes the staging"
		same_state "$(pg_state)" "$old_state" "$point: the database is the old one"
		is "$(tree "$UP")" "$old_tree" "$point: the uploads are the old ones" ;;
	*)
		like "$err" "finished the interrupted restore" "$point: it finishes the restore"
		same_state "$(pg_state)" "$want_state" "$point: the database is the restored one"
		is "$(tree "$UP")" "$want_tree" "$point: the uploads are the restored ones" ;;
	esac
	is "$(leftovers)" "" "$point: no copy, staging or journal is left"
done

secret_never_shown
done_testing
