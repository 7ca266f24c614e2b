# thaw: `make` builds build/thaw, build/thaw-zygote and build/thaw-pidns-init
# (installing missing Debian packages first), `make test` runs every test,
# `make dev` serves examples/hello.
CC      ?= cc
PYTHON  := /usr/bin/python3
CFLAGS  ?= -O2 -g
override CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration \
           -D_GNU_SOURCE -Isrc -I/usr/include/postgresql
DEPS_STAMP := build/.deps-ok
# where objects and binaries go (`make check-asan` builds into build-asan/)
BUILD   ?= build

SUP_LIBS   = -luv -lhttp_parser -ljansson -lsqlite3 -lcurl -lhiredis -lwslay -lssl -lcrypto -lpq
PY_CFLAGS  = $(shell pkg-config --cflags python3-embed 2>/dev/null)
PY_LIBS    = $(shell pkg-config --libs python3-embed 2>/dev/null)
# `make ZYGOTE_STATIC_PYTHON=1`: the zygote embeds CPython from Debian's
# static library instead of libpython3.11.so. Its code is not
# position-independent, as /usr/bin/python3.11's is not, and runs Python
# ~8% faster (docs/performance.md); but the binary is then not PIE: the
# interpreter sits at the same addresses in every zygote, which takes away
# part of what `isolation = "per-worker"` promises (docs/security.md). Off
# unless asked for (and remove build/thaw-zygote to relink it). Extension
# modules find the C API in the executable (-export-dynamic), as under
# /usr/bin/python3.
ZYGOTE_STATIC_PYTHON ?= 0
ifeq ($(ZYGOTE_STATIC_PYTHON),1)
PY_STATIC  = $(shell $(PYTHON) -c "import sysconfig as s, os; \
               p = os.path.join(s.get_config_var('LIBPL'), s.get_config_var('LIBRARY')); \
               print(p if os.path.exists(p) else '')" 2>/dev/null)
endif
ifneq ($(PY_STATIC),)
ZYG_PY_LIBS = -no-pie $(PY_STATIC) -Xlinker -export-dynamic \
              $(shell $(PYTHON) -c "import sysconfig as s; \
                print(*(s.get_config_var(k) for k in ('LIBS', 'SYSLIBS', 'MODLIBS')))")
else
ZYG_PY_LIBS = $(PY_LIBS)
endif

