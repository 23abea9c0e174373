// Package retry is a backend decorator that retries transient failures (errs.Unavailable
// and stalled calls) with bounded, jittered exponential backoff. It retries nothing else:
// not NotFound, Invalid, Unauthorized, Canceled, nor errors returned by the caller's own
// callbacks. It must not change what a successful call returns.
package retry
