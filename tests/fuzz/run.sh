#!/bin/sh
# tests/fuzz/run.sh OUT NAME...: runs each libFuzzer harness OUT/fuzz-NAME
# for $FUZZ_SECONDS (default 60) from its seed corpus tests/fuzz/corpus/NAME
# (and its dictionary tests/fuzz/NAME.dict when there is one), one after
# the other, then prints one line of figures per harness. New inputs go to
# OUT/corpus/NAME, so the committed seeds stay as they are; a crash's input
# goes to OUT/crashes/NAME-*. Exits 1 when any harness crashed.
set -u
out=$1
shift
secs=${FUZZ_SECONDS:-60}
src=$(cd "$(dirname "$0")" && pwd)
failed=0
summary=

mkdir -p "$out/crashes"
for name in "$@"; do
	mkdir -p "$out/corpus/$name"
	dict=
	[ -f "$src/$name.dict" ] && dict=-dict=$src/$name.dict
	echo "fuzz: $name for $secs s ..."
	: >"$out/$name.start"
	# shellcheck disable=SC2086
	"$out/fuzz-$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/crashes/$name-" $dict \
		"$out/corpus/$name" "$src/corpus/$name" >"$out/$name.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$name.log")
	units=$(ls "$out/corpus/$name" | wc -l)
	seeds=$(ls "$src/corpus/$name" | wc -l)
	crashes=$(find "$out/crashes" -name "$name-*" -newer "$out/$name.start" | wc -l)
	line="$name: ${runs:-?} runs in $secs s (${speed:-?}/s), $seeds seeds, $units new inputs kept, $crashes crash files"
	if [ "$rc" != 0 ]; then
		failed=1
		line="$line: FAILED (exit $rc, see $out/$name.log)"
		grep -E -A25 'PROPERTY VIOLATED|ERROR: (AddressSanitizer|libFuzzer)|runtime error' \
			"$out/$name.log" | head -40
	fi
	summary="$summary$line
"
done
printf '%s' "$summary"
exit $failed
