package retry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/backendtest"
	"github.com/rewind-dr/rewind/internal/vault/backend/faulty"
	"github.com/rewind-dr/rewind/internal/vault/backend/local"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
	"github.com/rewind-dr/rewind/internal/vault/backend/retry"
)

var ctx = context.Background()

// noSleep records the waits instead of sleeping.
type noSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (n *noSleep) Sleep(ctx context.Context, d time.Duration) error {
	n.mu.Lock()
	n.waits = append(n.waits, d)
	n.mu.Unlock()
	return ctx.Err()
}

func count(f *faulty.Backend, m faulty.Method) int {
	n := 0
	for _, c := range f.Calls() {
		if c.Method == m {
			n++
		}
	}
	return n
}

func TestConformanceMem(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return retry.New(mem.New(), retry.Policy{}) })
}

// The whole suite passes through a backend that fails 30% of calls and cuts 10% of reads.
func TestConformanceFlaky(t *testing.T) {
	var seed int64
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		seed++
		f := faulty.New(mem.New(), seed)
		f.SetErrorRateAll(0.3)
		f.SetShortRead(0.1)
		return retry.New(f, retry.Policy{MaxAttempts: 40, Sleep: (&noSleep{}).Sleep})
	})
}

func TestFlakyCompletes(t *testing.T) {
	f := faulty.New(mem.New(), 3)
	f.SetErrorRateAll(0.3)
	var retries int
	r := retry.New(f, retry.Policy{MaxAttempts: 30, Sleep: (&noSleep{}).Sleep,
		OnRetry: func(string, backend.Handle, int, error) { retries++ }})
	want := make(map[string][]byte)
	for i := 0; i < 100; i++ {
		h := backend.Handle{Type: backend.Pack, Name: backendtest.ID()}
		data := []byte(h.Name)
		if err := r.Save(ctx, h, data); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		want[h.Name] = data
	}
	for name, data := range want {
		got, err := backend.LoadAll(ctx, r, backend.Handle{Type: backend.Pack, Name: name}, 0, 0)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Load %s = %q, %v", name, got, err)
		}
	}
	if got := backendtest.SortedNames(t, r, backend.Pack); len(got) != len(want) {
		t.Fatalf("List returned %d, want %d", len(got), len(want))
	}
	if errors := f.Faults()[faulty.Error]; errors == 0 || retries != errors {
		t.Errorf("%d injected errors, %d retries: want some, and equal", errors, retries)
	}
}

