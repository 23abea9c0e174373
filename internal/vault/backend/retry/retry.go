package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

// Defaults for a zero Policy field.
const (
	DefaultMaxAttempts    = 6
	DefaultInitialDelay   = 200 * time.Millisecond
	DefaultMaxDelay       = 10 * time.Second
	DefaultAttemptTimeout = 2 * time.Minute
)

// Policy says how hard to try. Zero fields take the defaults above.
type Policy struct {
	// MaxAttempts is the number of attempts including the first.
	MaxAttempts int
	// InitialDelay bounds the wait after the first failure; each later wait bound doubles,
	// up to MaxDelay. The actual wait is uniformly random in [0, bound) ("full jitter"), so
	// many clients that failed together do not come back together.
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// AttemptTimeout is a watchdog: an attempt that makes no progress for this long is
	// canceled and retried. Progress is the call returning, a Read returning data during
	// Load, or an entry during List.
	AttemptTimeout time.Duration
	// Sleep waits d or until ctx ends (returning ctx's error). Tests inject one that does
	// not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random number in [0, 1); default math/rand/v2.Float64.
	Jitter func() float64
	// OnRetry, when set, is called before each retry with the attempt that failed
	// (1-based) and its error; for logging.
	OnRetry func(op string, h backend.Handle, attempt int, err error)
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultInitialDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Jitter == nil {
		p.Jitter = rand.Float64
	}
	return p
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff returns the upper bound of the wait after failed attempt n (1-based).
func (p Policy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	d := p.InitialDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

var _ backend.Backend = (*Backend)(nil)

// Backend retries the calls of the backend it wraps. It is safe for concurrent use if the
// wrapped backend is.
type Backend struct {
	b backend.Backend
	p Policy
}

// New wraps b with policy p.
func New(b backend.Backend, p Policy) *Backend {
	return &Backend{b: b, p: p.withDefaults()}
}

// Unwrap returns the wrapped backend (for instance to reach its Create).
func (r *Backend) Unwrap() backend.Backend { return r.b }

// Location returns the wrapped backend's location.
func (r *Backend) Location() string { return r.b.Location() }

// Close closes the wrapped backend.
func (r *Backend) Close() error { return r.b.Close() }

// errStalled is the cancel cause of an attempt stopped by the watchdog.
var errStalled = errors.New("no progress")

// watchdog cancels an attempt's context when progress stops for too long.
type watchdog struct {
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
	fired  atomic.Bool
}

func newWatchdog(parent context.Context, d time.Duration) (*watchdog, context.Context) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{d: d, cancel: cancel}
	w.timer = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel(errStalled)
	})
	return w, ctx
}

func (w *watchdog) progress() { w.timer.Reset(w.d) }

// stop ends the attempt's context and reports whether the watchdog fired.
func (w *watchdog) stop() bool {
	w.timer.Stop()
	w.cancel(nil)
	return w.fired.Load()
}

// attemptFunc runs one attempt. own reports that err came from the caller's callback and
// must be returned as is.
type attemptFunc func(ctx context.Context, w *watchdog) (own bool, err error)

// transient reports whether err is worth another attempt.
func transient(err error) bool {
	return errs.Is(err, errs.Unavailable) || (errs.KindOf(err) == errs.Other && errors.Is(err, io.ErrUnexpectedEOF))
}

