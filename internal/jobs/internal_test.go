package jobs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/plan"
	"github.com/rewind-dr/rewind/internal/vault"
)

func TestRemovals(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func(n int) []*vault.Point {
		var ps []*vault.Point
		for i := 0; i < n; i++ {
			p := &vault.Point{Time: now.Add(-time.Duration(n-i) * time.Hour)}
			p.ID[0] = byte(i + 1)
			ps = append(ps, p)
		}
		return ps
	}
	for _, tc := range []struct {
		name   string
		points int
		pols   []plan.Retention
		remove []int // indexes, oldest first
	}{
		{"keep last 2 of 4", 4, []plan.Retention{{KeepLast: 2}}, []int{0, 1}},
		{"union of two policies keeps more", 4, []plan.Retention{{KeepLast: 1}, {KeepLast: 3}}, []int{0}},
		{"delete after 150m", 4, []plan.Retention{{KeepLast: 10, DeleteAfter: 150 * time.Minute}}, []int{0, 1}},
		{"nothing to remove", 2, []plan.Retention{{KeepLast: 5}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := mk(tc.points)
			var pols []policy
			for _, r := range tc.pols {
				pols = append(pols, policy{ret: r})
			}
			got := removals(ps, pols, now)
			if len(got) != len(tc.remove) {
				t.Fatalf("removed %d points, want %d", len(got), len(tc.remove))
			}
			for i, idx := range tc.remove {
				if got[i] != ps[idx] {
					t.Fatalf("removal %d is not point %d", i, idx)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	q := &Queue{opts: QueueOptions{RetryDelay: time.Second, RetryMaxDelay: 5 * time.Second}}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 40: 5 * time.Second} {
		if got := q.backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %s, want %s", attempt, got, want)
		}
	}
}

// FuzzDecodeParams feeds job parameters as an API client may send them: they decode or
// fail with errs.Invalid, never panic.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []string{`{}`, `{"point":"latest","target":"/x","include":["a"]}`, `{"read_data":true}`,
		`{"resource":"docs"}`, `{"point":1}`, `{"x":1}`, `[]`, `{"point":"a"}{"b":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j := &catalog.Job{ID: "j", Params: json.RawMessage(b)}
		if err := decodeParams(&catalog.Job{ID: "j", Params: json.RawMessage(`{"point":"a"} {"b":1}`)}, &CopyParams{}); err == nil {
			t.Fatal("trailing data accepted")
		}
		for _, v := range []any{&RestoreParams{}, &VerifyParams{}, &CopyParams{}, &PruneParams{}} {
			if err := decodeParams(j, v); err != nil && !errs.Is(err, errs.Invalid) {
				t.Fatalf("%s: %v is not invalid", b, err)
			}
		}
	})
}
