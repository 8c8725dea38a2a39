#!/bin/sh
# [migrations] mode = app on SQLite: a server that migrates itself
# (helpers/selfmigrating-app.py). ferry records the image's identity in the
# database at the last healthy boot; the same identity starts the server
# without a snapshot or a write; another one takes a snapshot, then runs
# the server's migrate command (or the server itself under the health
# gate), and restores the snapshot when that fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
. "$(dirname "$0")/health-lib.sh"

APP=$TESTS_DIR/helpers/selfmigrating-app.py
export FERRY_MIGRATIONS_MODE=app FERRY_APP_VERSION_ENV=APP_VERSION APP_PORT=$HPORT
export FERRY_MIGRATIONS_COMMAND="python3 $APP migrate"
unset FERRY_APP_VERSION FERRY_APP_VERSION_FROM_FILE APP_UNHEALTHY APP_PSQL

# af DB VERSION ARGS...: ferry against DB with the image at VERSION
af() {
	_db=$1 _v=$2
	shift 2
	APP_DB=$_db APP_VERSION=$_v run_ferry --database-url "sqlite://$_db" "$@"
}
identity() { q "$1" 'SELECT identity FROM ferry_app'; }
schema() { q "$1" 'SELECT max(version) FROM app_schema'; }
# wait_long CMD...: wait_for, three times over: a python server starting
# on a loaded machine (a readiness wait, not a timing assertion)
wait_long() { wait_for "$@" || wait_for "$@" || wait_for "$@"; }
RECORD() { cat "$DBDIR/.ferry/failed-upgrade" 2>/dev/null; }

# ---- first boot: a new database ---------------------------------------------
new_db app
af "$DB" 1.0 migrate
expect_status 0 "first boot: the server's migrate command ran"
like "$err" "new database, the image is '1.0' — no snapshot needed" "first boot: says no snapshot is needed"
like "$out$err" "app 1.0: applying migration 1" "first boot: the command's output is passed through"
is "$(identity "$DB")" "1.0" "first boot: the identity is recorded in the database"
is "$(schema "$DB")" 1 "first boot: the app migrated itself to its schema 1"
check "first boot: no snapshot of a new database" test ! -e "$DB.pre-upgrade"
q "$DB" "INSERT INTO notes (body) VALUES ('one'), ('two');"

# ---- the same identity: no snapshot, no write ----------------------------------
sum=$(filesum "$DB") stamp=$(mtime "$DB")
af "$DB" 1.0 run -- /bin/true
expect_status 0 "same identity: the server ran"
like "$err" "app identity '1.0' is the one recorded at the last healthy boot .*no snapshot" \
	"same identity: the log says nothing is to do"
unlike "$out$err" "applying migration|running the server's migrations" "same identity: the command did not run"
check "same identity: no .pre-upgrade file is written" test ! -e "$DB.pre-upgrade"
is "$(filesum "$DB")" "$sum" "same identity: not a byte of the database changed"
is "$(mtime "$DB")" "$stamp" "same identity: the file was not even rewritten"

# ---- status shows both identities ------------------------------------------------
af "$DB" 2.0 status
expect_status 0 "status"
like "$out" "^app identity: 1\.0 recorded at [0-9T:-]+Z, the image is '2\.0'$" "status: the recorded and the current identity"
af "$DB" 2.0 status --json
is "$(printf '%s\n' "$out" | python3 "$TESTS_DIR/helpers/status-shape.py")" ok "status --json: the documented shape"
like "$out" '"app":\{"recorded":"1\.0","recorded_at":"[0-9T:-]+Z","current":"2\.0"\}' "status --json: the app object"
af "$DB" 2.0 doctor
expect_status 0 "doctor in app mode: no failing check"
like "$out" "^ok +migrations: mode = app: the server's own" "doctor: the migrations are the server's"
af "$DB" 2.0 migrate --dry-run
like "$out" "plan: snapshot, then the server's migrations" "migrate --dry-run: the plan"
is "$(filesum "$DB")" "$sum" "status and dry-run changed nothing"

# ---- another identity: snapshot, command, recorded -------------------------------
af "$DB" 2.0 migrate
expect_status 0 "new identity: upgraded"
like "$err" "app identity changed: 1\.0 recorded, the image is '2\.0' — snapshot first" "new identity: says why it snapshots"
check "new identity: the snapshot was taken" test -f "$DB.pre-upgrade"
is "$(q "$DB.pre-upgrade" 'SELECT identity FROM ferry_app')" "1.0" "new identity: the snapshot holds the old record"
is "$(identity "$DB")" "2.0" "new identity: recorded after the command succeeded"
is "$(q "$DB" 'SELECT body, author FROM notes ORDER BY id' | tr '\n' ' ')" "one|someone two|someone " \
	"new identity: the server's migration 2 ran on the data"
