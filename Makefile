# trustgate build. `make` builds build/trustgate (release: -O2 -g).
# Variants live in their own folders: build/ (release), build/asan/,
# build/fuzz/. Objects carry -MMD -MP dependency files.

VARIANT ?= release
ifeq ($(VARIANT),release)
BUILD ?= build
else
BUILD ?= build/$(VARIANT)
endif

CC ?= cc
ifeq ($(VARIANT),fuzz)
CC := clang
endif

PKGS := libuv libcrypto libssl inih lmdb libcurl libxml-2.0 xmlsec1-openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

LLHTTP_SRC_DIR ?= /usr/share/llhttp
LLHTTP_INC_DIR ?= /usr/share/include/llhttp
VECTORS ?= $(abspath ../shared/vectors)

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
        -Wmissing-prototypes -Wimplicit-fallthrough -Wundef
ifeq ($(CI),true)
WARN += -Werror
endif
HARDEN := -fstack-protector-strong -fPIE
HARDEN_LD := -pie -Wl,-z,relro,-z,now

ifeq ($(VARIANT),release)
OPT := -O2 -g -D_FORTIFY_SOURCE=2
else ifeq ($(VARIANT),asan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_LD := -fsanitize=address,undefined
else ifeq ($(VARIANT),fuzz)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
       -fno-sanitize-recover=all -DTG_FUZZING=1
SAN_LD := -fsanitize=address,undefined
else
$(error unknown VARIANT $(VARIANT))
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

CPPFLAGS += -I. -I$(LLHTTP_INC_DIR) -D_GNU_SOURCE \
            -DTG_VERSION='"$(VERSION)"' -DTG_GIT_REV='"$(GIT_REV)"'
CFLAGS += -std=c11 $(WARN) $(HARDEN) $(OPT) $(PKG_CFLAGS) -pthread
LDFLAGS += $(HARDEN_LD) $(SAN_LD) -pthread
LDLIBS += $(PKG_LIBS) -lm

MODULES := common pki config trustlist cache fetch responder
LIB_SRCS := $(filter-out responder/main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/responder/main.o
LLHTTP_LIB := $(BUILD)/llhttp/libllhttp.a
LLHTTP_OBJS := $(addprefix $(BUILD)/llhttp/,llhttp.o api.o http.o)

UNIT_SRCS := $(wildcard tests/unit/*/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(BUILD)/tests/unit
MALFORMED_BIN := $(BUILD)/tests/malformed
POLL_BIN := $(BUILD)/tests/ocsp_poll
MKCRL_BIN := $(BUILD)/tests/mkcrl
MKOCSP_BIN := $(BUILD)/tests/mkocsp
TOOL_OFFSET_OBJ := $(BUILD)/obj/tests/integration/tool_offset.o
BENCH_BIN := $(BUILD)/trustgate-bench
BENCH_SRCS := $(wildcard bench/client/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
FILL_BIN := $(BUILD)/trustgate-bench-fill
FILL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/fill/*.c))
FUZZ_SRCS := $(wildcard tests/fuzz/*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz-%)

.PHONY: all deps test unit integration asan fuzz run bench bench-quick format format-check clean
.DEFAULT_GOAL := all

all: $(BUILD)/trustgate $(BENCH_BIN) $(FILL_BIN)

$(BUILD)/trustgate: $(MAIN_OBJ) $(LIB_OBJS) $(LLHTTP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# trustgate-bench: the HTTP/1.1 OCSP load generator (bench/client/).
$(BENCH_BIN): $(BENCH_OBJS) $(LIB_OBJS) $(LLHTTP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# trustgate-bench-fill: fills a cache with signed OCSP answers (bench/fill/).
$(FILL_BIN): $(FILL_OBJS) $(LIB_OBJS) $(LLHTTP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# llhttp: Debian's node-llhttp ships the C sources; build them as a static
# library with the project's optimisation but without its strict warnings.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC_DIR) $(filter-out -Werror,$(OPT)) $(HARDEN) -w -c -o $@ $<

$(LLHTTP_LIB): $(LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(UNIT_BIN): $(UNIT_OBJS) $(LIB_OBJS) $(LLHTTP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(MALFORMED_BIN): $(BUILD)/obj/tests/integration/malformed.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(POLL_BIN): $(BUILD)/obj/tests/integration/ocsp_poll.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# mkcrl: makes CRLs of any size (and broken ones) for the CRL tests and bench.
$(MKCRL_BIN): $(BUILD)/obj/tests/integration/mkcrl.o $(TOOL_OFFSET_OBJ) $(LIB_OBJS) $(LLHTTP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# mkocsp: signs upstream OCSP answers with any times and statuses for upstream.sh.
$(MKOCSP_BIN): $(BUILD)/obj/tests/integration/mkocsp.o $(TOOL_OFFSET_OBJ) $(LIB_OBJS) $(LLHTTP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@bash scripts/install-deps.sh

# make test: install what is missing, build, run every test.
test: deps
	$(MAKE) all $(UNIT_BIN) $(MALFORMED_BIN) $(POLL_BIN) $(MKCRL_BIN) $(MKOCSP_BIN)
	$(MAKE) unit integration
	$(MAKE) bench-quick

# One deadline for the whole unit run instead of Criterion's per-test
# .timeout: its timeout watchdog leaks an entry in the runner now and then
# under load, which LeakSanitizer reports (libcriterion 2.4).
UNIT_TIMEOUT_S ?= 900
unit: $(UNIT_BIN)
	TG_VECTORS=$(VECTORS) TG_BUILD=$(BUILD) timeout $(UNIT_TIMEOUT_S) $(UNIT_BIN) --jobs 2

integration: $(BUILD)/trustgate $(MALFORMED_BIN) $(POLL_BIN) $(MKCRL_BIN) $(MKOCSP_BIN)
	TG_VECTORS=$(VECTORS) TG_BUILD=$(BUILD) bash tests/integration/all.sh

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	$(MAKE) VARIANT=asan all $(UNIT_BIN) $(MALFORMED_BIN) $(POLL_BIN) $(MKCRL_BIN) $(MKOCSP_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) VARIANT=asan unit integration

# make bench: every scenario of SPEC §8 against its peers (nginx, openssl
# ocsp, openssl speed, wrk), run beside trustgate on loopback by
# bench/run.py; writes bench/results/latest.{md,json,png}. About 20 minutes
# (it signs and caches 10,000,000 answers first).
BENCH_OUT ?= bench/results
bench: deps
	$(MAKE) all $(MKCRL_BIN)
	python3 bench/run.py --build $(BUILD) --out $(BENCH_OUT)

# The same scenarios, small and short (BENCH_QUICK=1): keeps the harness
# from rotting; run once by `make test`, its figures are not asserted.
bench-quick: all $(MKCRL_BIN)
	BENCH_QUICK=1 python3 bench/run.py --build $(BUILD) --out $(BUILD)/bench-quick

# libFuzzer harnesses (clang). FUZZ_SECONDS per harness, seeded from
# ../shared/vectors; crashes land in build/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
fuzz: deps
	$(MAKE) VARIANT=fuzz fuzz-bins
	VECTORS=$(VECTORS) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh build/fuzz

.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BINS)

# the bench's response check is fuzzed too: it walks whatever a server sends
$(BUILD)/fuzz-bench_check: $(BUILD)/obj/bench/client/check.o $(BUILD)/obj/bench/client/req.o

$(BUILD)/fuzz-%: $(BUILD)/obj/tests/fuzz/%.o $(LIB_OBJS) $(LLHTTP_LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# make run: set up, build, make the demo world once (var/demo), serve it on
# 127.0.0.1:8080 with the CAs' own OCSP responders on 8081..8084 beside it
# (scripts/demo-run.sh). `rm -rf var/demo` makes a fresh one.
run: deps all
	@test -f var/demo/trustgate.ini || ./$(BUILD)/trustgate demo var/demo
	exec bash scripts/demo-run.sh var/demo $(BUILD)/trustgate

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) $(FILL_OBJS:.o=.d)
