#!/bin/sh
# The demo "server": shows what it finds in the database, then exits like a
# server that was stopped. ferry runs it only once the schema is right.
db=$1
echo "demo server (pid $$): $(sqlite3 "$db" 'SELECT count(*) FROM notes') note(s), tables: $(sqlite3 "$db" "SELECT group_concat(name, ' ') FROM sqlite_master WHERE type='table'")"
