# ferry: `make` builds build/ferry, `make check` runs every test,
# `make asan` runs them again under AddressSanitizer + UBSan, `make fuzz`
# runs the libFuzzer harnesses of tests/fuzz/.

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wwrite-strings -Wformat=2
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I/usr/include/postgresql
# --as-needed: a library whose symbols ferry does not use is not loaded
# at every start (the loader's cost is most of the dynamic build's start-up)
LDFLAGS += -Wl,--as-needed
LDLIBS = -lsqlite3 -lpq -larchive -lzstd -linih -lcrypto

ifeq ($(SANITIZE),1)
OUT = build/asan
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
OUT = build
endif

# The static musl binary: .ci/build-static.sh builds the libraries from
# Debian's sources into STATIC_PREFIX, writes build/static/build-info.h
# (the versions `ferry version` prints) and comes back here with STATIC=1.
# (For arm64 it passes STATIC_CC, its cross musl-gcc, and STATIC_OUT.)
ifeq ($(STATIC),1)
STATIC_PREFIX ?= $(CURDIR)/build/static-deps/prefix
STATIC_OUT ?= build/static
STATIC_CC ?= musl-gcc
OUT = $(STATIC_OUT)
CC = $(STATIC_CC)
CFLAGS += -ffunction-sections -fdata-sections
CPPFLAGS := $(filter-out -I/usr/include/postgresql,$(CPPFLAGS)) \
	-I$(STATIC_PREFIX)/include -isystem $(STATIC_PREFIX)/kernel-include \
	-include $(CURDIR)/$(OUT)/build-info.h
LDFLAGS += -static -L$(STATIC_PREFIX)/lib -Wl,--gc-sections
LDLIBS = -lsqlite3 -lpq -lpgcommon_shlib -lpgport_shlib -larchive -lzstd \
	-linih -lssl -lcrypto
STATIC_DEPS = $(OUT)/build-info.h
endif

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:src/%.c=$(OUT)/obj/%.o)
LIB_OBJS = $(filter-out $(OUT)/obj/cli.o,$(OBJS))

all: $(OUT)/ferry