func TestPermanentErrorsNotRetried(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	r := retry.New(f, retry.Policy{Sleep: (&noSleep{}).Sleep})
	missing := backend.Handle{Type: backend.Key, Name: "missing"}
	if _, err := r.Stat(ctx, missing); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Stat = %v, want NotFound", err)
	}
	if err := r.Remove(ctx, missing); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Remove = %v, want NotFound", err)
	}
	if err := r.Save(ctx, backend.Handle{Type: backend.Key}, []byte("x")); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Save with empty name = %v, want Invalid", err)
	}
	h := backend.Handle{Type: backend.Key, Name: "k"}
	if err := r.Save(ctx, h, []byte("0123")); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.LoadAll(ctx, r, h, 2, 10); !errs.Is(err, errs.Invalid) {
		t.Fatalf("out of range Load = %v, want Invalid", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Stat(canceled, h); !errs.Is(err, errs.Canceled) {
		t.Fatalf("Stat with canceled ctx = %v, want Canceled", err)
	}
	for _, m := range []faulty.Method{faulty.Stat, faulty.Remove, faulty.Save, faulty.Load} {
		want := 1 // Stat: the missing file, then the canceled call
		if m == faulty.Save || m == faulty.Stat {
			want = 2
		}
		if got := count(f, m); got != want {
			t.Errorf("%s called %d times, want %d (no retries)", m, got, want)
		}
	}
	// An error of fn itself is returned as is, once.
	mine := errors.New("fn refuses")
	calls := 0
	err := r.Load(ctx, h, 0, 0, func(io.Reader) error { calls++; return mine })
	if err != mine || calls != 1 {
		t.Fatalf("Load with a failing fn = %v after %d calls, want fn's error after 1", err, calls)
	}
}

func TestAttemptsBounded(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	h := backend.Handle{Type: backend.Index, Name: "i"}
	f.FailHandle(h)
	sl := &noSleep{}
	var seen []int
	p := retry.Policy{MaxAttempts: 5, InitialDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond,
		Sleep: sl.Sleep, Jitter: func() float64 { return 0.999 },
		OnRetry: func(op string, got backend.Handle, attempt int, err error) {
			if op != "retry.Save" || got != h || !errs.Is(err, errs.Unavailable) {
				t.Errorf("OnRetry(%q, %v, %d, %v)", op, got, attempt, err)
			}
			seen = append(seen, attempt)
		}}
	err := retry.New(f, p).Save(ctx, h, []byte("x"))
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Save = %v, want Unavailable", err)
	}
	if hint := errs.HintOf(err); !strings.Contains(hint, "gave up after 5 attempts") {
		t.Errorf("hint %q does not name the attempts", hint)
	}
	if got := count(f, faulty.Save); got != 5 {
		t.Errorf("Save tried %d times, want 5", got)
	}
	if len(seen) != 4 || seen[0] != 1 || seen[3] != 4 {
		t.Errorf("OnRetry attempts = %v, want [1 2 3 4]", seen)
	}
	// Waits follow the doubling bound, capped by MaxDelay, scaled by jitter.
	bounds := []time.Duration{100, 200, 300, 300}
	if len(sl.waits) != len(bounds) {
		t.Fatalf("waited %d times, want %d", len(sl.waits), len(bounds))
	}
	for i, b := range bounds {
		b *= time.Millisecond
		if sl.waits[i] > b || sl.waits[i] < b*99/100 {
			t.Errorf("wait %d = %v, want just under %v", i, sl.waits[i], b)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := retry.Policy{InitialDelay: time.Second, MaxDelay: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 50: 5 * time.Second} {
		if got := p.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
	if got := (retry.Policy{}).Backoff(1); got != retry.DefaultInitialDelay {
		t.Errorf("default first backoff = %v", got)
	}
	if got := (retry.Policy{}).Backoff(100); got != retry.DefaultMaxDelay {
		t.Errorf("default backoff cap = %v", got)
	}
}

func TestStalledCallCut(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	h := backend.Handle{Type: backend.Key, Name: "k"}
	if err := f.Save(ctx, h, []byte("key")); err != nil {
		t.Fatal(err)
	}
	f.SetStall(1, time.Hour)
	var reasons []string
	r := retry.New(f, retry.Policy{AttemptTimeout: 20 * time.Millisecond, Sleep: (&noSleep{}).Sleep,
		OnRetry: func(_ string, _ backend.Handle, _ int, err error) {
			reasons = append(reasons, err.Error())
			f.SetStall(0, 0) // the next attempt goes through
		}})
	got, err := backend.LoadAll(ctx, r, h, 0, 0)
	if err != nil || string(got) != "key" {
		t.Fatalf("Load after a stall = %q, %v", got, err)
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "no progress") {
		t.Errorf("retry reasons = %q, want one stall", reasons)
	}
	// Stalling every time gives up with Unavailable, not Canceled.
	f.SetStall(1, time.Hour)
	r = retry.New(f, retry.Policy{MaxAttempts: 2, AttemptTimeout: 10 * time.Millisecond, Sleep: (&noSleep{}).Sleep})
	if _, err := r.Stat(ctx, h); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("always-stalling Stat = %v, want Unavailable", err)
	}
}

func TestLoadRestartsAfterShortRead(t *testing.T) {
	f := faulty.New(mem.New(), 5)
	h := backend.Handle{Type: backend.Pack, Name: "ab03"}
	data := bytes.Repeat([]byte("abcdefgh"), 512)
	if err := f.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	f.SetShortRead(0.5)
	r := retry.New(f, retry.Policy{MaxAttempts: 30, Sleep: (&noSleep{}).Sleep})
	for i := 0; i < 20; i++ {
		calls := 0
		var got []byte
		err := r.Load(ctx, h, 8, 0, func(rd io.Reader) error {
			calls++
			var err error
			got, err = io.ReadAll(rd) // restartable: replaces what an earlier call got
			return err
		})
		if err != nil || !bytes.Equal(got, data[8:]) {
			t.Fatalf("Load %d: %d bytes, %v", i, len(got), err)
		}
		if calls < 1 {
			t.Fatal("fn not called")
		}
	}
	if f.Faults()[faulty.ShortRead] == 0 {
		t.Error("no short read was injected; the test proves nothing")
	}
}

func TestListRetriedOnlyBeforeEntries(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	for i := 0; i < 5; i++ {
		if err := f.Save(ctx, backend.Handle{Type: backend.Point, Name: backendtest.ID()}, []byte("p")); err != nil {
			t.Fatal(err)
		}
	}
	r := retry.New(f, retry.Policy{Sleep: (&noSleep{}).Sleep})
	f.SetListFailAfter(2)
	n := 0
	err := r.List(ctx, backend.Point, func(backend.FileInfo) error { n++; return nil })
	if !errs.Is(err, errs.Unavailable) || n != 2 || count(f, faulty.List) != 1 {
		t.Fatalf("List broken after entries: %d entries, %d calls, %v; want 2, 1 and Unavailable", n, count(f, faulty.List), err)
	}
	f.SetListFailAfter(-1)
	f.SetErrorRate(faulty.List, 1)
	r = retry.New(f, retry.Policy{Sleep: (&noSleep{}).Sleep,
		OnRetry: func(string, backend.Handle, int, error) { f.SetErrorRate(faulty.List, 0) }})
	n = 0
	if err := r.List(ctx, backend.Point, func(backend.FileInfo) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("List failing before entries: %d entries, %v; want a retried complete listing", n, err)
	}
}

// lostReply removes the file but reports a transient failure the first time.
type lostReply struct {
	*mem.Backend
	once sync.Once
}

func (l *lostReply) Remove(ctx context.Context, h backend.Handle) error {
	err := l.Backend.Remove(ctx, h)
	lost := false
	l.once.Do(func() { lost = true })
	if lost {
		return errs.Errorf("test.Remove", errs.Unavailable, "connection reset")
	}
	return err
}

// A Remove whose first reply was lost is retried and reports NotFound, as documented; the
// file is gone either way.
func TestRemoveWhoseReplyWasLost(t *testing.T) {
	b := &lostReply{Backend: mem.New()}
	h := backend.Handle{Type: backend.Lock, Name: "l"}
	if err := b.Save(ctx, h, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := retry.New(b, retry.Policy{Sleep: (&noSleep{}).Sleep}).Remove(ctx, h); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Remove = %v, want NotFound from the retry", err)
	}
	if _, err := b.Stat(ctx, h); !errs.Is(err, errs.NotFound) {
		t.Fatalf("file still there: %v", err)
	}
}

func TestCanceledWhileWaiting(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	f.SetErrorRateAll(1)
	c, cancel := context.WithCancel(ctx)
	r := retry.New(f, retry.Policy{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}})
	if _, err := r.Stat(c, backend.Handle{Type: backend.Key, Name: "k"}); !errs.Is(err, errs.Canceled) {
		t.Fatalf("Stat canceled during backoff = %v, want Canceled", err)
	}
	if got := count(f, faulty.Stat); got != 1 {
		t.Errorf("Stat tried %d times after cancel, want 1", got)
	}
}

func TestCreateForwarded(t *testing.T) {
	dir := t.TempDir()
	l, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := faulty.New(l, 1)
	f.SetErrorRateAll(1) // Create is not a faulty method: it goes through
	r := retry.New(f, retry.Policy{Sleep: (&noSleep{}).Sleep})
	if err := r.Create(ctx); err != nil {
		t.Fatalf("Create through retry and faulty: %v", err)
	}
	if err := l.Save(ctx, backend.Handle{Type: backend.Config}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(ctx); !errs.Is(err, errs.Exists) {
		t.Fatalf("second Create = %v, want Exists", err)
	}
	if err := retry.New(mem.New(), retry.Policy{}).Create(ctx); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Create over mem = %v, want Invalid", err)
	}
}
