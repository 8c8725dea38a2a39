#!/bin/sh
# Makes the files docker-compose.yml expects, once, next to it:
#   secrets/db_password   PostgreSQL's password (POSTGRES_PASSWORD_FILE)
#   secrets/database_url  the app's URL with that password (DATABASE_URL_FILE)
#   .env                  FERRY_SECRETS=./secrets, which docker-compose.yml
#                         requires, so that compose refuses clearly to run
#                         without these files
# An existing file is kept: run it again after deleting one to remake it.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
if [ ! -s secrets/db_password ]; then
	# letters and digits only, so the URL needs no percent-encoding
	pw=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
	printf '%s\n' "$pw" >secrets/db_password
fi
if [ ! -s secrets/database_url ]; then
	pw=$(head -n 1 secrets/db_password)
	printf 'postgres://notes:%s@db:5432/notes?sslmode=disable\n' "$pw" >secrets/database_url
fi
[ -s .env ] || printf 'FERRY_SECRETS=./secrets\n' >.env
echo "secrets in $(pwd)/secrets; now: docker compose up -d"
