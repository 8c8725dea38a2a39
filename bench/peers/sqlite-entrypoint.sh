#!/bin/sh
# The docker-entrypoint.sh an operator would otherwise write for the boot
# fast path (bench/sqlite.sh times it against `ferry run`): find the
# newest migration the image ships, read the database's version from the
# ledger, refuse to start on a mismatch, else exec the server.
#
#   sqlite-entrypoint.sh DB MIGRATIONS-DIR COMMAND [ARG...]
set -eu
db=$1 dir=$2
shift 2
want=$(ls "$dir" | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -n 1)
have=$(sqlite3 "$db" 'SELECT coalesce(max(version), 0) FROM ferry_migrations')
if [ "$have" != "$want" ]; then
	echo "entrypoint: database at version $have, image expects $want" >&2
	exit 1
fi
exec "$@"
