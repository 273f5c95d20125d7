module github.com/pam-unshare/pam-unshare

go 1.26.0

toolchain go1.26.11

require (
	github.com/msteinert/pam/v2 v2.1.0
	golang.org/x/sys v0.49.0
)
