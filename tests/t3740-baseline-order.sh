#!/bin/sh
# PostgreSQL: ferry baseline on a database built by hand (then migrate
# applies only the newer versions) and its refusals; out-of-order versions
# refused by default and applied with [migrations] allow_out_of_order;
# Flyway's repeatables applied once, and again after a change.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
unset FERRY_MIGRATIONS_LEDGER FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER FERRY_MIGRATIONS_FORMAT
make_std_pg_migrations
qp() { psql_as app appdb "$1"; }

# ---- baseline on a database built by hand --------------------------------------------
pg_fresh_appdb
qp "$(cat "$TMP/p3/0001_users.sql" "$TMP/p3/0002_email.sql")" >/dev/null
qp "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com')" >/dev/null
state=$(pg_state)
pgf "$TMP/p3" migrate
expect_status 65 "a database with tables but no ledger: refused"
like "$err" 'ferry baseline --version V' "the refusal points to ferry baseline"
pgf "$TMP/p3" baseline --version 7
expect_status 65 "baseline --version 7, not shipped: refused"
like "$err" "7 is not a version the image ships" "names the version"
same_state "$(pg_state)" "$state" "refused: database unchanged"

pgf "$TMP/p3" baseline --version 2
expect_status 0 "baseline --version 2"
like "$out" "0001_users \(version 1\)" "prints what it records: 1"
like "$out" "0002_email \(version 2\)" "prints what it records: 2"
unlike "$out" "0003" "and not 3"
is "$(qa 'SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version' | tr '\n' ' ')" \
	"1|0001_users|$(filesum "$TMP/p3/0001_users.sql")|f 2|0002_email|$(filesum "$TMP/p3/0002_email.sql")|f " \
	"the ledger has 1 and 2 with their checksums"
is "$(qa 'SELECT count(*) FROM users')" 1 "nothing ran: the data is as it was"
pgf "$TMP/p3" baseline --version 2
expect_status 65 "baseline again: the database already has a ledger"
pgf "$TMP/p3" migrate
expect_status 0 "migrate after the baseline"
like "$err" "applied 0003_posts" "applies 3"
unlike "$err" "applied 0001|applied 0002" "and only 3"
is "$(qa 'SELECT count(*) FROM posts')" 1 "3 ran on the data"

# baseline into Flyway's shape
pg_fresh_appdb
qp "$(cat "$TMP/p3/0001_users.sql")" >/dev/null
FERRY_MIGRATIONS_LEDGER=flyway pgf "$TMP/p3" baseline --version 1
expect_status 0 "baseline in Flyway's shape"
is "$(qa 'SELECT installed_rank, version, script, installed_by, success FROM flyway_schema_history')" \
	"1|0001|0001_users.sql|app|t" "flyway_schema_history has 1"
FERRY_MIGRATIONS_LEDGER=flyway pgf "$TMP/p3" migrate
expect_status 0 "migrate after it"
is "$(qa 'SELECT string_agg(version, $$ $$ ORDER BY installed_rank) FROM flyway_schema_history')" \
	"0001 0002 0003" "then 2 and 3"

# ---- out of order ----------------------------------------------------------------------
mkdir -p "$TMP/o13" "$TMP/o1234"
cp "$TMP/p3/0001_users.sql" "$TMP/p3/0003_posts.sql" "$TMP/o13/"
cp "$TMP/p4/"*.sql "$TMP/o1234/"
pg_fresh_appdb
pgf "$TMP/o13" migrate
expect_status 0 "setup: 1 and 3 applied"
qp "INSERT INTO users (name) VALUES ('Ada')" >/dev/null
state=$(pg_state)
pgf "$TMP/o1234" migrate
expect_status 65 "2 shipped below the applied 3: refused"
like "$err" "has 3 but not 2 \(0002_email\)" "names both versions"
like "$err" "allow_out_of_order" "names the key that allows it"
same_state "$(pg_state)" "$state" "refused: database unchanged"
FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER=true pgf "$TMP/o1234" migrate
expect_status 0 "allow_out_of_order = true: applied"
like "$(printf '%s' "$err" | tr '\n' ' ')" "0002_email.*0004_tags" "the hole first, then the newer one"
is "$(ledger_versions)" "1 2 3 4" "the ledger has every version"
is "$(qa 'SELECT email FROM users')" "ada@example.com" "2 ran on the data"

# ---- Flyway repeatables -------------------------------------------------------------------
FW=$TMP/fw
mkdir -p "$FW"
printf 'CREATE TABLE users (id bigserial PRIMARY KEY, name text);\n' >"$FW/V1__users.sql"
printf "INSERT INTO users (name) VALUES ('Ada');\n" >"$FW/V2__ada.sql"
cat >"$FW/R__user_names.sql" <<-'EOF'
	CREATE OR REPLACE VIEW user_names AS SELECT name FROM users;
	CREATE TABLE IF NOT EXISTS rep_runs (n int);
	INSERT INTO rep_runs VALUES (1);
	EOF
for ledger in flyway ferry; do
	pg_fresh_appdb
	cp -r "$FW" "$TMP/fw-$ledger"
	FERRY_MIGRATIONS_LEDGER=$ledger pgf "$TMP/fw-$ledger" migrate
	expect_status 0 "$ledger: versioned migrations and a repeatable"
	like "$(printf '%s' "$err" | tr '\n' ' ')" "V2__ada.*user_names" "$ledger: the repeatable after the versioned ones"
	is "$(qa 'SELECT name FROM user_names')" Ada "$ledger: the repeatable ran"
	FERRY_MIGRATIONS_LEDGER=$ledger pgf "$TMP/fw-$ledger" migrate
	expect_status 0 "$ledger: again"
	is "$(qa 'SELECT count(*) FROM rep_runs')" 1 "$ledger: unchanged, it does not run again"
	sed -i 's/SELECT name FROM users/SELECT upper(name) AS name FROM users/' "$TMP/fw-$ledger/R__user_names.sql"
	FERRY_MIGRATIONS_LEDGER=$ledger pgf "$TMP/fw-$ledger" migrate
	expect_status 0 "$ledger: the repeatable changed"
	is "$(qa 'SELECT name FROM user_names')" ADA "$ledger: it ran again"
	is "$(qa 'SELECT count(*) FROM rep_runs')" 2 "$ledger: once more, not twice"
	if [ $ledger = flyway ]; then
		is "$(qa "SELECT installed_rank, version IS NULL, description, script FROM flyway_schema_history WHERE version IS NULL ORDER BY installed_rank" | tr '\n' ' ')" \
			"3|t|user names|R__user_names.sql 4|t|user names|R__user_names.sql " \
			"flyway: a row without version each time it ran"
	else
		is "$(qa 'SELECT name, sha256 FROM ferry_repeatables')" \
			"user_names|$(filesum "$TMP/fw-ferry/R__user_names.sql")" "ferry's ledger: the last checksum in ferry_repeatables"
	fi
done

done_testing