check "new identity: no journal left" test ! -e "$DBDIR/.ferry/journal"

# ---- a failing self-migration is restored ----------------------------------------
before=$(dump "$DB")
af "$DB" 3.0-broken migrate
expect_status 70 "failing command: 70"
like "$err" "\[migrations\] command 'python3 [^']*selfmigrating-app.py migrate' failed with status 1 — database restored from $DB\.pre-upgrade, back at app identity 2\.0" \
	"failing command: names the command, its status and the restore"
is "$(dump "$DB")" "$before" "failing command: the data is exactly as before (sqlite3 .dump)"
is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'tags'")" 0 "failing command: its half-applied migration is gone"
like "$(RECORD)" "^identity=3\.0-broken$" "failing command: the failure is recorded with the identity"

# ---- docker stop while the command runs: undone, not counted as a failure ----
before=$(dump "$DB")
APP_DB=$DB APP_VERSION=3.0 FERRY_MIGRATIONS_COMMAND="sh -c 'python3 $APP migrate && touch $TMP/migrated && exec sleep 60'" \
	start_bg "$FERRY" --database-url "sqlite://$DB" migrate
check "stop: the command has migrated and waits" wait_long test -e "$TMP/migrated"
kill -TERM "$bgpid"
finish_bg
expect_status 143 "stop: ferry exits with the command's status"
like "$err" "command '.*' was stopped with status 143 — database restored from $DB\.pre-upgrade" "stop: says it was stopped, restored"
is "$(dump "$DB")" "$before" "stop: what the command did is undone"
unlike "$(RECORD)" "identity=3\.0$" "stop: not recorded as a failure of 3.0"
rm -f "$TMP/migrated"

# ---- the guard is keyed by identity ------------------------------------------------
sum=$(filesum "$DB")
af "$DB" 3.0-broken migrate
expect_status 75 "guard: the same identity is not tried again"
like "$err" "upgrade to app identity '3\.0-broken' failed 1 time already .*untouched at app identity '2\.0'" \
	"guard: says which identity failed and where the database stands"
is "$(filesum "$DB")" "$sum" "guard: the database was not touched"
af "$DB" 2.1 migrate
expect_status 0 "guard: an image with another identity (the fix) is not blocked"
is "$(identity "$DB")" "2.1" "guard: the fixed identity is recorded"
check "guard: the failure record is gone after a success" test ! -e "$DBDIR/.ferry/failed-upgrade"

# ---- no command: the health gate decides -----------------------------------------------
export FERRY_HEALTH_URL=$HURL
before=$(dump "$DB")
APP_UNHEALTHY=1 FERRY_MIGRATIONS_COMMAND= af "$DB" 2.2 run -- python3 "$APP" serve
expect_status 70 "gate, unhealthy: 70"
like "$err" "the server with app identity '2\.2' was not healthy \(not healthy within 4 s.*restored from $DB\.pre-upgrade, back at app identity 2\.1" \
	"gate, unhealthy: says so, and that the snapshot went back"
is "$(dump "$DB")" "$before" "gate, unhealthy: what the new server wrote is undone"
is "$(identity "$DB")" "2.1" "gate, unhealthy: the old identity stays recorded"

# (2.2 failed: the guard keeps it out; the healthy release is 2.3)
APP_DB=$DB APP_VERSION=2.3 FERRY_HEALTH_TIMEOUT_SECONDS=60 FERRY_MIGRATIONS_COMMAND= start_bg "$FERRY" --database-url "sqlite://$DB" run -- python3 "$APP" serve
check "gate, healthy: ferry says the server is healthy" wait_long has_text "$TMP/.err" \
	"the server is healthy after [0-9.]+ s \(HTTP 200 OK\): the upgrade is kept"
is "$(identity "$DB")" "2.3" "gate, healthy: the identity is recorded once healthy"
check "gate, healthy: the journal is cleared" test ! -e "$DBDIR/.ferry/journal"
kill -TERM "$bgpid"
finish_bg
is "$(q "$DB" 'SELECT version FROM boots')" "2.3" "gate, healthy: what the server wrote is kept"

FERRY_HEALTH_URL= FERRY_MIGRATIONS_COMMAND= af "$DB" 2.4 migrate
expect_status 78 "no command and no health gate: 78"
like "$err" "mode = app without \[migrations\] command needs a health gate" "no command and no gate: says why"
FERRY_MIGRATIONS_COMMAND= af "$DB" 2.4 migrate
expect_status 0 "ferry migrate without a command: nothing to do"
like "$err" "the server migrates itself when .ferry run. starts it" "ferry migrate without a command: says so"
is "$(identity "$DB")" "2.3" "ferry migrate without a command: nothing recorded"
unset FERRY_HEALTH_URL

