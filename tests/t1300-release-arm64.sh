#!/bin/sh
# The released linux-arm64 binary (make static-arm64, cross-built with musl)
# run under qemu user emulation: it is an arm64 static executable, `version`
# names the target, `migrate` upgrades a SQLite database (the ledger read
# back with the host's sqlite3), and `run` is a subreaper that reaps an
# orphaned grandchild and passes the server's exit status through.
# FERRY_ARM64 is the binary's path; make check-arm64 builds and sets it.
if [ -z "${FERRY_ARM64:-}" ]; then
	echo "1..0 # SKIP FERRY_ARM64 is not set (make check-arm64 builds the arm64 binary and runs this test)"
	exit 0
fi
QEMU=${QEMU_AARCH64:-$(command -v qemu-aarch64-static || command -v qemu-aarch64 || :)}
if [ -z "$QEMU" ]; then
	echo "1..0 # SKIP no qemu-aarch64-static (apt-get install qemu-user-static)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

# every ferry of this script is the arm64 one, run by qemu
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$QEMU" "$FERRY_ARM64" >"$TMP/ferry-arm64"
chmod +x "$TMP/ferry-arm64"
FERRY=$TMP/ferry-arm64

run_cmd file -L "$FERRY_ARM64"
like "$out" 'ARM aarch64' "file: an aarch64 executable"
like "$out" 'statically linked' "file: statically linked"
run_cmd readelf -lW "$FERRY_ARM64"
unlike "$out" 'INTERP' "no program interpreter"

# ---- version ---------------------------------------------------------------
run_ferry version
expect_status 0 "ferry version under qemu"
like "$out" '^ferry [0-9]+\.[0-9]+\.[0-9]+' "version: ferry's version"
like "$out" '^static musl build: musl [0-9].*, for linux-arm64$' "version: built for linux-arm64"
like "$out" 'sqlite3 +[0-9]' "version: the SQLite it carries"

# ---- migrate on SQLite -----------------------------------------------------
make_std_migrations
new_db arm
fy "$DB" "$TMP/m1" migrate
expect_status 0 "migrate: first boot creates the database"
is "$(ledger_versions "$DB")" "1" "migrate: the ledger has version 1 (host sqlite3)"
seed_users "$DB"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "migrate: 1 -> 3"
is "$(ledger_versions "$DB")" "1 2 3" "migrate: the ledger has versions 1 2 3"
is "$(q "$DB" 'SELECT count(*) FROM posts')" 3 "migrate: the data went through 0003"
is "$(q "$DB" 'SELECT count(*) FROM ferry_migrations WHERE dirty = 0 AND length(sha256) = 64')" \
	3 "migrate: clean ledger rows with their sha256"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "migrate: the database is intact"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "migrate: up to date"
is "$(ledger_versions "$DB")" "1 2 3" "migrate: nothing added when up to date"

# ---- run as a subreaper ----------------------------------------------------
# The server starts a child that forks a grandchild and exits at once: the
# grandchild is orphaned to ferry, exits, and must be reaped (a zombie keeps
# its /proc entry). The server then exits 7, which ferry passes through.
cat >"$TMP/server" <<-'EOF2'
#!/bin/sh
d=$1
echo $PPID >"$d/ferry.pid"
sh -c 'sleep 1 & echo $! >"$0"' "$d/g.pid"
g=$(cat "$d/g.pid")
sed -n 's/^PPid:[[:space:]]*//p' "/proc/$g/status" >"$d/g.ppid"
i=0
while [ -e "/proc/$g" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if [ -e "/proc/$g" ]; then echo "not reaped: $(cat "/proc/$g/stat")" >"$d/result"; else echo reaped >"$d/result"; fi
exit 7
EOF2
chmod +x "$TMP/server"
mkdir -p "$TMP/runcwd"
cd "$TMP/runcwd" || exit 1

# run_orphan DESC RUNNER: ferry run (through RUNNER) and the three checks
run_orphan() {
	_desc=$1
	shift
	rm -f "$TMP/ferry.pid" "$TMP/g.ppid" "$TMP/result"
	"$@" run -- "$TMP/server" "$TMP"
	expect_status 7 "$_desc: the server's exit status is passed through"
	if [ "$_desc" = direct ] && grep -q 'cannot become a subreaper' "$TMP/.err"; then
		# qemu-user before 8 answers PR_SET_CHILD_SUBREAPER with EINVAL;
		# ferry says so and goes on, orphans then go to the host's init
		like "$err" 'warning: cannot become a subreaper' "direct: ferry says it cannot be a subreaper here"
		skip "direct: the orphan reparented to ferry and reaped" "this qemu ($("$QEMU" --version | head -n 1)) refuses PR_SET_CHILD_SUBREAPER; PID 1 below covers the reaping"
		return 0
	fi
	is "$(cat "$TMP/g.ppid" 2>/dev/null)" "$(cat "$TMP/ferry.pid" 2>/dev/null)" \
		"$_desc: the orphaned grandchild was reparented to ferry"
	is "$(cat "$TMP/result" 2>/dev/null)" reaped "$_desc: the grandchild was reaped after it exited"
}
run_orphan direct run_ferry
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	# ferry (qemu) as PID 1 of a PID namespace: orphans come to it
	run_orphan "PID 1" in_pidns
	is "$(cat "$TMP/ferry.pid" 2>/dev/null)" 1 "PID 1: ferry is PID 1 of the namespace"
else
	skip "ferry run as PID 1 under qemu" "needs root and unshare"
fi
done_testing
