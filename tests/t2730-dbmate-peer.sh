#!/bin/sh
# The real dbmate beside ferry, on SQLite and on PostgreSQL: half the
# migrations applied by dbmate, the rest by ferry; then dbmate's status
# agrees (exit code and output), dbmate has nothing left to do, its
# rollback undoes ferry's last migration, and the data is right.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dbmate-lib.sh"
command -v sqlite3 >/dev/null || { echo "1..0 # SKIP no sqlite3 CLI"; exit 0; }
unset FERRY_MIGRATIONS_LEDGER FERRY_MIGRATIONS_FORMAT FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER \
	FERRY_MIGRATIONS_TARGET_VERSION FERRY_SNAPSHOT_DIR FERRY_DATABASE_STATE_DIR

# dbmate's format: half (2 of 4) in $TMP/half, all of them in $TMP/all;
# TYPE is the id column's type of the engine
mkmigrations() {
	rm -rf "$TMP/half" "$TMP/all"
	mkdir -p "$TMP/half" "$TMP/all"
	printf -- "-- migrate:up\nCREATE TABLE users (id $1 PRIMARY KEY, name TEXT NOT NULL);\nINSERT INTO users (name) VALUES ('Ada'), ('Brian');\n\n-- migrate:down\nDROP TABLE users;\n" \
		>"$TMP/half/20240101000000_users.sql"
	printf -- "-- migrate:up\nALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = lower(name) || '@example.com';\n\n-- migrate:down\nALTER TABLE users DROP COLUMN email;\n" \
		>"$TMP/half/20240102000000_email.sql"
	cp "$TMP/half/"*.sql "$TMP/all/"
	printf -- "-- migrate:up\nCREATE TABLE posts (id $1 PRIMARY KEY, user_id INTEGER REFERENCES users (id), title TEXT);\nINSERT INTO posts (user_id, title) SELECT id, 'hello ' || name FROM users;\n\n-- migrate:down\nDROP TABLE posts;\n" \
		>"$TMP/all/20240103000000_posts.sql"
	printf -- "-- migrate:up transaction:false\nCREATE INDEX posts_user ON posts (user_id);\n\n-- migrate:down\nDROP INDEX posts_user;\n" \
		>"$TMP/all/20240104000000_posts_index.sql"
}

# peer ENGINE DBMATE-URL FERRY-URL Q...: the whole story on one engine;
# Q is the command that prints one query's rows
peer() {
	engine=$1 durl=$2 furl=$3
	shift 3
	dbm "$durl" -d "$TMP/half" migrate
	is "$drc" 0 "$engine: dbmate applies the first half"
	run_ferry --database-url "$furl" --migrations "$TMP/all" migrate
	expect_status 0 "$engine: ferry applies the rest"
	like "$err" "applied 20240103000000_posts.*" "$engine: ferry applied 3"
	unlike "$err" "applied 20240101000000" "$engine: and not what dbmate applied"
	dbm "$durl" -d "$TMP/all" status --exit-code
	is "$drc" 0 "$engine: dbmate status --exit-code: nothing pending"
	is "$(printf '%s\n' "$dout" | grep -c '^\[X\]')" 4 "$engine: dbmate status: all four applied"
	like "$dout" "Pending: 0" "$engine: dbmate status: pending 0"
	dbm "$durl" -d "$TMP/all" migrate
	is "$drc" 0 "$engine: dbmate migrate afterwards"
	unlike "$dout" "Applying" "$engine: dbmate has nothing to apply"
	is "$("$@" "SELECT name || ' ' || email FROM users ORDER BY id" | tr '\n' ',')" \
		"Ada ada@example.com,Brian brian@example.com," "$engine: the data is right"
	is "$("$@" "SELECT count(*) FROM posts")" 2 "$engine: posts"
	dbm "$durl" -d "$TMP/all" rollback
	is "$drc" 0 "$engine: dbmate rolls back ferry's last migration"
	dbm "$durl" -d "$TMP/all" status
	like "$dout" "Pending: 1" "$engine: dbmate: one pending again"
	run_ferry --database-url "$furl" --migrations "$TMP/all" migrate
	expect_status 0 "$engine: ferry applies it again"
	like "$err" "applied 20240104000000_posts_index" "$engine: the one dbmate rolled back"
	dbm "$durl" -d "$TMP/all" status --exit-code
	is "$drc" 0 "$engine: and dbmate agrees"
}

# ---- SQLite ---------------------------------------------------------------------
mkmigrations INTEGER
mkdir -p "$TMP/sq"
sq() { sqlite3 "$TMP/sq/app.db" "$1"; }
peer sqlite "sqlite:$TMP/sq/app.db" "sqlite://$TMP/sq/app.db" sq

# ---- PostgreSQL -------------------------------------------------------------------
. "$(dirname "$0")/pg-lib.sh"
mkmigrations bigserial
peer postgresql "postgres://app:$APP_PASSWORD@127.0.0.1:$PGPORT/appdb?sslmode=disable" "$PGURL" qa

done_testing
