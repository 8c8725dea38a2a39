#!/bin/sh
# The upgrade script an operator would otherwise write (bench/sqlite.sh
# times it against `ferry migrate`): copy the database aside, apply each
# pending migration with the sqlite3 shell and record it in the ledger,
# put the copy back if one fails.
#
#   sqlite-upgrade.sh [--careful] DB MIGRATIONS-DIR
#
# --careful adds what ferry does besides: PRAGMA quick_check before and
# after, an fsync of the copy (sync FILE), one transaction per migration
# together with its ledger row, and a foreign_key_check.  Without it, it
# is the usual `cp app.db app.db.bak && sqlite3 app.db < 0002.sql && ...`.
set -eu
careful=0
if [ "$1" = --careful ]; then careful=1; shift; fi
db=$1 dir=$2

restore() {
	echo "upgrade: $1 failed, restoring $db.bak" >&2
	cp "$db.bak" "$db"
	exit 1
}

have=$(sqlite3 "$db" 'SELECT coalesce(max(version), 0) FROM ferry_migrations')
if [ $careful = 1 ]; then
	[ "$(sqlite3 "$db" 'PRAGMA quick_check')" = ok ] || { echo "upgrade: $db is corrupt" >&2; exit 1; }
fi
cp "$db" "$db.bak"
[ $careful = 1 ] && sync "$db.bak"
for f in "$dir"/*.sql; do
	name=$(basename "$f" .sql)
	v=$(expr "${name%%_*}" + 0)
	[ "$v" -le "$have" ] && continue
	if [ $careful = 1 ]; then
		{
			echo 'BEGIN IMMEDIATE;'
			cat "$f"
			echo "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms)"
			echo "  VALUES ($v, '$name', '', datetime('now'), 0);"
			echo 'COMMIT;'
		} | sqlite3 -bail "$db" || restore "$name"
		[ -z "$(sqlite3 "$db" 'PRAGMA foreign_key_check')" ] || restore "$name (foreign keys)"
	else
		sqlite3 -bail "$db" <"$f" || restore "$name"
		sqlite3 "$db" "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms)
			VALUES ($v, '$name', '', datetime('now'), 0)" || restore "$name"
	fi
done
if [ $careful = 1 ]; then
	[ "$(sqlite3 "$db" 'PRAGMA quick_check')" = ok ] || restore "the check after the upgrade"
fi