$(OUT)/obj/%.o: src/%.c $(wildcard src/*.h) $(STATIC_DEPS) | $(OUT)/obj
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -c -o $@ $<

$(OUT)/obj:
	mkdir -p $@

$(OUT)/ferry: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(OUT)/unit-tests: tests/unit/unit.c $(LIB_OBJS) $(wildcard src/*.h)
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ \
		tests/unit/unit.c $(LIB_OBJS) $(LDLIBS)

# Unit tests of what reads input from outside (redaction, libpq's refusals
# in ferry's words, log escaping, INI in memory), with what fuzzing found.
$(OUT)/unit-input: tests/unit/input.c $(LIB_OBJS) $(wildcard src/*.h)
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ \
		tests/unit/input.c $(LIB_OBJS) $(LDLIBS)

# prove, then tests/prove-summary.sh: which tests were skipped and why
# (prove names a skipped file, not a skipped test inside a file).
PROVE = sh tests/prove-summary.sh prove -j2 $(PROVE_FLAGS)

check: $(OUT)/ferry $(OUT)/unit-tests $(OUT)/unit-input
	FERRY=$(CURDIR)/$(OUT)/ferry UNIT_TESTS=$(CURDIR)/$(OUT)/unit-tests \
		UNIT_INPUT=$(CURDIR)/$(OUT)/unit-input \
		$(PROVE) tests/t[0-9]*.sh

deps:
	.ci/deps

asan:
	$(MAKE) check SANITIZE=1

# The demo application (compose-examples/demo/app.c): a notes server on
# SQLite with /health, used by make demo, the tests and the examples.
$(OUT)/demo-app: compose-examples/demo/app.c $(STATIC_DEPS) | $(OUT)/obj
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lsqlite3

demo-app: $(OUT)/demo-app

demo: $(OUT)/ferry $(OUT)/demo-app
	sh compose-examples/demo/run-demo.sh $(CURDIR)/$(OUT)/ferry $(CURDIR)/$(OUT)/demo-app

# make static: build/static/ferry (the libraries are cached in
# build/static-deps, or FERRY_STATIC_CACHE); make check-static runs the
# integration tests against it (the unit tests use the normal build).
static:
	+.ci/build-static.sh

# make demo with the static ferry and the static demo server
demo-static: static
	sh compose-examples/demo/run-demo.sh $(CURDIR)/build/static/ferry \
		$(CURDIR)/build/static/demo-app

check-static: static $(OUT)/unit-tests $(OUT)/unit-input
	FERRY=$(CURDIR)/build/static/ferry FERRY_STATIC=$(CURDIR)/build/static/ferry \
		UNIT_TESTS=$(CURDIR)/$(OUT)/unit-tests UNIT_INPUT=$(CURDIR)/$(OUT)/unit-input \
		$(PROVE) tests/t[0-9]*.sh

# make static-arm64: build/static-arm64/ferry, cross-built for linux-arm64
# (libraries cached in build/static-deps-arm64); make check-arm64 runs it
# under qemu user emulation (tests/t1300-release-arm64.sh).
static-arm64:
	+ARCH=arm64 .ci/build-static.sh

check-arm64: static-arm64
	FERRY=$(CURDIR)/build/static-arm64/ferry \
		FERRY_ARM64=$(CURDIR)/build/static-arm64/ferry \
		$(PROVE) tests/t1300-release-arm64.sh

# make release: dist/ferry-VERSION-linux-amd64 and -linux-arm64 (static,
# stripped) and dist/SHA256SUMS; refuses a binary built from sources older
# than Debian's security release unless FERRY_STATIC_ALLOW_OLDER=1.
release:
	+sh .ci/release.sh

# make format rewrites src/ and the test C files with .clang-format
# (clang-format 14, Debian 12's); make format-check fails on any file that
# is not formatted so (CI runs it). SQL tables sit in clang-format off/on
# fences, which it would mangle.
CLANG_FORMAT ?= clang-format-14
FORMAT_FILES = $(wildcard src/*.c src/*.h tests/unit/*.c tests/fuzz/*.c) \
	compose-examples/demo/app.c

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@bad=; for f in $(FORMAT_FILES); do \
		$(CLANG_FORMAT) $$f | cmp -s - $$f || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then echo "not formatted (make format):$$bad" >&2; exit 1; fi

.PHONY: format format-check

# make bench: ferry against its peers (tini, dumb-init, sqlite3, cp,
# pg_dump, ...) run side by side; rewrites BENCHMARKS.md (bench/run.sh;
# BENCH_QUICK=1 for a smoke run that only writes bench/results/).
bench: $(OUT)/ferry
	FERRY=$(CURDIR)/$(OUT)/ferry sh bench/run.sh

.PHONY: bench

# make soak: the crash soak (tests/soak/soak.sh): SOAK_TRIALS (default
# 500) kill -9 instants of upgrades of a 100 MB SQLite database while
# another process commits, and a tenth as many against PostgreSQL; one line
# per trial, then the counts; fails on any violation. The base database is
# kept in build/soak-cache.
soak: $(OUT)/ferry
	FERRY=$(CURDIR)/$(OUT)/ferry SOAK_CACHE=$(CURDIR)/build/soak-cache \
		sh tests/soak/soak.sh

.PHONY: soak

# make fuzz: every harness of tests/fuzz/ built with clang's libFuzzer,
# ASan and UBSan (ferry's sources again, with coverage), then each run
# FUZZ_SECONDS from its seed corpus tests/fuzz/corpus/NAME. What they find
# new stays in $(OUT)/fuzz/corpus/NAME, a crash's input in
# $(OUT)/fuzz/crashes/; tests/fuzz/run.sh prints the figures.
FUZZ_CC = clang
FUZZ_SECONDS ?= 60
FUZZ_OUT = $(OUT)/fuzz
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
FUZZERS = $(patsubst tests/fuzz/%.c,$(FUZZ_OUT)/fuzz-%,$(wildcard tests/fuzz/*.c))
FUZZ_OBJS = $(LIB_OBJS:$(OUT)/obj/%.o=$(FUZZ_OUT)/obj/%.o)

$(FUZZ_OUT)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_OUT)/obj
	$(FUZZ_CC) $(CPPFLAGS) $(WARNINGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
		-c -o $@ $<

$(FUZZ_OUT)/obj:
	mkdir -p $@

$(FUZZ_OUT)/fuzz-%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(CPPFLAGS) $(WARNINGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc \
		-o $@ $< $(FUZZ_OBJS) $(LDLIBS)

# (kept: make would delete them as intermediate files of the pattern rules)
.SECONDARY: $(FUZZ_OBJS)

fuzz-build: $(FUZZERS)

fuzz: $(FUZZERS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(FUZZ_OUT) \
		$(patsubst $(FUZZ_OUT)/fuzz-%,%,$(FUZZERS))

clean:
	rm -rf build

.PHONY: all check asan demo demo-app demo-static clean deps static check-static \
	static-arm64 check-arm64 release fuzz fuzz-build
