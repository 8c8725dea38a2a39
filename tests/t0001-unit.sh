#!/bin/sh
# Unit tests of the parsers: the C program prints its own TAP; the error
# messages it provokes on purpose become labelled TAP comments.
exec sh "$(dirname "$0")/helpers/unit-stderr.sh" \
	"${UNIT_TESTS:-$(dirname "$0")/../build/unit-tests}"
