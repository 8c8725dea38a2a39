# ferry: `make` builds build/ferry, `make check` runs every test,
# `make asan` runs them again under AddressSanitizer + UBSan.

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wwrite-strings -Wformat=2
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I/usr/include/postgresql
LDLIBS = -lsqlite3 -lpq -larchive -lzstd -linih -lcrypto

ifeq ($(SANITIZE),1)
OUT = build/asan
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
OUT = build
endif

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:src/%.c=$(OUT)/obj/%.o)
LIB_OBJS = $(filter-out $(OUT)/obj/cli.o,$(OBJS))

all: $(OUT)/ferry

$(OUT)/obj/%.o: src/%.c $(wildcard src/*.h) | $(OUT)/obj
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -c -o $@ $<

$(OUT)/obj:
	mkdir -p $@

$(OUT)/ferry: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(OUT)/unit-tests: tests/unit/unit.c $(LIB_OBJS) $(wildcard src/*.h)
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ \
		tests/unit/unit.c $(LIB_OBJS) $(LDLIBS)

check: $(OUT)/ferry $(OUT)/unit-tests
	FERRY=$(CURDIR)/$(OUT)/ferry UNIT_TESTS=$(CURDIR)/$(OUT)/unit-tests \
		prove -j2 $(PROVE_FLAGS) tests/t[0-9]*.sh

deps:
	.ci/deps

asan:
	$(MAKE) check SANITIZE=1

demo: $(OUT)/ferry
	sh compose-examples/demo/run-demo.sh $(CURDIR)/$(OUT)/ferry

clean:
	rm -rf build

.PHONY: all check asan demo clean deps
