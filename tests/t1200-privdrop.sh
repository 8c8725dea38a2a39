#!/bin/sh
# [run] user: the server runs as another user (like su-exec): groups, user,
# HOME; privileges cannot be regained; a missing user is a config error.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip "privilege drop" "needs root"
	done_testing
	exit
fi

ids='echo "$(id -u) $(id -g) $(id -G) $HOME"'
home_of() { getent passwd "$1" | cut -d: -f6; }

NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
NOBODY_GROUPS=$(id -G nobody)
printf '[run]\nuser = nobody\n' >"$TMP/nobody.ini"
run_ferry -c "$TMP/nobody.ini" run -- sh -c "$ids"
expect_status 0 "user = nobody"
is "$out" "$NOBODY_UID $NOBODY_GID $NOBODY_GROUPS $(home_of nobody)" \
	"user = nobody: uid, gid, groups and HOME of nobody"

HOME=/root FERRY_RUN_USER=nobody run_ferry run -- sh -c "$ids"
is "$out" "$NOBODY_UID $NOBODY_GID $NOBODY_GROUPS $(home_of nobody)" \
	"FERRY_RUN_USER=nobody: the same, HOME replaced"

if getent passwd 1234 >/dev/null || getent group 5678 >/dev/null; then
	skip "numeric user without passwd entry" "uid 1234 or gid 5678 exists here"
else
	FERRY_RUN_USER=1234:5678 run_ferry run -- sh -c "$ids"
	expect_status 0 "user = 1234:5678 (no passwd entry)"
	is "$out" "1234 5678 5678 /" "uid 1234, gid 5678, groups exactly 5678, HOME /"
	FERRY_RUN_USER=1234 run_ferry run -- sh -c "$ids"
	is "$out" "1234 1234 1234 /" "user = 1234: gid and groups default to the uid"
fi
FERRY_RUN_USER=nobody:5678 run_ferry run -- sh -c "$ids"
is "$out" "$NOBODY_UID 5678 5678 $(home_of nobody)" \
	"user = nobody:5678: an explicit group replaces the supplementary groups"

# no way back to root
FERRY_RUN_USER=nobody run_ferry run -- perl -e '
	$< = 0; $> = 0; $( = 0; $) = "0 0";
	open(my $s, "<", "/proc/self/status") or die;
	my %h = map { /^(\w+):\s*(.*)/ ? ($1, $2) : () } <$s>;
	print "$< $> $h{CapEff} $h{CapPrm}\n"'
is "$out" "$NOBODY_UID $NOBODY_UID 0000000000000000 0000000000000000" \
	"the server cannot become root again and has no capabilities"

printf '[run]\nuser = nobody\nexec = true\n' >"$TMP/exec.ini"
run_ferry -c "$TMP/exec.ini" run -- sh -c "$ids"
expect_status 0 "user = nobody with exec = true"
is "$out" "$NOBODY_UID $NOBODY_GID $NOBODY_GROUPS $(home_of nobody)" \
	"exec = true drops privileges too"

# in a PID namespace, as in a container
in_pidns -c "$TMP/nobody.ini" run -- sh -c "$ids; exit 9"
expect_status 9 "user = nobody as PID 1: the server's status"
is "$out" "$NOBODY_UID $NOBODY_GID $NOBODY_GROUPS $(home_of nobody)" "user = nobody as PID 1"

# supplementary groups from the user's entry: in a private mount namespace
# with its own /etc/passwd and /etc/group, the host's files untouched
cp /etc/passwd "$TMP/passwd"
cp /etc/group "$TMP/group"
echo "ferrytest:x:2345:2345::/home/ferrytest:/bin/sh" >>"$TMP/passwd"
printf 'ferrytest:x:2345:\nftone:x:3001:ferrytest\nfttwo:x:3002:nobody,ferrytest\n' >>"$TMP/group"
if unshare --mount true 2>/dev/null; then
	cat >"$TMP/groups.sh" <<EOS
mount --make-rprivate / && mount --bind "$TMP/passwd" /etc/passwd &&
	mount --bind "$TMP/group" /etc/group && exec "\$@"
