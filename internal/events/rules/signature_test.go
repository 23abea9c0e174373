package rules_test

import (
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"a":1}`)
	at := time.Unix(1_700_000_000, 0)
	good := rules.Sign(secret, body, at)
	other := rules.Sign([]byte("old"), body, at)
	tests := []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		tol    time.Duration
		kind   errs.Kind // Other means success
	}{
		{"valid", good, body, at, 0, errs.Other},
		{"valid within tolerance", good, body, at.Add(4 * time.Minute), 0, errs.Other},
		{"clock behind", good, body, at.Add(-4 * time.Minute), 0, errs.Other},
		{"rotated secrets", other + ",v1=" + good[len("t=1700000000,v1="):], body, at, 0, errs.Other},
		{"unknown scheme ignored", good + ",v0=abc", body, at, 0, errs.Other},
		{"stale", good, body, at.Add(6 * time.Minute), 0, errs.Unauthorized},
		{"custom tolerance", good, body, at.Add(2 * time.Minute), time.Minute, errs.Unauthorized},
		{"tampered body", good, []byte(`{"a":2}`), at, 0, errs.Unauthorized},
		{"wrong secret", other, body, at, 0, errs.Unauthorized},
		{"missing header", "", body, at, 0, errs.Unauthorized},
		{"no timestamp", "v1=" + good[len("t=1700000000,v1="):], body, at, 0, errs.Invalid},
		{"no signature", "t=1700000000", body, at, 0, errs.Invalid},
		{"bad hex", "t=1700000000,v1=zz", body, at, 0, errs.Invalid},
		{"bad timestamp", "t=soon,v1=" + good[len("t=1700000000,v1="):], body, at, 0, errs.Invalid},
		{"not key=value", "garbage", body, at, 0, errs.Invalid},
		{"two timestamps", "t=1,t=2,v1=00", body, at, 0, errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rules.Verify(secret, tt.header, tt.body, tt.now, tt.tol)
			if tt.kind == errs.Other {
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
				return
			}
			if !errs.Is(err, tt.kind) {
				t.Errorf("Verify = %v, want kind %v", err, tt.kind)
			}
		})
	}
}
