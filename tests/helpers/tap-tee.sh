#!/bin/sh
# tap-tee.sh TEST: prove's --exec for tests/prove-summary.sh. Runs TEST as
# prove would and keeps a copy of its TAP in $FERRY_TAP_LOG/NAME.tap; the
# exit status is TEST's own.
t=$1
log=$FERRY_TAP_LOG/$(basename "$t").tap
{
	if [ -x "$t" ]; then "$t"; else sh "$t"; fi
	echo $? >"$log.rc"
} | tee "$log"
exit "$(cat "$log.rc")"