EOS
	FERRY_RUN_USER=ferrytest run_cmd unshare --mount sh "$TMP/groups.sh" \
		"$FERRY" run -- sh -c "$ids"
	expect_status 0 "a user with supplementary groups"
	is "$out" "2345 2345 2345 3001 3002 /home/ferrytest" \
		"the user's supplementary groups are set (initgroups)"
	FERRY_RUN_USER=ferrytest:fttwo run_cmd unshare --mount sh "$TMP/groups.sh" \
		"$FERRY" run -- sh -c "$ids"
	is "$out" "2345 3002 3002 /home/ferrytest" "user = NAME:GROUP by names"
else
	skip "a user with supplementary groups" "no mount namespace"
	skip "user = NAME:GROUP by names" "no mount namespace"
fi

# errors: 78, naming what is wrong; the server never starts
printf '[run]\nuser = nosuchuser\n' >"$TMP/bad.ini"
run_ferry -c "$TMP/bad.ini" run -- sh -c 'touch "$0/started"' "$TMP"
expect_status 78 "user = nosuchuser"
like "$err" "nosuchuser" "the message names the user"
check "the server did not start" [ ! -e "$TMP/started" ]
FERRY_RUN_USER=nosuchuser in_pidns run -- true
expect_status 78 "user = nosuchuser as PID 1"
FERRY_RUN_USER=nobody:nosuchgroup run_ferry run -- true
expect_status 78 "user = nobody:nosuchgroup"
like "$err" "nosuchgroup" "the message names the group"
FERRY_RUN_USER=:5 run_ferry run -- true
expect_status 78 "user = :5"
FERRY_RUN_USER=nosuchuser FERRY_RUN_EXEC=true run_ferry run -- true
expect_status 78 "user = nosuchuser with exec = true"

# ferry itself not root (a USER line, docker run --user, runAsUser)
if command -v setpriv >/dev/null && command -v sqlite3 >/dev/null; then
	as_nobody() { run_cmd setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" \
		--clear-groups "$FERRY" "$@"; }
	mkdir -p "$TMP/mig" "$TMP/data"
	echo 'CREATE TABLE t (x INTEGER);' >"$TMP/mig/0001_t.sql"
	chown "$NOBODY_UID:$NOBODY_GID" "$TMP/data"

	# asked for another user: refused before the database is touched
	FERRY_RUN_USER=1234 DATABASE_URL=$TMP/data/app.db as_nobody \
		--migrations "$TMP/mig" run -- sh -c 'touch "$0/started"' "$TMP"
	expect_status 78 "not root: user = 1234 is refused"
	like "$err" "uid 1234.*runs as uid $NOBODY_UID" "names the asked and the current uid"
	like "$err" "not as root" "says why it cannot switch"
	check "not root: the server did not start" [ ! -e "$TMP/started" ]
	check "not root: the database was not created" [ ! -e "$TMP/data/app.db" ]

	# asked for the user it already is: no switch, the upgrade and the server run
	FERRY_RUN_USER=nobody DATABASE_URL=$TMP/data/app.db as_nobody \
		--migrations "$TMP/mig" run -- sh -c "$ids"
	expect_status 0 "already user = nobody: runs"
	is "$out" "$NOBODY_UID $NOBODY_GID $NOBODY_GID $HOME" "the server runs as ferry's own user"
	is "$(sqlite3 "$TMP/data/app.db" 'SELECT count(*) FROM ferry_migrations')" 1 \
		"already user = nobody: the database was migrated"
	FERRY_RUN_USER=$NOBODY_UID:$NOBODY_GID as_nobody run -- true
	expect_status 0 "already user = UID:GID (numeric): runs"
	FERRY_RUN_USER=$NOBODY_UID:5678 as_nobody run -- true
	expect_status 78 "same uid, another group: refused"
	like "$err" "gid 5678" "names the asked group"
else
	skip "not root: user = 1234 is refused" "no setpriv or no sqlite3"
fi
done_testing
