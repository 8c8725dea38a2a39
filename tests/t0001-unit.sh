#!/bin/sh
# Unit tests of the parsers: the C program prints its own TAP.
exec "${UNIT_TESTS:-$(dirname "$0")/../build/unit-tests}"
