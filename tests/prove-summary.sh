#!/bin/sh
# prove-summary.sh prove ARGS... TESTS: runs prove, then says which tests
# were skipped and why: each "ok N - DESC # skip REASON" line and each
# "1..0 # SKIP REASON" file, with the count. prove itself names only the
# files skipped whole, so a test skipped inside a file (the static-binary
# tests without make static, the root-only tests) would pass unseen.
# The exit status is prove's.
here=$(cd "$(dirname "$0")" && pwd)
FERRY_TAP_LOG=$(mktemp -d /tmp/ferry-tap.XXXXXX) || exit 1
export FERRY_TAP_LOG
trap 'rm -rf "$FERRY_TAP_LOG"' EXIT
prog=$1
shift
"$prog" --exec "sh $here/helpers/tap-tee.sh" "$@"
rc=$?
for f in "$FERRY_TAP_LOG"/*.tap; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .tap)
	awk -v name="$name" '
		/^1\.\.0([ \t]|$)/ {
			r = $0; sub(/^1\.\.0[ \t]*(#[ \t]*([Ss][Kk][Ii][Pp][A-Za-z]*)?[ \t]*)?/, "", r)
			print name ": (whole file) " (r == "" ? "no reason given" : r); next }
		/^ok[ \t].*#[ \t]*[Ss][Kk][Ii][Pp]/ {
			d = $0; sub(/^ok[ \t]+[0-9]*[ \t]*(-[ \t]*)?/, "", d)
			r = d; sub(/^.*#[ \t]*[Ss][Kk][Ii][Pp][A-Za-z]*[ \t]*/, "", r)
			sub(/[ \t]*#[ \t]*[Ss][Kk][Ii][Pp].*$/, "", d)
			print name ": " d ": " (r == "" ? "no reason given" : r) }
	' "$f"
done >"$FERRY_TAP_LOG/skipped"
n=$(wc -l <"$FERRY_TAP_LOG/skipped")
if [ "$n" -eq 0 ]; then
	echo "Skipped: none"
else
	echo "Skipped: $n (tests, or files skipped whole) in $(cut -d: -f1 "$FERRY_TAP_LOG/skipped" | sort -u | wc -l) file(s):"
	sed 's/^/  /' "$FERRY_TAP_LOG/skipped"
fi
exit "$rc"
