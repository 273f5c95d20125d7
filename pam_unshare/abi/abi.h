/*
 * abi.h - the interface between the C front module pam_unshare.so
 * (front/front.c) and the Go library it loads (pam_unshare/), written once.
 *
 * Read by front/front.c, which checks the library with it; by
 * pam_unshare/glue.c, which ties it to the Go export (see PU_GO_ABI_FUNC);
 * and by the Go side through package abi (abi.go): the library returns
 * abi.Version and pam-unshare doctor looks for abi.Symbol.
 */
#ifndef PAM_UNSHARE_ABI_H
#define PAM_UNSHARE_ABI_H

/* The interface version. The front refuses a library that returns another.
 * Change it when the entry points, or what the front does around them,
 * change. */
#define PU_GO_ABI 1

/*
 * The function, exported by the Go library, that returns PU_GO_ABI: the
 * front looks it up by this name and calls it first (a cgo export returns
 * only once the Go runtime is up). Two places must spell the name out
 * because their tools read no header: the //export line in
 * pam_unshare/module.go, and pam_unshare/exports.map. glue.c refers to
 * PU_GO_ABI_FUNC, so a library whose export has another name fails to
 * link; one whose exports.map leaves it out is refused by the front, which
 * the tests see at every session.
 */
#define PU_GO_ABI_FUNC pam_unshare_go_abi

/* PU_GO_ABI_FUNC's name as a string, for dlsym. */
#define PU_GO_ABI_STR_(x) #x
#define PU_GO_ABI_STR(x) PU_GO_ABI_STR_(x)
#define PU_GO_ABI_SYMBOL PU_GO_ABI_STR(PU_GO_ABI_FUNC)

#endif
