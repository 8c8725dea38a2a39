#!/bin/sh
# Hostile archives, built here with python3's tarfile and the zstd CLI:
# absolute paths, '..', symlinks, hardlinks, devices and fifos, members
# not in the manifest, members larger than declared, a bad sha256, a
# truncated or corrupt stream, another compression, too many members or
# bytes. restore refuses each with exit 65 naming the member, in verify
# and in replace mode, and the database and data tree stay untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
command -v zstd >/dev/null || { echo "1..0 # skip no zstd CLI"; exit 0; }
command -v python3 >/dev/null || { echo "1..0 # skip no python3"; exit 0; }
make_std_migrations

v1_db live
UP=$TMP/live/uploads
mkdir -p "$UP/sub"
printf 'keep me' >"$UP/sub/file"
printf '[backup]\npaths = %s\n' "$UP" >"$TMP/ok.ini"

MK=$(dirname "$0")/helpers/hostile-archive.py
# the tree beside the database, but ferry's state dir (its lock file)
tree() {
	(cd "$1" && find . -path ./.ferry -prune -o -printf '%P %m %s\n' | LC_ALL=C sort
	find . -path ./.ferry -prune -o -type f -exec sha256sum {} + | LC_ALL=C sort)
}
before_db=$(filesum "$DB")
before_tree=$(tree "$TMP/live")

hostile() { # hostile CASE: builds $TMP/CASE.ferry
	python3 "$MK" "$1" "$TMP/$1.tar" "$DB" "$UP" && zstd -q -f "$TMP/$1.tar" -o "$TMP/$1.ferry"
}

refused() { # refused CASE PATTERN [INI]
	_ini=${3:-$TMP/ok.ini}
	for mode in verify replace; do
		run_ferry -c "$_ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
			restore "$TMP/$1.ferry" --mode $mode
		expect_status 65 "$1 ($mode): refused"
		like "$err" "$2" "$1 ($mode): the refusal names the member"
	done
	is "$(filesum "$DB")" "$before_db" "$1: the database is untouched"
	is "$(tree "$TMP/live")" "$before_tree" "$1: the data tree and its directory are untouched"
	is "$(ls -a "$TMP" | grep -c 'ferry-restore')" "0" "$1: no staging is left"
}

hostile good
run_ferry -c "$TMP/ok.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" restore "$TMP/good.ferry"
expect_status 0 "the test's own well-formed archive verifies (the builder is right)"

hostile absolute && refused absolute "member '/etc/evil' refused: absolute path"
hostile dotdot && refused dotdot "member 'paths/0/\.\./\.\./evil' refused: absolute path or '\.\.'"
hostile symlink && refused symlink "member 'paths/0/symlink' refused: links are not restored"
hostile hardlink && refused hardlink "member 'paths/0/hardlink' refused: links are not restored"
hostile fifo && refused fifo "member 'paths/0/fifo' refused: not a regular file or directory"
hostile device && refused device "member 'paths/0/device' refused: not a regular file or directory"
hostile unlisted && refused unlisted "member 'paths/0/unlisted' refused: not in the manifest"
hostile larger && refused larger "member 'paths/0/sub/file' refused: size differs from the manifest"
hostile badsum && refused badsum "member 'paths/0/sub/file' refused: sha256 differs from the manifest"

hostile good
size=$(stat -c %s "$TMP/good.ferry")
head -c $((size / 2)) "$TMP/good.ferry" >"$TMP/truncated.ferry"
refused truncated "[Tt]runcated"
cp "$TMP/good.ferry" "$TMP/corrupt.ferry"
printf 'garbage!garbage!' | dd of="$TMP/corrupt.ferry" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
refused corrupt "refused: |unreadable"
gzip -c "$TMP/good.tar" >"$TMP/gzip.ferry"
refused gzip "unreadable|refused"

printf '[backup]\npaths = %s\nmax_members = 2\n' "$UP" >"$TMP/few.ini"
cp "$TMP/good.ferry" "$TMP/members.ferry"
refused members "more members than \[backup\] max_members" "$TMP/few.ini"
printf '[backup]\npaths = %s\nmax_bytes = 100\n' "$UP" >"$TMP/small.ini"
cp "$TMP/good.ferry" "$TMP/bytes.ferry"
refused bytes "total size over \[backup\] max_bytes" "$TMP/small.ini"

# a manifest naming a data path the configuration does not have
printf '[backup]\npaths = %s/elsewhere\n' "$TMP" >"$TMP/other.ini"
run_ferry -c "$TMP/other.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
	restore "$TMP/good.ferry" --mode replace
expect_status 65 "a data path not in [backup] paths: refused"
like "$err" "data path '$UP' is not in \[backup\] paths" "the refusal names the path"
is "$(filesum "$DB")" "$before_db" "the database is untouched"

done_testing
