# VM integration tests, included by the top-level Makefile.
#
#   make vm-test    build the Debian package (make deb), boot a Debian 12
#                   guest, install it there with dpkg -i, enable it with
#                   pam-unshare enable and run test/vm/scenarios.sh (TAP on
#                   stdout)
#   make vm-smoke   boot the guest without the module: checks the image,
#                   boot, runner and result collection only
#
# Variables (also read from the environment by test/vm/run.sh):
#   VM_SCENARIOS  scenario names to run (default: all; see scenarios.sh)
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
VM_SCENARIOS ?=

.PHONY: vm-test vm-smoke
vm-test: build
	$(VM_DIR)/run.sh $(VM_SCENARIOS)

vm-smoke:
	$(VM_DIR)/run.sh --smoke
