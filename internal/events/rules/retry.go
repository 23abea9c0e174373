package rules

import (
	"math/rand/v2"
	"time"
)

// Retry defaults and bounds, as EventBridge's retry policy.
const (
	DefaultMaxAttempts = 185            // retries after the first attempt
	DefaultMaxAge      = 24 * time.Hour // age of an event past which it is not retried
	MinMaxAge          = time.Minute
	// NoRetry as RetryPolicy.MaxAttempts means a failed delivery is not retried.
	NoRetry = -1

	RetryBase = time.Second     // the first backoff ceiling
	RetryCap  = 5 * time.Minute // the largest backoff ceiling
)

// RetryPolicy bounds the retries of one delivery. MaxAttempts is the number of retries
// after the first attempt (zero means DefaultMaxAttempts, NoRetry means none); MaxAge is
// how long after the first attempt retries may go on (zero means DefaultMaxAge).
type RetryPolicy struct {
	MaxAttempts int           `json:"max_attempts"`
	MaxAge      time.Duration `json:"max_age"`
}

// DefaultRetryPolicy is EventBridge's default: 185 retries within 24 hours.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: DefaultMaxAttempts, MaxAge: DefaultMaxAge}

func (p RetryPolicy) limits() (int, time.Duration) {
	n, age := p.MaxAttempts, p.MaxAge
	switch {
	case n == 0:
		n = DefaultMaxAttempts
	case n < 0:
		n = 0
	}
	if age <= 0 {
		age = DefaultMaxAge
	}
	return n, age
}

// Next decides what follows a failed attempt. attempt is the number of attempts made so
// far (1 after the first failure), firstAttempt when the first was made, rnd a source of
// numbers in [0, 1) (nil means math/rand/v2). The delay is exponential backoff with full
// jitter: a random duration below min(RetryCap, RetryBase·2^(attempt-1)), shortened so
// that the retry happens no later than firstAttempt+MaxAge. retry is false once MaxAttempts
// retries have been made or the age limit has passed; the caller then writes a
// dead-letter record. Next is a pure function.
func (p RetryPolicy) Next(attempt int, firstAttempt, now time.Time, rnd func() float64) (delay time.Duration, retry bool) {
	maxRetries, maxAge := p.limits()
	if attempt < 1 {
		attempt = 1
	}
	if attempt > maxRetries {
		return 0, false
	}
	deadline := firstAttempt.Add(maxAge)
	if !now.Before(deadline) {
		return 0, false
	}
	ceiling := RetryCap
	if shift := attempt - 1; shift < 30 {
		if c := RetryBase << shift; c < ceiling {
			ceiling = c
		}
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	f := rnd()
	if f < 0 || f >= 1 {
		f = 0
	}
	delay = time.Duration(f * float64(ceiling))
	if left := deadline.Sub(now); delay > left {
		delay = left
	}
	return delay, true
}