# the supervisor: no Python here
SUP_SRC = $(wildcard src/cli/*.c src/server/*.c src/pool/*.c src/config/*.c \
          src/ipc/*.c src/util/*.c src/watch/*.c src/bind/*.c src/cron/*.c \
          src/assets/*.c src/serve/*.c src/policy/*.c src/ws/*.c src/do/*.c \
          src/cluster/*.c) \
          src/zygote/client.c src/sandbox/probe.c src/sandbox/cgroup.c \
          src/sandbox/cgroup-sweep.c src/sandbox/uidslot.c src/sandbox/hostpid.c
SUP_OBJ = $(SUP_SRC:src/%.c=$(BUILD)/obj/%.o)
# the zygote: CPython, and the sandbox it applies to itself and its children
ZYG_SRC = src/zygote/main.c src/zygote/sandbox-py.c src/zygote/prefault-py.c \
          $(FAST_SRC) \
          $(filter-out src/sandbox/probe.c src/sandbox/cgroup.c src/sandbox/cgroup-sweep.c \
                                   src/sandbox/uidslot.c src/sandbox/hostpid.c \
                                   src/sandbox/keeper-main.c, \
                       $(wildcard src/sandbox/*.c))
ZYG_OBJ = $(ZYG_SRC:src/%.c=$(BUILD)/obj/%.o)
# the instances' hot path in C: built into the zygote, and as a module of
# its own for tests/python and bench/instance-cpu (src/zygote/fast-py.h)
FAST_SRC = src/zygote/fast-py.c src/zygote/codec-head.c src/zygote/codec-resp.c \
           src/zygote/eager.c src/zygote/asgi-headers.c src/zygote/taskset.c \
           src/zygote/asgi-call.c src/zygote/asgi-scope.c src/zygote/sdk-new.c \
           src/zygote/dows.c src/zygote/dows-relay.c src/zygote/dows-send.c
FAST_MOD = $(BUILD)/py/_thaw_fast.so
ZYG_LIBS = -lseccomp

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# objects the unit tests link against (everything but the CLI)
LIB_OBJ  = $(filter-out $(BUILD)/obj/cli/%,$(SUP_OBJ))

.PHONY: all deps dev test unit integration pytest clean
all: $(BUILD)/thaw $(BUILD)/thaw-zygote $(BUILD)/thaw-pidns-init $(FAST_MOD)

$(DEPS_STAMP): scripts/install-deps
	./scripts/install-deps
	@mkdir -p build && touch $@

deps: $(DEPS_STAMP)

$(BUILD)/obj/%.o: src/%.c $(DEPS_STAMP) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/zygote/%.o: src/zygote/%.c $(DEPS_STAMP) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(PY_CFLAGS) -c $< -o $@

$(BUILD)/thaw: $(SUP_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(SUP_LIBS)

$(BUILD)/thaw-zygote: $(ZYG_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(ZYG_PY_LIBS) $(ZYG_LIBS)

$(FAST_MOD): $(FAST_SRC) $(DEPS_STAMP) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PY_CFLAGS) -fPIC -shared -o $@ $(FAST_SRC)

# the init of each worker version's pid namespace (src/sandbox/keeper.c
# starts it with exec): static, so it starts without the dynamic loader
# (never sanitized: the sanitizers' runtimes need the dynamic loader)
$(BUILD)/thaw-pidns-init: src/sandbox/keeper-main.c $(DEPS_STAMP)
	$(CC) $(filter-out -fsanitize=%,$(CFLAGS)) -static -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(SUP_LIBS) -lcmocka

dev: all
	./build/thaw dev examples/hello

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do $$t || fail=1; done; exit $$fail

pytest: all
	$(PYTHON) -m pytest -q tests/python tests/integration

test: all unit pytest

clean:
	rm -rf build build-asan

# Longer black-box runs, not in `make test` (docs/reliability.md)
.PHONY: restart-churn churn-leak soak cluster-soak
# a cluster's cron on the real clock for five minutes, one node killed and
# restarted in the middle (tests/integration/test_cluster_cron.py)
cluster-soak: all
	THAW_CLUSTER_SOAK=1 $(PYTHON) -m pytest -q tests/integration/test_cluster_cron.py
restart-churn: all
	$(PYTHON) -m pytest -q -s tests/churn/test_restart_churn.py
churn-leak: all
	bench/churn-leak $(CYCLES)
SOAK_MINUTES ?= 30
soak: all
	SOAK_MINUTES=$(SOAK_MINUTES) $(PYTHON) -m pytest -q -s tests/soak

# AddressSanitizer, UBSan and LeakSanitizer (docs/reliability.md): the unit
# tests and an end-to-end churn of `thaw serve` against build-asan/, failing
# on any report. Which binaries are sanitized, and why: tests/asan/run.
ASAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
.PHONY: check-asan asan-build restart-churn-asan
asan-build: $(DEPS_STAMP)
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_CFLAGS)" build-asan/thaw build-asan/thaw-pidns-init \
		$(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)
	$(MAKE) BUILD=build-asan build-asan/thaw-zygote
check-asan: asan-build
	tests/asan/run build-asan
# the restart churn (100 workers, 10 restarts) against the sanitized thaw
restart-churn-asan: asan-build
	tests/asan/run build-asan restart-churn

# Fuzzing (clang + libFuzzer): `make fuzz` runs each target for FUZZ_SECONDS.
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS = -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined
build/fuzz/fuzz_ipc: tests/fuzz/fuzz_ipc.c src/ipc/codec.c src/util/buf.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^
build/fuzz/fuzz_jsonc: tests/fuzz/fuzz_jsonc.c src/config/jsonc.c src/config/config.c \
		src/config/compat.c src/config/compat-inert.c src/config/devvars.c src/util/log.c \
		src/util/editdist.c \
		src/cron/cron.c \
		src/cron/triggers.c src/do/config.c src/do/migrations.c src/do/scripts.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -ljansson -lcrypto

build/fuzz/fuzz_cron: tests/fuzz/fuzz_cron.c src/cron/cron.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^

build/fuzz/fuzz_bundle: tests/fuzz/fuzz_bundle.c src/serve/bundle.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^

build/fuzz/fuzz_h1: tests/fuzz/fuzz_h1.c src/server/h1-head.c src/server/h1-rules.c src/util/buf.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -lhttp_parser

# the connection driver over loopback: the core's files and what they use
H1_CORE_SRC = $(wildcard src/server/h1-*.c) src/util/buf.c src/util/log.c
build/fuzz/fuzz_h1_conn: tests/fuzz/fuzz_h1_conn.c $(H1_CORE_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -luv -lhttp_parser

.PHONY: fuzz
fuzz: build/fuzz/fuzz_ipc build/fuzz/fuzz_jsonc build/fuzz/fuzz_cron build/fuzz/fuzz_bundle \
		build/fuzz/fuzz_h1 build/fuzz/fuzz_h1_conn
	build/fuzz/fuzz_ipc -max_total_time=$(FUZZ_SECONDS) -max_len=4096
	build/fuzz/fuzz_jsonc -max_total_time=$(FUZZ_SECONDS) -max_len=4096
	build/fuzz/fuzz_cron -max_total_time=$(FUZZ_SECONDS) -max_len=256
	build/fuzz/fuzz_bundle -max_total_time=$(FUZZ_SECONDS) -max_len=4096
	build/fuzz/fuzz_h1 -max_total_time=$(FUZZ_SECONDS) -max_len=8192
	build/fuzz/fuzz_h1_conn -max_total_time=$(FUZZ_SECONDS) -max_len=16384
