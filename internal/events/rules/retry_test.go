package rules_test

import (
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/events/rules"
)

func TestRetryPolicyNext(t *testing.T) {
	first := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	half := func() float64 { return 0.5 }
	almostOne := func() float64 { return 0.999999 }
	zero := func() float64 { return 0 }
	tests := []struct {
		name      string
		policy    rules.RetryPolicy
		attempt   int
		now       time.Time
		rnd       func() float64
		wantDelay time.Duration
		wantRetry bool
	}{
		{"first retry, half jitter", rules.RetryPolicy{}, 1, first, half, 500 * time.Millisecond, true},
		{"second retry doubles", rules.RetryPolicy{}, 2, first, half, time.Second, true},
		{"fifth retry", rules.RetryPolicy{}, 5, first, half, 8 * time.Second, true},
		{"capped at 5m", rules.RetryPolicy{}, 20, first, half, 150 * time.Second, true},
		{"huge attempt stays capped", rules.RetryPolicy{}, 100, first, half, 150 * time.Second, true},
		{"full jitter lower bound", rules.RetryPolicy{}, 3, first, zero, 0, true},
		{"full jitter upper bound", rules.RetryPolicy{}, 30, first, almostOne, time.Duration(0.999999 * float64(5*time.Minute)), true},
		{"out-of-range rnd treated as 0", rules.RetryPolicy{}, 3, first, func() float64 { return 1.5 }, 0, true},
		{"default 185 attempts: last", rules.RetryPolicy{}, 185, first, half, 150 * time.Second, true},
		{"default 185 attempts: exhausted", rules.RetryPolicy{}, 186, first, half, 0, false},
		{"custom attempt limit", rules.RetryPolicy{MaxAttempts: 3}, 4, first, half, 0, false},
		{"custom attempt limit, last", rules.RetryPolicy{MaxAttempts: 3}, 3, first, half, 2 * time.Second, true},
		{"no retry", rules.RetryPolicy{MaxAttempts: rules.NoRetry}, 1, first, half, 0, false},
		{"default age limit passed", rules.RetryPolicy{}, 2, first.Add(24 * time.Hour), half, 0, false},
		{"custom age limit passed", rules.RetryPolicy{MaxAge: time.Hour}, 2, first.Add(time.Hour + time.Second), half, 0, false},
		{"delay shortened to the deadline", rules.RetryPolicy{MaxAge: time.Hour}, 20, first.Add(time.Hour - 10*time.Second), half, 10 * time.Second, true},
		{"attempt below 1 is the first", rules.RetryPolicy{}, 0, first, half, 500 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, retry := tt.policy.Next(tt.attempt, first, tt.now, tt.rnd)
			if d != tt.wantDelay || retry != tt.wantRetry {
				t.Errorf("Next(%d) = %v, %v; want %v, %v", tt.attempt, d, retry, tt.wantDelay, tt.wantRetry)
			}
		})
	}
}

func TestRetryJitterBounds(t *testing.T) {
	first := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for attempt := 1; attempt <= 12; attempt++ {
		ceiling := min(time.Second<<(attempt-1), 5*time.Minute)
		for range 200 {
			d, retry := rules.DefaultRetryPolicy.Next(attempt, first, first, nil)
			if !retry || d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: delay %v retry %v, want [0, %v)", attempt, d, retry, ceiling)
			}
		}
	}
}
