#!/bin/sh
# Unit tests of what reads input from outside (tests/unit/input.c): the C
# program prints its own TAP; the error messages it provokes on purpose
# become labelled TAP comments.
exec sh "$(dirname "$0")/helpers/unit-stderr.sh" \
	"${UNIT_INPUT:-$(dirname "$0")/../build/unit-input}"
