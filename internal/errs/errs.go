// Package errs defines Rewind's one error type. Every package returns *Error (or wraps one)
// for failures a person must act on; the command line maps Kind to an exit code and the API
// maps Kind to an HTTP status, each in exactly one place. Package errs imports no other
// internal package.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error. The list is closed: callers switch on it.
type Kind uint8

const (
	Other        Kind = iota // unclassified
	Invalid                  // bad input: a flag, a config value, a name
	NotFound                 // the thing asked for does not exist
	Exists                   // the thing to create already exists
	Conflict                 // the operation conflicts with current state
	Unauthorized             // wrong password, missing or under-privileged token
	Locked                   // the vault or object is locked by someone else
	Corrupt                  // stored bytes failed authentication or decoding
	Unavailable              // a backend or service cannot be reached now (retryable)
	Canceled                 // the operation was canceled
	Internal                 // a bug
)

var kindNames = [...]string{
	Other:        "error",
	Invalid:      "invalid",
	NotFound:     "not found",
	Exists:       "already exists",
	Conflict:     "conflict",
	Unauthorized: "unauthorized",
	Locked:       "locked",
	Corrupt:      "corrupt",
	Unavailable:  "unavailable",
	Canceled:     "canceled",
	Internal:     "internal error",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is the one error type. Op names the operation ("vault.Open", "restore"), Kind
// classifies, Err is the cause, Hint tells a person what to do about it.
type Error struct {
	Op   string
	Kind Kind
	Err  error
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(e.Kind.String())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error. Arguments are matched by type: string is Op, Kind is Kind, error is
// Err. Use Hint to add a hint.
func E(op string, kind Kind, err error) *Error {
	return &Error{Op: op, Kind: kind, Err: err}
}

// Errorf builds an *Error whose cause is a formatted message.
func Errorf(op string, kind Kind, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Err: fmt.Errorf(format, args...)}
}

// WithHint returns e with its hint set.
func (e *Error) WithHint(hint string) *Error {
	e.Hint = hint
	return e
}

// KindOf returns the Kind of the outermost *Error in err's chain that has one other than
// Other, or Other.
func KindOf(err error) Kind {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return Other
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Other
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return KindOf(err) == k }

// HintOf returns the first hint found in err's chain, or "".
func HintOf(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Hint != "" {
			return e.Hint
		}
		err = e.Err
	}
	return ""
}
