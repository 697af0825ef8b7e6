# ringcast: build, test, bench, run.
#
#   make            build build/ringcast (-O2 -g); installs nothing
#   make run        install missing Debian packages, build, run the server (ARGS="--port 8080 ...")
#   make test       install missing Debian packages, build and run every test:
#                   unit tests under ASan+UBSan, the SPSC ring under TSan, each fuzzer for
#                   FUZZ_SECONDS, integration tests against the real binary on every kernel tier
#   make fuzz       run each fuzzer longer (FUZZ_SECONDS, default 300)
#   make bench      install missing Debian packages, build, run every bench/scenarios/*.conf
#                   (bench/run all: results/*.json, *.svg and the table in results/README.md)
#   make bench-peers  install nginx + nchan and Node's ws too, then every ringcast/peer
#                   comparison (bench/peers/run-all)
#   Installing never starts a service: while apt-get runs, a policy-rc.d says no
#   (Debian's nginx would otherwise start the system nginx on port 80)
#   make deps       only install the Debian packages (as root; otherwise prints the command)
#   make format     apply .clang-format

CC       ?= cc
CLANG    ?= clang
PYTHON   ?= /usr/bin/python3
CSTD     := -std=gnu11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS := -Iinclude
CFLAGS   ?= -O2 -g
LDLIBS   := -luring -lwolfssl -lz -lpthread -lm
# ringload's results (JSON); the sanitized builds link the loadgen objects too.
LGLIBS   := -ljansson
TESTLIBS := -lcriterion -lhttp_parser $(LDLIBS) $(LGLIBS)
SAN      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN     := -O1 -g -fsanitize=thread
FUZZSAN  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 20

# What building and running needs; what the tests need on top.
RUN_PKGS  := gcc make pkg-config liburing-dev libwolfssl-dev zlib1g-dev libjansson-dev
TEST_PKGS := libcriterion-dev libhttp-parser-dev clang libclang-rt-14-dev python3 curl openssl \
             python3-websockets nodejs node-ws nginx-light libnginx-mod-nchan
# What the benchmarks need on top of running (plots).
BENCH_PKGS := gnuplot-nox python3
# The peers bench/peers/run-all compares against (not needed by make bench; the tests
# need them too: ringload's nchan dialects are tested against the real nchan).
PEER_PKGS  := nginx-light libnginx-mod-nchan nodejs node-ws

LIB_SRCS   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS   := $(LIB_SRCS:src/%.c=build/obj/%.o)
LG_SRCS    := $(filter-out loadgen/main.c,$(wildcard loadgen/*.c))
LG_OBJS    := $(LG_SRCS:loadgen/%.c=build/obj/lg_%.o)
ASAN_OBJS  := $(LIB_SRCS:src/%.c=build/asan/%.o) $(LG_SRCS:loadgen/%.c=build/asan/lg_%.o)
FUZZ_OBJS  := $(LIB_SRCS:src/%.c=build/fuzzobj/%.o) $(LG_SRCS:loadgen/%.c=build/fuzzobj/lg_%.o)
UNIT_TESTS := $(patsubst tests/%.c,build/asan/%,$(wildcard tests/test_*.c))
TSAN_TESTS := build/tsan/test_spsc
FUZZERS    := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

# Keep objects make would call intermediate (the fuzz build's).
.SECONDARY:

.PHONY: all run test unit tsan fuzz-smoke fuzz integration deps deps-run install-pkgs format clean bench bench-peers
all: build/ringcast build/ringload

build/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(CPPFLAGS) -MMD -MP -c $< -o $@

build/asan/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(SAN) $(CPPFLAGS) -MMD -MP -c $< -o $@

build/fuzzobj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CLANG) $(CSTD) $(WARN) $(FUZZSAN) $(CPPFLAGS) -MMD -MP -c $< -o $@

# The load generator's modules: loadgen/X.c becomes lg_X.o beside the server's.
build/obj/lg_%.o: loadgen/%.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(CPPFLAGS) -Iloadgen -MMD -MP -c $< -o $@

build/asan/lg_%.o: loadgen/%.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(SAN) $(CPPFLAGS) -Iloadgen -MMD -MP -c $< -o $@

build/fuzzobj/lg_%.o: loadgen/%.c
	@mkdir -p $(@D)
	$(CLANG) $(CSTD) $(WARN) $(FUZZSAN) $(CPPFLAGS) -Iloadgen -MMD -MP -c $< -o $@

build/ringcast: build/obj/main.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/ringload: build/obj/lg_main.o $(LG_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(LGLIBS)

# The integration tests run this sanitized build of the server.
build/asan/ringcast: build/asan/main.o $(ASAN_OBJS)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS) $(LGLIBS)

build/asan/test_%: tests/test_%.c $(ASAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(SAN) $(CPPFLAGS) -Iloadgen -o $@ $^ $(TESTLIBS)

build/tsan/test_spsc: tests/test_spsc.c src/spsc.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(TSAN) $(CPPFLAGS) -o $@ $^ $(TESTLIBS)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(CLANG) $(CSTD) $(WARN) $(FUZZSAN) -fsanitize=fuzzer $(CPPFLAGS) -Iloadgen -o $@ $^ $(LDLIBS) $(LGLIBS)

run: deps-run build/ringcast
	./build/ringcast $(ARGS)

test: deps
	$(MAKE) --no-print-directory build/ringcast build/ringload build/asan/ringcast $(UNIT_TESTS) $(TSAN_TESTS) $(FUZZERS)
	PYTHON=$(PYTHON) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/run-all

unit: $(UNIT_TESTS) $(TSAN_TESTS)
	PYTHON=$(PYTHON) bash tests/run-all unit

fuzz: $(FUZZERS)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} bash tests/run-all fuzz

integration: build/asan/ringcast
	PYTHON=$(PYTHON) bash tests/run-all integration

bench:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(RUN_PKGS) $(BENCH_PKGS)"
	$(MAKE) --no-print-directory build/ringcast build/ringload
	PYTHON=$(PYTHON) bash bench/run all

bench-peers:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(RUN_PKGS) $(BENCH_PKGS) $(PEER_PKGS)"
	$(MAKE) --no-print-directory build/ringcast build/ringload
	PYTHON=$(PYTHON) bash bench/peers/run-all

deps-run:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(RUN_PKGS)"

deps:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(RUN_PKGS) $(TEST_PKGS)"

# Installs the Debian packages in PKGS that are missing (as root), or says what to run.
install-pkgs:
	@missing=""; \
	for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    nostart=""; \
	    if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && \
	      nostart=1; \
	    fi; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	    rc=$$?; [ -z "$$nostart" ] || rm -f /usr/sbin/policy-rc.d; \
	    case "$$missing" in *nginx*) echo "deps: nginx is for the tests and benchmarks only;" \
	      "its system service was not started (the tests run their own nginx)";; esac; \
	    [ $$rc = 0 ] || exit $$rc; \
	  else \
	    echo "deps: ringcast needs these Debian packages:$$missing"; \
	    echo "deps: run as root: apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

format:
	clang-format -i src/*.c include/*.h tests/*.c tests/fuzz/*.c loadgen/*.c 2>/dev/null || true

clean:
	rm -rf build

-include $(wildcard build/*/*.d)
