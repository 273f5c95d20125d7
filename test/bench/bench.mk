# test/bench/bench.mk - the benchmark, included by the top-level Makefile.
#
#   make bench        latency (against the syscall floor, build/bench/nsfloor,
#                     as well as pam_permit and a Go no-op module), the
#                     fresh-host open and its breakdown, memory, helper,
#                     teardown and scale numbers; prints a markdown table and
#                     a one-line summary of ratios, writes $(BUILD)/bench.csv
#                     and $(BUILD)/bench.md. Root only; a few minutes on 2
#                     cores (valgrind, when installed, takes about a minute).
#   make bench-floor  what the Go runtime costs a PAM host, for several
#                     ways of building a module that does nothing.
#
# Variables:
#   BENCH_N       sessions per latency run (default 200); also the
#                 per-user create and join runs
#   BENCH_COLD    fresh host processes per stack in the fresh-host
#                 section (default 21)
#   BENCH_ONLY    peruser: run only the per-user (scope=user) section;
#                 relay: only the user manager's relay section
#   BENCH_SCALE   concurrent live sessions in the scale run (default 1000)
#   BENCH_USER    user the sessions are opened for (default nobody; root is
#                 exempt from pam_unshare by default)
#   BENCH_HELPER  PID-1 helper passed as helper= (default the one in
#                 $(BUILD)); set it to compare helper builds
#   BENCH_ARGS    more module arguments for the pam_unshare stack (empty),
#                 e.g. user_manager=off to compare without the relay
#   BENCH_GOFLAGS extra go build flags for the no-op module (empty). The
#                 module is otherwise built exactly like pam_unshare.so
#                 (GOFLAGS, same version script), so that the difference
#                 between the two is the namespace work alone.

BENCH_N ?= 200
BENCH_COLD ?= 21
BENCH_SCALE ?= 1000
BENCH_USER ?= nobody
BENCH_HELPER ?= $(BUILD)/pam_unshare-init
BENCH_GOFLAGS ?=
BENCH_ONLY ?=
BENCH_ARGS ?=

# A Go c-shared PAM module that returns PAM_SUCCESS and does nothing else.
$(BUILD)/bench/noop.so: test/bench/noop/noop.go go.mod pam_unshare/exports.map
	@mkdir -p $(BUILD)/bench
	$(GO) build $(GOFLAGS) $(BENCH_GOFLAGS) -buildmode=c-shared \
		-ldflags '-extldflags -Wl,--version-script=$(CURDIR)/pam_unshare/exports.map' \
		-o $@ ./test/bench/noop
	@rm -f $(BUILD)/bench/noop.h

# The syscall floor: a host that only unshares, mounts and forks
# (test/bench/nsfloor.c). Static and built like the helper, so that its -x
# (PID 1 execs a program) costs what the helper's exec costs.
$(BUILD)/bench/nsfloor: test/bench/nsfloor.c
	@mkdir -p $(BUILD)/bench
	$(HELPER_CC) $(CFLAGS) $(WARN) -static -o $@ test/bench/nsfloor.c

# make lint also checks the benchmark's C.
.PHONY: bench-lint
lint: bench-lint
bench-lint:
	$(CC) $(CFLAGS) $(WARN) -fsyntax-only test/bench/nsfloor.c

.PHONY: bench bench-floor
bench: build $(BUILD)/bench/noop.so $(BUILD)/bench/nsfloor
	N=$(BENCH_N) COLD=$(BENCH_COLD) SCALE=$(BENCH_SCALE) BENCH_USER=$(BENCH_USER) BENCH_ONLY=$(BENCH_ONLY) BENCH_ARGS='$(BENCH_ARGS)' \
		HELPER=$(BENCH_HELPER) test/bench/bench.sh $(BUILD) $(BUILD)/bench.csv

bench-floor: $(BUILD)/pamhost
	GO=$(GO) test/bench/floor.sh $(BUILD)
