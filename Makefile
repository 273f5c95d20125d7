# Makefile for pam_unshare.
#
# Targets:
#   make deps           install the Debian packages that building and
#                       testing need, and Go when $(GO) cannot build the
#                       tree (root; Debian 12 or 13; packaging/deps-go.sh)
#   make deps-pkg       only what building and packaging need, and Go
#   make / make build   build everything into $(BUILD)/
#   make install        install the module, helper, command and man pages
#   make uninstall      remove what install put in place
#   make test-unit      Go and C unit tests: no root, no build needed
#   make test           unit tests and real-client tests (root; see README)
#   make test-sanitize  the C unit tests and the real-client tests again,
#                       with the helper and pamhost built with ASan and
#                       UBSan (root; run by .ci/run)
#   make vm-test        su, sudo and sshd in a Debian guest (qemu;
#                       VM_SUITE=bookworm or trixie, see test/vm/vm.mk)
#   make check          test, then vm-test-all (both releases)
#   make bench          benchmark table (root)
#   make lint           gofmt, go mod tidy, go vet, staticcheck, shellcheck,
#                       C warnings, and that each test suite's files and
#                       functions agree (run-tests.sh/scenarios.sh --list)
#   make deb / rpm      packages (see packaging/)
#
# Variables (override on the command line, e.g. make install DESTDIR=/tmp/x):
#   DESTDIR     staging root prepended to every install path (empty)
#   PREFIX      installation prefix (/usr)
#   PAMDIR      PAM module directory; by default libpam's own libdir plus
#               /security as pkg-config reports it, e.g.
#               /usr/lib/x86_64-linux-gnu/security on Debian; compiled
#               into pam-unshare, where doctor looks for the module
#   LIBEXECDIR  helper programs ($(PREFIX)/libexec); the PID-1 helper goes
#               to $(LIBEXECDIR)/pam_unshare/pam_unshare-init and the Go
#               library that pam_unshare.so loads for each session to
#               $(LIBEXECDIR)/pam_unshare/pam_unshare_go.so; both paths are
#               compiled into the module and pam-unshare
#   SBINDIR     admin commands ($(PREFIX)/sbin)
#   MANDIR      man pages ($(PREFIX)/share/man)
#   BUILD       build output directory (build)
#   GO          Go toolchain (go). A Go of 1.21 or later switches to the
#               toolchain go.mod's `toolchain` line names (GOTOOLCHAIN=auto)
#   CC          C compiler (cc)
#   HELPER_CC   compiler for the static PID-1 helper: musl-gcc when it is
#               installed (package musl-tools), else $(CC)
#   SAN_CC      compiler for the sanitizer builds: gcc (glibc; musl has no
#               sanitizer runtime)
#   CFLAGS      flags for the C programs (-O2 -g plus warnings as errors)
#   GOFLAGS     extra flags for go build (-trimpath)
#   VERSION     release version, compiled into pam-unshare (--version); by
#               default the first entry of packaging/debian/changelog, the
#               one place a release is numbered (the RPM spec and the
#               PKGBUILD are checked against it by make rpm / arch-check)

DESTDIR    ?=
PREFIX     ?= /usr
PAMDIR     ?= $(shell pkg-config --variable=libdir pam 2>/dev/null || echo $(PREFIX)/lib/$$($(CC) -print-multiarch))/security
LIBEXECDIR ?= $(PREFIX)/libexec
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
BUILD      ?= build
GO         ?= go
CC         ?= cc
HELPER_CC  ?= $(shell command -v musl-gcc 2>/dev/null || echo $(CC))
CFLAGS     ?= -O2 -g
SAN_CC     ?= gcc
GOFLAGS    ?= -trimpath
VERSION    ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' packaging/debian/changelog 2>/dev/null)

WARN       := -Wall -Wextra -Werror
HELPER_DIR := $(LIBEXECDIR)/pam_unshare
HELPER     := $(HELPER_DIR)/pam_unshare-init
# The helper's sources (nsinit/init/main.c lists what each file does);
# init_test.c links all of them but main.c.
HELPER_LIB_SRC := $(addprefix nsinit/init/,session.c user.c loop.c relay.c procwatch.c pids.c args.c fd.c)
HELPER_SRC := nsinit/init/main.c $(HELPER_LIB_SRC)
GO_MODULE  := $(HELPER_DIR)/pam_unshare_go.so
MODULE_PKG := github.com/pam-unshare/pam-unshare
# Paths compiled into the Go programs: the helper the module starts, the
# module directory pam-unshare doctor looks in, and the Go library doctor
# checks (front/front.c gets the same GO_MODULE as PU_GO_MODULE).
LDFLAGS_GO := -X $(MODULE_PKG)/nsinit.DefaultHelperPath=$(HELPER) -X main.pamDir=$(PAMDIR) \
	-X main.goModulePath=$(GO_MODULE) -X main.version=$(VERSION)

