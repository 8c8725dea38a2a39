# tests/dbmate-lib.sh: the real dbmate, from the npm registry (its package
# ships the binary), installed once into $DBMATE_CACHE (default
# build/dbmate-npm). Sets DBMATE; skips the script (with the reason) when
# npm or the registry is not there. Source it after lib.sh.
DBMATE_CACHE=${DBMATE_CACHE:-$(cd "$TESTS_DIR/.." && pwd)/build/dbmate-npm}
DBMATE=$DBMATE_CACHE/node_modules/.bin/dbmate
if [ ! -x "$DBMATE" ]; then
	command -v npm >/dev/null || { echo "1..0 # SKIP npm not installed (.ci/deps installs it)"; exit 0; }
	mkdir -p "$DBMATE_CACHE"
	if ! npm install --prefix "$DBMATE_CACHE" --no-audit --no-fund dbmate >"$DBMATE_CACHE/install.log" 2>&1; then
		echo "1..0 # SKIP cannot install dbmate from the npm registry: $(tail -1 "$DBMATE_CACHE/install.log")"
		exit 0
	fi
fi
"$DBMATE" --version >/dev/null 2>&1 || { echo "1..0 # SKIP dbmate does not run on this host"; exit 0; }

# dbm URL ARGS...: dbmate against URL, its output in $dout, status in $drc
dbm() {
	_url=$1
	shift
	dout=$("$DBMATE" --url "$_url" --no-dump-schema "$@" 2>&1)
	drc=$?
}
