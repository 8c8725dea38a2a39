# tests/sqlite-lib.sh: fixtures for the SQLite upgrade tests (t2*).
# Source it after lib.sh.  It is not a test script itself.

command -v sqlite3 >/dev/null || { echo "1..0 # skip no sqlite3 CLI"; exit 0; }

# Settings a test environment must not inherit.
unset FERRY_MIGRATIONS_DIR FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS \
	FERRY_MIGRATIONS_AUTO_UPGRADE FERRY_MIGRATIONS_TARGET_VERSION \
	FERRY_SNAPSHOT_DIR FERRY_SNAPSHOT_KEEP FERRY_DATABASE_STATE_DIR \
	FERRY_TEST_CRASH_AT FERRY_DATABASE_URL FERRY_LOG_LEVEL FERRY_LOG_FORMAT

# ---- the standard migration sets ------------------------------------------
# $TMP/m1: 0001 only; $TMP/m3: 0001..0003; $TMP/m4: 0001..0004.
# Each later set holds byte-identical copies of the earlier files.
make_std_migrations() {
	mkdir -p "$TMP/m1" "$TMP/m3" "$TMP/m4"
	cat >"$TMP/m1/0001_users.sql" <<-'EOF'
	CREATE TABLE users (
	    id INTEGER PRIMARY KEY,
	    name TEXT NOT NULL
	);
	CREATE INDEX users_name ON users(name);
	EOF
	cp "$TMP/m1/0001_users.sql" "$TMP/m3/"
	cat >"$TMP/m3/0002_email.sql" <<-'EOF'
	-- every user gets an address
	ALTER TABLE users ADD COLUMN email TEXT;
	UPDATE users SET email = lower(name) || '@example.com';
	EOF
	cat >"$TMP/m3/0003_posts.sql" <<-'EOF'
	CREATE TABLE posts (
	    id INTEGER PRIMARY KEY,
	    user_id INTEGER NOT NULL REFERENCES users(id),
	    title TEXT NOT NULL
	);
	INSERT INTO posts (user_id, title) SELECT id, 'hello from ' || name FROM users;
	EOF
	cp "$TMP/m3/"*.sql "$TMP/m4/"
	# m3nt: m3 whose 0002 runs outside a transaction, so it commits on its
	# own and a failure or crash after it needs the snapshot back
	mkdir -p "$TMP/m3nt"
	cp "$TMP/m3/"*.sql "$TMP/m3nt/"
	{ echo '-- ferry:no-transaction'; cat "$TMP/m3/0002_email.sql"; } >"$TMP/m3nt/0002_email.sql"
	cat >"$TMP/m4/0004_tags.sql" <<-'EOF'
	CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT UNIQUE);
	INSERT INTO tags (label) VALUES ('news'), ('misc');
	EOF
}

# new_db NAME: a fresh directory $TMP/NAME; sets DBDIR and DB=$DBDIR/app.db
# (the database file itself is not created).
new_db() {
	DBDIR=$TMP/$1
	rm -rf "$DBDIR"
	mkdir -p "$DBDIR"
	DB=$DBDIR/app.db
}

# fy DB MIGDIR ARGS...: run_ferry ARGS against DB and MIGDIR.
fy() {
	_db=$1 _mig=$2
	shift 2
	run_ferry --database-url "sqlite://$_db" --migrations "$_mig" "$@"
}

# seed_users DB: three users (for a database at version 1).
seed_users() {
	sqlite3 "$1" "INSERT INTO users (name) VALUES ('Ada'), ('Brian'), ('Chloe');"
}

# v1_db NAME: a database created by ferry at version 1 (first boot with
# $TMP/m1) plus three users, its state dir removed.  Sets DBDIR and DB.
v1_db() {
	new_db "$1"
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/m1" \
		>"$TMP/.setup.out" 2>"$TMP/.setup.err" ||
		{ echo "# setup: ferry first boot failed: $(cat "$TMP/.setup.err")"; return 1; }
	seed_users "$DB"
	rm -rf "$DBDIR/.ferry"
}

# ---- observing a database ---------------------------------------------------
dump() { sqlite3 "$1" .dump; }
filesum() { sha256sum <"$1" | cut -d' ' -f1; }
mtime() { stat -c %Y.%y "$1"; }
q() { sqlite3 "$@"; } # q DB SQL: one query, its rows
ledger_versions() { sqlite3 "$1" 'SELECT version FROM ferry_migrations ORDER BY version' | tr '\n' ' ' | sed 's/ $//'; }
db_version() { sqlite3 "$1" 'SELECT coalesce(max(version), 0) FROM ferry_migrations'; }

# state DB: the database's content without what differs between two runs of
# the same upgrade (applied_at, duration_ms of the ledger).
state() {
	sqlite3 "$1" .dump | grep -v '^INSERT INTO "\{0,1\}ferry_migrations"\{0,1\} '
	sqlite3 "$1" 'SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version' 2>&1
}
state_sum() { state "$1" | sha256sum | cut -d' ' -f1; }

# files_in DIR: the names of the files under DIR (recursively, sorted),
# relative to DIR, one a line.
files_in() { (cd "$1" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort); }

# no_leftovers DIR DESC: DIR holds nothing but app.db, its snapshots and
# the state dir's lock file (no temp files, no journal).
no_leftovers() {
	# (.ferry/failed-upgrade is ferry's record of a failed upgrade, kept)
	_extra=$(files_in "$1" | grep -Ev '^(app\.db|app\.db\.pre-upgrade(\.[0-9]+)?|\.ferry|\.ferry/lock|\.ferry/failed-upgrade)$')
	# a crash before a transaction wrote the database leaves SQLite a cold
	# rollback journal (zero header): never replayed, removed by the next
	# write; SQLite's own state, not ferry's
	if [ -f "$1/app.db-journal" ] &&
		[ "$(od -An -N8 -tx1 "$1/app.db-journal" | tr -d ' 0\n')" = "" ]; then
		_extra=$(printf '%s\n' "$_extra" | grep -v '^app\.db-journal$')
	fi
	is "$_extra" "" "$2"
}
