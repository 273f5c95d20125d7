// Package abi is the interface between the C front module pam_unshare.so
// (front/front.c) and the Go library it loads, read from abi.h, where it
// is written once for both languages.
package abi

// #include "abi.h"
import "C"

// Version is PU_GO_ABI: what the Go library's interface check returns,
// and the front module expects.
const Version = C.PU_GO_ABI

// Symbol is PU_GO_ABI_SYMBOL: the name of that check, which the front
// module looks up in the Go library and pam-unshare doctor checks it
// exports.
const Symbol = C.PU_GO_ABI_SYMBOL
