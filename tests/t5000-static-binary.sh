#!/bin/sh
# The static musl binary (make static): no dynamic dependency at all, the
# library versions in `ferry version`, the size budget, and the same
# commands working as in the dynamic build. Skipped when build/static/ferry
# has not been built (plain `make check`); make check-static builds it.
. "$(dirname "$0")/lib.sh"

STATIC=${FERRY_STATIC:-$(cd "$TESTS_DIR/.." && pwd)/build/static/ferry}
STATIC_APP=$(dirname "$STATIC")/demo-app
# The budget for the stripped binary (README, "The static binary"): today
# about 4.7 MiB, most of it OpenSSL and SQLite.
BUDGET_BYTES=$((6 * 1024 * 1024))

if [ ! -x "$STATIC" ]; then
	skip "static binary" "no $STATIC (run make static)"
	done_testing
	exit
fi

for bin in "$STATIC" "$STATIC_APP"; do
	name=$(basename "$bin")
	run_cmd file -L "$bin"
	like "$out" 'statically linked' "file: $name is statically linked"
	unlike "$out" 'dynamically linked|interpreter' "file: $name has no interpreter"
	run_cmd ldd "$bin"
	like "$out$err" 'not a dynamic executable|statically linked' "ldd: $name has no dynamic dependency"
	run_cmd readelf -d "$bin"
	unlike "$out" 'NEEDED' "readelf: $name needs no shared library"
done
run_cmd readelf -lW "$STATIC"
unlike "$out" 'INTERP|Requesting program interpreter' "no program interpreter segment"

size=$(wc -c <"$STATIC")
if [ "$size" -le "$BUDGET_BYTES" ]; then
	pass "stripped size $size bytes is within the budget of $BUDGET_BYTES"
else
	fail "stripped size within the budget" "$size bytes > $BUDGET_BYTES"
fi
run_cmd file "$STATIC"
like "$out" 'stripped' "the binary is stripped"
unlike "$out" 'not stripped' "the binary carries no symbols"

FERRY=$STATIC
run_ferry version
expect_status 0 "static ferry version"
like "$out" '^ferry [0-9]+\.[0-9]+' "version line first"
like "$out" '^static musl build: musl [0-9]' "the build says it is musl"
for lib in sqlite3 libpq openssl libarchive libzstd libinih; do
	like "$out" "^  $lib +[0-9][^ ]*" "ferry version names the $lib it was built from"
done

# The same binary does real work: create and upgrade a database, with
# checksums (OpenSSL's SHA-256), snapshots and the journal.
mkdir -p "$TMP/m" "$TMP/data"
printf 'CREATE TABLE t (a INTEGER);\nINSERT INTO t VALUES (1);\n' >"$TMP/m/0001_t.sql"
run_ferry migrate --database-url "sqlite://$TMP/data/app.db" --migrations "$TMP/m"
expect_status 0 "static ferry migrate creates a database"
printf 'ALTER TABLE t ADD COLUMN b TEXT;\n' >"$TMP/m/0002_b.sql"
run_ferry migrate --database-url "sqlite://$TMP/data/app.db" --migrations "$TMP/m"
expect_status 0 "static ferry migrate upgrades it"
like "$err" 'snapshot written' "with a snapshot"
is "$(sqlite3 "$TMP/data/app.db" 'SELECT max(version) FROM ferry_migrations')" 2 "database at version 2"
is "$(sqlite3 "$TMP/data/app.db" "SELECT sha256 FROM ferry_migrations WHERE version = 1")" \
	"$(sha256sum "$TMP/m/0001_t.sql" | cut -d' ' -f1)" "SHA-256 of the migration recorded"

# SQLite features an app's migrations may use: the static SQLite has them
# like Debian's (FTS5, R-Tree, JSON, math functions).
printf '%s\n' "CREATE VIRTUAL TABLE docs USING fts5(body);" \
	"CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);" \
	"CREATE TABLE j AS SELECT json_extract('{\"a\": 2}', '\$.a') AS a, sqrt(16.0) AS r;" \
	>"$TMP/m/0003_features.sql"
run_ferry migrate --database-url "sqlite://$TMP/data/app.db" --migrations "$TMP/m"
expect_status 0 "FTS5, R-Tree, JSON and math functions in a migration"
is "$(sqlite3 "$TMP/data/app.db" 'SELECT a || "," || r FROM j')" "2,4.0" "JSON and math results"

run_ferry status --database-url "sqlite://$TMP/data/app.db" --migrations "$TMP/m"
expect_status 0 "static ferry status"

done_testing