GO_SOURCES := go.mod go.sum $(shell find nsinit pam_unshare cmd -name '*.go' -o -name '*.c' -o -name '*.h' -o -name '*.map')

# Debian packages: to build; to build the .deb (the VM tests install it);
# to build the RPM and Arch recipes (make rpm, make arch); to run the
# real-client tests; for lint; for the VM tests.
DEPS_BUILD := build-essential pkg-config libpam0g-dev libc6-dev musl-tools
DEPS_PKG   := debhelper dpkg-dev fakeroot lintian
DEPS_RECIPES := rpm makepkg
DEPS_TEST  := sudo openssh-server openssh-client procps psmisc python3 util-linux pamtester iproute2
DEPS_LINT  := shellcheck
DEPS_VM    := qemu-system-x86 qemu-utils debootstrap e2fsprogs coreutils

.PHONY: all build deps deps-pkg install uninstall test test-unit test-sanitize check lint clean
all: build

# Installing openssh-server must not start an sshd on this machine, so
# package scripts are told not to start services for the duration. Go comes
# last: on Debian 12 it is installed from bookworm-backports, and it
# downloads go.mod's toolchain (packaging/deps-go.sh).
deps:
	apt-get update -qq
	@if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$(DEPS_BUILD) $(DEPS_PKG) $(DEPS_RECIPES) $(DEPS_TEST) $(DEPS_LINT) $(DEPS_VM) >/dev/null
	packaging/deps-go.sh $(GO)

deps-pkg:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$(DEPS_BUILD) $(DEPS_PKG) >/dev/null
	packaging/deps-go.sh $(GO)

build: $(BUILD)/pam_unshare.so $(BUILD)/pam_unshare_go.so $(BUILD)/pam_unshare-init $(BUILD)/pam-unshare $(BUILD)/pamhost

# The module pam.d names: a small C front (front/front.c) that loads the Go
# library from $(GO_MODULE) only when a session is opened. Its version
# script exports the two PAM entry points and nothing else. It checks the
# Go library with nsinit/trust.c, the file rule the Go code (through cgo)
# applies to the helper, and with the interface in pam_unshare/abi/abi.h.
FRONT_SRC := front/front.c nsinit/trust.c
$(BUILD)/pam_unshare.so: $(FRONT_SRC) nsinit/trust.h pam_unshare/abi/abi.h front/exports.map
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -DPU_GO_MODULE='"$(GO_MODULE)"' \
		-Wl,--version-script=front/exports.map -Wl,-z,now -Wl,-z,relro $(LDFLAGS) \
		-o $@ $(FRONT_SRC) -lpam -ldl -lpthread

# The Go library: a c-shared Go library. The version script keeps
# everything but the two PAM entry points and the interface check out of
# the dynamic symbol table. -z defs: no symbol may be left undefined, so
# the library does not link if its interface check is exported under
# another name than pam_unshare/abi/abi.h gives (glue.c refers to it).
$(BUILD)/pam_unshare_go.so: $(GO_SOURCES)
	@mkdir -p $(BUILD)
	$(GO) build $(GOFLAGS) -buildmode=c-shared \
		-ldflags '$(LDFLAGS_GO) -extldflags "-Wl,--version-script=$(CURDIR)/pam_unshare/exports.map -Wl,-z,defs"' \
		-o $@ ./pam_unshare
	@rm -f $(BUILD)/pam_unshare_go.h

# The PID-1 helper: static, so it maps as little memory as possible and
# does not depend on the host's libraries at the moment it becomes PID 1.
# Against musl it is ready about 0.5 ms sooner after exec and its PSS is
# about 70 KiB instead of 820 KiB (static glibc's start-up is much longer,
# and costs most on virtual machines where CPUID traps).
$(BUILD)/pam_unshare-init: $(HELPER_SRC) nsinit/init/init.h nsinit/handshake.h
	@mkdir -p $(BUILD)
	$(HELPER_CC) $(CFLAGS) $(WARN) -static -o $@ $(HELPER_SRC)

$(BUILD)/pam-unshare: $(GO_SOURCES) packaging/debian/changelog
	@mkdir -p $(BUILD)
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS_GO)' -o $@ ./cmd/pam-unshare

# The C PAM host that tests and benchmarks load the module into.
$(BUILD)/pamhost: test/pamhost.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -o $@ test/pamhost.c -lpam

# An NSS module whose every lookup fails as a directory service that is
# down does; the real-client tests mount it over libnss_hesiod.so.2 in
# their private mount namespace (test/names.sh).
$(BUILD)/nss-fail.so: test/nss-fail.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -DNSS_NAME=hesiod -o $@ test/nss-fail.c

