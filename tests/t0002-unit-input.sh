#!/bin/sh
# Unit tests of what reads input from outside (tests/unit/input.c): the C
# program prints its own TAP.
exec "${UNIT_INPUT:-$(dirname "$0")/../build/unit-input}"
