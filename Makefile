# zt — one binary, one library of modules. See README.md for the targets.
#
#   make            build build/zt
#   make run        build and run the main job (zt dev: the whole mesh on this machine)
#   make test       every test: unit, end-to-end, unit again under ASan+UBSan
#   make fuzz       each fuzz target for FUZZ_SECONDS (clang, libFuzzer)
#   make bench      identity benchmark beside `openssl speed`
#   make deps       install the Debian packages everything needs

CC       ?= cc
BUILD    ?= build
SAN      ?=
FUZZ_SECONDS ?= 20

WARN   := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
          -Wmissing-prototypes -Wcast-qual -Wwrite-strings -Wpointer-arith \
          -Wvla -Wno-missing-field-initializers
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT    ?= -O2 -g
ifneq ($(SAN),)
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  HARDEN := -fPIE
  SANLD  := -fsanitize=address,undefined
endif
CPPFLAGS := -D_GNU_SOURCE -Isrc
CFLAGS   := -std=c11 $(WARN) $(HARDEN) $(OPT) $(EXTRA_CFLAGS)
LDFLAGS  := -pie -Wl,-z,relro,-z,now,-z,noexecstack $(SANLD)
LIBS     := -lssl -lcrypto -ljansson -lyaml -lsqlite3 -largon2 -lpthread

MODULES  := core crypto identity policy net client proxy audit store server agent
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c))
CLI_SRC  := $(wildcard src/cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)

.PHONY: all run test unit unit-bins e2e asan fuzz bench bench-proxy bench-audit bench-server bench-issue bench-jwt deps depcheck clean
.DELETE_ON_ERROR:

all: $(BUILD)/zt

depcheck:
	@scripts/deps.sh ensure

deps:
	@scripts/deps.sh install

$(BUILD)/%.o: %.c | depcheck
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# test scaffolding builds paths with snprintf freely; truncation is not a risk there
ifeq ($(findstring clang,$(CC)),)
$(BUILD)/tests/%.o: CFLAGS += -Wno-format-truncation
endif

$(BUILD)/libzt.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/zt: $(CLI_OBJ) $(BUILD)/libzt.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libzt.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/testutil.o $(BUILD)/libzt.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/tests/unit/testutil.o $(BUILD)/libzt.a $(LIBS) -lcmocka

unit-bins: $(UNIT_BIN)

run: $(BUILD)/zt
	$(BUILD)/zt dev

test: depcheck
	@scripts/test.sh

unit: $(UNIT_BIN)
	@scripts/test.sh unit

e2e: $(BUILD)/zt
	@scripts/test.sh e2e

asan: depcheck
	@scripts/test.sh asan

build-fuzz/%: fuzz/%.c $(LIB_SRC) | depcheck
	@mkdir -p build-fuzz
	clang $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ $< $(LIB_SRC) $(LIBS)

fuzz: $(FUZZ_BIN)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

build/bench_identity: bench/bench_identity.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_tls: bench/bench_tls.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_policy: bench/bench_policy.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS) -lm

build/bench_store: bench/bench_store.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_audit: bench/bench_audit.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_issue: bench/bench_issue.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_jwt: bench/bench_jwt.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_json: bench/bench_json.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

build/bench_server: bench/bench_server.c $(BUILD)/libzt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libzt.a $(LIBS)

bench: build/bench_identity build/bench_policy build/zt
	@scripts/deps.sh bench
	@bench/run-identity.sh
	@bench/run-policy.sh

# the sidecar pair beside HAProxy in TCP mode (../shared/bench), same run
bench-proxy: build/zt build/bench_tls
	@scripts/deps.sh bench
	@bench/run-proxy.sh

# the audit log: durable appends, proofs and verification at 1M and 10M entries
bench-audit: build/bench_audit build/zt
	@bench/run-audit.sh

# the control plane: authenticated reads, policy writes, policy to 100 watchers
bench-server: build/bench_server build/zt
	@bench/run-server.sh

# SVID issuance through the server, as many agents ask for it
bench-issue: build/bench_issue build/zt
	@bench/run-issue.sh

# JWT verification with a cached JWKS, beside openssl speed (issue 9)
bench-jwt: build/bench_jwt
	@bench/run-jwt.sh

clean:
	rm -rf build build-asan build-fuzz

# the unit tests' objects too: a header they include changes the structs they share
UNIT_OBJ := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.o) $(BUILD)/tests/unit/testutil.o
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
