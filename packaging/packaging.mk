# packaging/packaging.mk - distribution packages. Included by the top-level
# Makefile; see packaging/README.md.
#
# Targets:
#   make dist         source tarball with vendor/ (offline builds), in
#                     $(PKG_OUT)/pam-unshare-$(PKG_VERSION).tar.gz
#   make deb          Debian package (dpkg-buildpackage), in $(PKG_OUT)/
#   make rpm          RPM (rpmbuild -bb), in $(PKG_OUT)/
#   make arch         Arch package (makepkg, which Debian packages), in
#                     $(PKG_OUT)/; lists its files
#   make lintian      lintian on the package "make deb" built; fails on
#                     errors and warnings
#   make packaging-lint  shellcheck the maintainer scripts and the PKGBUILD
#
# Variables:
#   PKG_VERSION  package version: VERSION of the top-level Makefile, the
#                first entry of packaging/debian/changelog
#   PKG_OUT      where packages land ($(BUILD)/pkg)
#   GO_BIN       absolute path of the Go toolchain handed to the package
#                builds, which run with a clean environment (default: the
#                toolchain $(GO) runs in this tree, see below)
#
# Every package is built from a copy of the source tree in $(PKG_OUT)/stage,
# never in the working tree: dpkg-buildpackage writes next to the tree it
# builds, and debian/ is copied from packaging/debian/ (the source of truth)
# at build time.

PKG_VERSION ?= $(VERSION)
PKG_OUT     ?= $(BUILD)/pkg
PKG_NAME    := pam-unshare
PKG_DIST    := $(PKG_OUT)/$(PKG_NAME)-$(PKG_VERSION).tar.gz
PKG_STAGE   := $(PKG_OUT)/stage
# The toolchain $(GO) runs in this tree: the one go.mod's toolchain line
# names when $(GO) switches to it (GOTOOLCHAIN=auto, as a Debian golang-go
# does), else $(GO) itself. The package builds set GOTOOLCHAIN=local and
# have no module cache, so they are handed that toolchain's go binary.
GO_BIN      ?= $(or $(shell $(GO) env GOROOT 2>/dev/null),/usr/local/go)/bin/go
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)

# The package builds get a clean environment, as on a build daemon: no HOME,
# no Go settings of the caller. debian/rules and the spec set GOCACHE and
# GOPATH inside the build tree; vendor/ makes the module proxy unnecessary.
PKG_ENV := env -u HOME -u GOPATH -u GOCACHE -u GOMODCACHE -u GOFLAGS -u GOPROXY GO=$(GO_BIN)

.PHONY: dist deb rpm arch lintian packaging-lint packaging-clean

# The source tarball: the tree without build output, VCS data or a debian/
# directory, plus vendor/ so that the package builds need no network.
dist:
	rm -rf $(PKG_STAGE)/dist && mkdir -p $(PKG_STAGE)/dist/$(PKG_NAME)-$(PKG_VERSION)
	tar -c --exclude=./$(BUILD) --exclude=./.git --exclude=./debian --exclude=./vendor \
		--exclude='*.pam-unshare.bak' --exclude='*.qcow2' --exclude='*.img' --exclude='*.iso' . | tar -x -C $(PKG_STAGE)/dist/$(PKG_NAME)-$(PKG_VERSION)
	cd $(PKG_STAGE)/dist/$(PKG_NAME)-$(PKG_VERSION) && $(GO_BIN) mod vendor
	tar -C $(PKG_STAGE)/dist -czf $(PKG_DIST) --owner=0 --group=0 --sort=name \
		$(PKG_NAME)-$(PKG_VERSION)
	@echo "source tarball: $(PKG_DIST)"

