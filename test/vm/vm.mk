# VM integration tests, included by the top-level Makefile.
#
#   make vm-test      build the Debian package for the guest's release, boot
#                     a Debian guest of VM_SUITE, install it there with
#                     dpkg -i, enable it with pam-unshare enable and run
#                     test/vm/scenarios.sh (TAP on stdout)
#   make vm-test-all  both releases, one after the other: the Debian 12
#                     guest with VM_SCENARIOS (default: all), the Debian 13
#                     guest with VM_SCENARIOS_TRIXIE; fails if either fails
#                     (make check and CI run this)
#   make vm-smoke     boot the guest without the module: checks the image,
#                     boot, runner and result collection only
#
# Variables (also read from the environment by test/vm/run.sh):
#   VM_SUITE      bookworm (Debian 12, default) | trixie (Debian 13)
#   VM_SCENARIOS  scenario names to run (default: all; see scenarios.sh)
#   VM_SCENARIOS_TRIXIE  what vm-test-all runs in the Debian 13 guest (see
#                 test/vm/README.md for why not all)
#   VM_PAM_ARGS   extra module arguments, e.g. debug
#   VM_INSTALL    deb | make (install a `make install DESTDIR=` tree instead
#                 of the package)
#   VM_ENABLE     cli | append (append the pam.d line instead of running
#                 `pam-unshare enable`)
#   VM_OLD_REV    git commit or tag of the release the upgrade scenario
#                 upgrades from (default: the release before this one)
#   VM_OLD_DEB    an existing package of that release instead
#   VM_CACHE      image cache directory (default /var/cache/pam-unshare-vm)
#   VM_ACCEL      auto | tcg | kvm (default auto)
#   VM_TIMEOUT    hard limit for the guest run, seconds (default 1800)
#   VM_CPUS, VM_MEM  guest vCPUs (2) and memory in MiB (1536)
VM_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
VM_SUITE ?= bookworm
VM_SCENARIOS ?=
VM_SCENARIOS_TRIXIE ?= harness admin sessions peruser nested_peruser door_dbus door_user_manager user_manager systemd_sessions run_user_pty uninstall

.PHONY: vm-test vm-test-all vm-smoke
vm-test: build
	VM_SUITE=$(VM_SUITE) $(VM_DIR)/run.sh $(VM_SCENARIOS)

# Both guests run even when the first fails.
vm-test-all: build
	@rc=0; \
	echo "vm-test-all: Debian 12 (bookworm)"; \
	VM_SUITE=bookworm $(VM_DIR)/run.sh $(VM_SCENARIOS) || rc=1; \
	echo "vm-test-all: Debian 13 (trixie): $(VM_SCENARIOS_TRIXIE)"; \
	VM_SUITE=trixie $(VM_DIR)/run.sh $(VM_SCENARIOS_TRIXIE) || rc=1; \
	exit $$rc

vm-smoke:
	VM_SUITE=$(VM_SUITE) $(VM_DIR)/run.sh --smoke