func (r *Backend) run(ctx context.Context, op string, h backend.Handle, attempt attemptFunc) error {
	for n := 1; ; n++ {
		w, actx := newWatchdog(ctx, r.p.AttemptTimeout)
		own, err := attempt(actx, w)
		stalled := w.stop()
		if err == nil || own {
			return err
		}
		if ctx.Err() != nil {
			if errs.Is(err, errs.Canceled) {
				return err
			}
			return errs.E(op, errs.Canceled, err)
		}
		if stalled {
			err = errs.E(op, errs.Unavailable, fmt.Errorf("%v: no progress for %v, attempt canceled: %w", h, r.p.AttemptTimeout, err))
		} else if !transient(err) {
			return err
		}
		if n >= r.p.MaxAttempts {
			hint := fmt.Sprintf("gave up after %d attempts at %s", n, r.b.Location())
			if inner := errs.HintOf(err); inner != "" {
				hint += "; " + inner
			} else {
				hint += "; the storage kept failing: check that it is reachable and healthy, then try again"
			}
			return errs.E(op, errs.Unavailable, err).WithHint(hint)
		}
		if r.p.OnRetry != nil {
			r.p.OnRetry(op, h, n, err)
		}
		d := time.Duration(r.p.Jitter() * float64(r.p.Backoff(n)))
		if serr := r.p.Sleep(ctx, d); serr != nil {
			return errs.E(op, errs.Canceled, fmt.Errorf("waiting to retry after %w", err))
		}
	}
}

// Save retries the whole Save: saving the same bytes again is harmless.
func (r *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	return r.run(ctx, "retry.Save", h, func(ctx context.Context, _ *watchdog) (bool, error) {
		return false, r.b.Save(ctx, h, data)
	})
}

// trackedReader remembers the reader's own errors (as opposed to fn's) and feeds the
// watchdog.
type trackedReader struct {
	r   io.Reader
	w   *watchdog
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.w.progress()
	}
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// Load retries transient failures. fn must be restartable: on retry it is called again
// from the start with a fresh reader, so it must discard what it got from an earlier
// reader. A read error that fn returns (or wraps) is retried when it is transient; any
// other error of fn is returned as is, without retry.
func (r *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	return r.run(ctx, "retry.Load", h, func(ctx context.Context, w *watchdog) (bool, error) {
		own := false
		err := r.b.Load(ctx, h, offset, length, func(rd io.Reader) error {
			w.progress()
			tr := &trackedReader{r: rd, w: w}
			ferr := fn(tr)
			if ferr != nil && (tr.err == nil || !errors.Is(ferr, tr.err)) {
				own = true
			}
			return ferr
		})
		return own, err
	})
}

// Stat retries transient failures.
func (r *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	var fi backend.FileInfo
	err := r.run(ctx, "retry.Stat", h, func(ctx context.Context, _ *watchdog) (bool, error) {
		var err error
		fi, err = r.b.Stat(ctx, h)
		return false, err
	})
	return fi, err
}

// List retries a listing only while fn has not been called yet: once entries have been
// delivered, a retry would deliver them again, so a later failure is returned as is and
// the caller decides whether to list again.
func (r *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	return r.run(ctx, "retry.List", backend.Handle{Type: t}, func(ctx context.Context, w *watchdog) (bool, error) {
		called, own := false, false
		err := r.b.List(ctx, t, func(fi backend.FileInfo) error {
			called = true
			w.progress()
			if err := fn(fi); err != nil {
				own = true
				return err
			}
			return nil
		})
		return own || (called && err != nil), err
	})
}

// Remove retries transient failures. An attempt whose reply was lost may have removed the
// file, so a retried Remove can return NotFound for a file that existed; callers that only
// want the file gone treat NotFound as done.
func (r *Backend) Remove(ctx context.Context, h backend.Handle) error {
	return r.run(ctx, "retry.Remove", h, func(ctx context.Context, _ *watchdog) (bool, error) {
		return false, r.b.Remove(ctx, h)
	})
}

var _ backend.Creator = (*Backend)(nil)

// Create forwards to the wrapped backend's Create, retrying transient failures (Create
// makes directories or a bucket and checks for a config: doing it again is harmless). It
// returns Invalid if the wrapped backend cannot create a location.
func (r *Backend) Create(ctx context.Context) error {
	c, ok := r.b.(backend.Creator)
	if !ok {
		return errs.Errorf("retry.Create", errs.Invalid, "the storage at %s cannot prepare a new vault location", r.b.Location()).
			WithHint("create the location by other means, then initialize the vault there")
	}
	return r.run(ctx, "retry.Create", backend.Handle{Type: backend.Config}, func(ctx context.Context, _ *watchdog) (bool, error) {
		return false, c.Create(ctx)
	})
}