install: build
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(HELPER_DIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(BUILD)/pam_unshare.so $(DESTDIR)$(PAMDIR)/pam_unshare.so
	install -m 0755 $(BUILD)/pam_unshare-init $(DESTDIR)$(HELPER)
	install -m 0644 $(BUILD)/pam_unshare_go.so $(DESTDIR)$(GO_MODULE)
	install -m 0755 $(BUILD)/pam-unshare $(DESTDIR)$(SBINDIR)/pam-unshare
	install -m 0644 doc/pam_unshare.8 doc/pam-unshare.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_unshare.so $(DESTDIR)$(HELPER) $(DESTDIR)$(GO_MODULE) \
		$(DESTDIR)$(SBINDIR)/pam-unshare \
		$(DESTDIR)$(MANDIR)/man8/pam_unshare.8 $(DESTDIR)$(MANDIR)/man8/pam-unshare.8
	-rmdir $(DESTDIR)$(HELPER_DIR)

# The helper's C functions, unit-tested: init_test.c linked with every
# file of the helper but main.c.
$(BUILD)/init_test: nsinit/init/init_test.c $(HELPER_LIB_SRC) nsinit/init/init.h nsinit/handshake.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -o $@ nsinit/init/init_test.c $(HELPER_LIB_SRC)

# Unit tests only: -short skips the Go tests that need root (they build
# namespaces) or a build.
test-unit: $(BUILD)/init_test
	$(GO) test -short ./...
	$(BUILD)/init_test

# Unit tests, root-only Go tests included, then the real-client tests (root
# only; they skip otherwise). The fuzz budget is a count, not a duration:
# at the end of a -fuzztime duration Go's fuzz coordinator can fail with
# "context deadline exceeded" and no failing input.
test: build $(BUILD)/init_test $(BUILD)/nss-fail.so
	$(GO) test ./...
	$(BUILD)/init_test
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 200000x ./pam_unshare/options
	test/run-tests.sh $(BUILD)

# The sanitizer builds live in their own build directory, next to the
# module and the command of the normal build, so that run-tests.sh takes
# them as they are. A report anywhere, including in the helper (whose
# stderr is /dev/null), lands in $(SAN_DIR)/logs and fails the target.
SAN_DIR   := $(BUILD)/sanitize
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-DSANITIZE_LOG='"$(abspath $(SAN_DIR))/logs/report"'
test-sanitize: build $(BUILD)/nss-fail.so
	rm -rf $(SAN_DIR) && mkdir -p $(SAN_DIR)/logs && chmod 1777 $(SAN_DIR)/logs
	$(SAN_CC) $(SAN_FLAGS) $(WARN) -o $(SAN_DIR)/pam_unshare-init $(HELPER_SRC) test/sanitize-options.c
	$(SAN_CC) $(SAN_FLAGS) $(WARN) -o $(SAN_DIR)/pamhost test/pamhost.c test/sanitize-options.c -lpam
	$(SAN_CC) $(SAN_FLAGS) $(WARN) -o $(SAN_DIR)/init_test nsinit/init/init_test.c $(HELPER_LIB_SRC) test/sanitize-options.c
	ln -s ../pam_unshare.so ../pam_unshare_go.so ../pam-unshare ../nss-fail.so $(SAN_DIR)/
	$(SAN_DIR)/init_test
	test/run-tests.sh $(SAN_DIR)
	@if [ -n "$$(ls $(SAN_DIR)/logs)" ]; then head -n 50 $(SAN_DIR)/logs/*; exit 1; fi
	@echo "test-sanitize: no sanitizer reports"

check: test vm-test-all

lint:
	@test -z "$$(gofmt -l nsinit pam_unshare cmd test)" || { gofmt -l nsinit pam_unshare cmd test; exit 1; }
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	shellcheck -x test/*.sh test/*/*.sh .ci/run packaging/*.sh
	test/run-tests.sh --list >/dev/null
	test/vm/scenarios.sh --list $(VM_SCENARIOS_TRIXIE) >/dev/null
	$(MAKE) --no-print-directory packaging-lint
	$(CC) $(CFLAGS) $(WARN) -fsyntax-only $(HELPER_SRC) test/pamhost.c
	$(CC) $(CFLAGS) $(WARN) -fsyntax-only -DPU_GO_MODULE='"/x"' $(FRONT_SRC)
	$(CC) $(CFLAGS) $(WARN) -fsyntax-only nsinit/init/init_test.c nsinit/init/config_print.c
	$(CC) $(CFLAGS) $(WARN) -fsyntax-only -DSANITIZE_LOG='"lint"' test/sanitize-options.c
	$(CC) $(CFLAGS) $(WARN) -fsyntax-only -DNSS_NAME=hesiod test/nss-fail.c

clean:
	rm -rf $(BUILD)

-include test/vm/vm.mk
-include test/bench/bench.mk
-include packaging/packaging.mk
