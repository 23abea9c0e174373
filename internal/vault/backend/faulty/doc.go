// Package faulty is a backend decorator for tests that injects failures: transient errors,
// stalls, short reads, flipped bits, saves that lie, listings that break, and failures
// pinned to a handle or type. Every call is logged with the fault it got. It is for tests
// only and must never be composed into a production backend stack.
package faulty
