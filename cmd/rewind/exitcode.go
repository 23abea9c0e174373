package main

import (
	"fmt"
	"io"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Exit codes. They are part of the command-line contract and documented in docs/CLI.md.
const (
	exitOK          = 0
	exitFailure     = 1  // the command failed (generic)
	exitUsage       = 2  // bad flags or arguments, an invalid file given on the command line
	exitPartial     = 3  // completed with warnings: some files could not be read or restored
	exitNotFound    = 10 // the vault, point or path does not exist
	exitLocked      = 11 // the vault is locked by another operation
	exitWrongKey    = 12 // wrong password or key: nothing was read or written
	exitCorrupt     = 13 // stored data failed authentication or is missing
	exitUnavailable = 14 // the storage could not be reached
	exitInterrupted = 130
)

// exitCodeFor maps an error's Kind to the exit code: the one place this mapping lives.
func exitCodeFor(err error) int {
	switch errs.KindOf(err) {
	case errs.Invalid:
		return exitUsage
	case errs.NotFound:
		return exitNotFound
	case errs.Locked:
		return exitLocked
	case errs.Unauthorized:
		return exitWrongKey
	case errs.Corrupt:
		return exitCorrupt
	case errs.Unavailable:
		return exitUnavailable
	case errs.Canceled:
		return exitInterrupted
	}
	return exitFailure
}

// printError writes err and its hint for a person.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "rewind: %v\n", err)
	if h := errs.HintOf(err); h != "" {
		fmt.Fprintf(w, "hint: %s\n", h)
	}
}