deb: dist
	rm -rf $(PKG_STAGE)/deb && mkdir -p $(PKG_STAGE)/deb
	tar -xzf $(PKG_DIST) -C $(PKG_STAGE)/deb
	cp -a packaging/debian $(PKG_STAGE)/deb/$(PKG_NAME)-$(PKG_VERSION)/debian
	cd $(PKG_STAGE)/deb/$(PKG_NAME)-$(PKG_VERSION) && $(PKG_ENV) dpkg-buildpackage -b -us -uc
	cp $(PKG_STAGE)/deb/$(PKG_NAME)_$(PKG_VERSION)_$(DEB_ARCH).deb \
		$(PKG_STAGE)/deb/$(PKG_NAME)_$(PKG_VERSION)_$(DEB_ARCH).changes $(PKG_OUT)/
	@echo "package: $(PKG_OUT)/$(PKG_NAME)_$(PKG_VERSION)_$(DEB_ARCH).deb"

lintian:
	lintian --info --display-info --pedantic --fail-on error,warning \
		$(PKG_STAGE)/deb/$(PKG_NAME)_$(PKG_VERSION)_$(DEB_ARCH).changes

# --nodeps: on a non-RPM system rpmbuild cannot see the build dependencies
# (installed as .debs); on Fedora drop it, or use "rpmbuild -ta".
RPM_TOP := $(abspath $(PKG_STAGE))/rpm
rpm: dist
	grep -q "^Version: *$(PKG_VERSION)$$" packaging/rpm/$(PKG_NAME).spec || { echo "the spec's Version is not $(PKG_VERSION)" >&2; exit 1; }
	rm -rf $(RPM_TOP) && mkdir -p $(RPM_TOP)/SOURCES $(RPM_TOP)/SPECS
	cp $(PKG_DIST) $(RPM_TOP)/SOURCES/
	cp packaging/rpm/$(PKG_NAME).spec $(RPM_TOP)/SPECS/
	$(PKG_ENV) rpmbuild -bb --nodeps --define '_topdir $(RPM_TOP)' \
		--define 'go_bin $(GO_BIN)' $(RPM_TOP)/SPECS/$(PKG_NAME).spec
	cp $(RPM_TOP)/RPMS/*/$(PKG_NAME)-$(PKG_VERSION)-*.rpm $(PKG_OUT)/
	@ls $(PKG_OUT)/*.rpm

# makepkg, as Debian's package has it (with bsdtar from libarchive-tools):
# --nodeps, since pacman knows none of the build dependencies here, and no
# pacman (PACMAN=true). makepkg refuses to run as root; as root it runs in a
# user namespace that maps the caller to an unprivileged user ID (unshare
# --map-user), so it may still read the toolchain wherever go.mod's
# toolchain was fetched to. There root's files show as owned by that ID,
# which fails the unit tests that check a helper's owner: --nocheck (deb
# and rpm builds run the same tests, and make test all of them).
ARCH_TOP := $(abspath $(PKG_STAGE))/arch
arch: dist
	rm -rf $(ARCH_TOP) && mkdir -p $(ARCH_TOP)
	cp packaging/arch/PKGBUILD packaging/arch/$(PKG_NAME).install $(PKG_DIST) $(ARCH_TOP)/
	cd $(ARCH_TOP) && $(PKG_ENV) HOME=$(ARCH_TOP) PATH=$(dir $(GO_BIN)):$$PATH PKGDEST=$(ARCH_TOP) \
		$(if $(filter 0,$(shell id -u)),unshare --user --map-user=65534 --map-group=65534) \
		env PACMAN=true makepkg --nodeps --nocheck --noconfirm --cleanbuild
	cp $(ARCH_TOP)/$(PKG_NAME)-$(PKG_VERSION)-*.pkg.tar* $(PKG_OUT)/
	bsdtar -tvf $(ARCH_TOP)/$(PKG_NAME)-$(PKG_VERSION)-*.pkg.tar* | awk '$$NF !~ /^\./ { print $$1, $$NF }'

packaging-clean:
	rm -rf $(PKG_OUT)

# Shell in the packaging: maintainer scripts, PKGBUILD, pacman install file.
# (PKGBUILD variables are read by makepkg: SC2034; srcdir/pkgdir come from
# it: SC2154.)
packaging-lint:
	shellcheck -s sh packaging/debian/pam-unshare.prerm packaging/debian/pam-unshare.postinst packaging/debian/pam-unshare.postrm
	shellcheck -s bash -e SC2034,SC2154 packaging/arch/PKGBUILD
	shellcheck -s bash packaging/arch/pam-unshare.install