# ---- version_from_file: the identity is the file's sha256 ---------------------------------
new_db vfile
printf 'server build 1\n' >"$TMP/server"
FERRY_APP_VERSION_ENV= FERRY_APP_VERSION_FROM_FILE=$TMP/server af "$DB" 1.0 migrate
expect_status 0 "version_from_file: first boot"
is "$(identity "$DB")" "sha256:$(filesum "$TMP/server")" "version_from_file: the identity is sha256 of the file"
FERRY_APP_VERSION_ENV= FERRY_APP_VERSION_FROM_FILE=$TMP/server af "$DB" 1.0 migrate
like "$err" "is the one recorded" "version_from_file: the same file, nothing to do"
check "version_from_file: no snapshot" test ! -e "$DB.pre-upgrade"
printf 'server build 2\n' >"$TMP/server"
FERRY_APP_VERSION_ENV= FERRY_APP_VERSION_FROM_FILE=$TMP/server af "$DB" 1.0 migrate
expect_status 0 "version_from_file: a changed file is a new identity"
check "version_from_file: snapshot taken" test -f "$DB.pre-upgrade"
is "$(identity "$DB")" "sha256:$(filesum "$TMP/server")" "version_from_file: the new sum recorded"

# ---- configuration refusals ---------------------------------------------------------------
sum=$(filesum "$DB")
FERRY_APP_VERSION_ENV= af "$DB" 1.0 migrate
expect_status 78 "no identity key: 78"
like "$err" "needs exactly one of \[app\] version, \[app\] version_env and \[app\] version_from_file \(none is set\)" \
	"no identity key: names the keys"
FERRY_APP_VERSION=1.0 af "$DB" 1.0 migrate
expect_status 78 "two identity keys: 78"
like "$err" "more than one is set" "two identity keys: says so"
FERRY_APP_VERSION_ENV=NO_SUCH_VARIABLE af "$DB" 1.0 migrate
expect_status 78 "version_env naming an unset variable: 78"
like "$err" "\[app\] version_env = NO_SUCH_VARIABLE: the variable is not set" "version_env: names the variable"
FERRY_APP_VERSION_ENV= FERRY_APP_VERSION_FROM_FILE=$TMP/nothing af "$DB" 1.0 migrate
expect_status 78 "version_from_file missing: 78"
like "$err" "\[app\] version_from_file '$TMP/nothing': cannot read it" "version_from_file missing: names the file"
FERRY_MIGRATIONS_COMMAND="'unclosed" af "$DB" 1.0 migrate
expect_status 78 "a command with an unclosed quote: 78"
FERRY_MIGRATIONS_MODE=sideways af "$DB" 1.0 migrate
expect_status 78 "an unknown mode: 78"
like "$err" "FERRY_MIGRATIONS_MODE.*expected in-place, rebuild or app" "an unknown mode: the choices"
is "$(filesum "$DB")" "$sum" "refusals: nothing was changed"
af "$DB" 1.0 config
like "$out" "\[migrations\] mode +=  *app" "ferry config shows mode = app"

# ---- a crash mid app-upgrade is undone at the next boot --------------------------------
new_db crash
af "$DB" 1.0 migrate
q "$DB" "INSERT INTO notes (body) VALUES ('kept');"
before=$(dump "$DB")
FERRY_TEST_CRASH_AT=app:migrated af "$DB" 2.0 migrate
expect_status 137 "crash after the command: ferry killed itself there"
is "$(q "$DB" 'SELECT max(version) FROM app_schema')" 2 "crash after the command: the server's migration had run"
af "$DB" 1.0 migrate
expect_status 0 "crash after the command: the next boot (old image) recovers"
like "$err" "interrupted \(phase migrating\): restoring the database from $DB\.pre-upgrade" "crash: says it restores"
is "$(dump "$DB")" "$before" "crash: the database is exactly as before the upgrade"
check "crash: no journal left" test ! -e "$DBDIR/.ferry/journal"

FERRY_TEST_CRASH_AT=app:recorded af "$DB" 2.0 migrate
expect_status 137 "crash after the record: ferry killed itself there"
af "$DB" 2.0 migrate
expect_status 0 "crash after the record: the next boot recovers"
like "$err" "upgrade to identity '2\.0' was interrupted \(phase done\) after the identity was recorded: it is kept" \
	"crash after the record: the upgrade is kept"
is "$(identity "$DB")" "2.0" "crash after the record: at the new identity"
is "$(schema "$DB")" 2 "crash after the record: with the migrated schema"

FERRY_TEST_CRASH_AT=journal:snapshotting af "$DB" 2.1 migrate
expect_status 137 "crash while snapshotting"
sum=$(filesum "$DB")
af "$DB" 2.0 migrate
expect_status 0 "crash while snapshotting: the next boot discards the partial snapshot"
is "$(filesum "$DB")" "$sum" "crash while snapshotting: the database was not touched"

done_testing
