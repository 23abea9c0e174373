package faulty

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

// Method names a backend method.
type Method string

const (
	Save   Method = "Save"
	Load   Method = "Load"
	Stat   Method = "Stat"
	List   Method = "List"
	Remove Method = "Remove"
)

// Methods lists the methods whose calls can fail.
var Methods = []Method{Save, Load, Stat, List, Remove}

// Fault names an injected fault.
type Fault string

const (
	None       Fault = ""
	Error      Fault = "error"       // the call returned errs.Unavailable without reaching the backend
	Rule       Fault = "rule"        // a FailHandle or FailType rule failed the call
	Stall      Fault = "stall"       // the call slept before going on (or until ctx ended)
	ShortRead  Fault = "short-read"  // the reader ended early with io.ErrUnexpectedEOF
	BitFlip    Fault = "bit-flip"    // one bit of the data read was flipped
	LyingSave  Fault = "lying-save"  // Save stored a truncated copy and reported success
	ListBroken Fault = "list-broken" // List failed with errs.Unavailable after N entries
)

// Call is one logged call.
type Call struct {
	Method Method
	Handle backend.Handle // for List, only Type is set
	Fault  Fault
}

var _ backend.Backend = (*Backend)(nil)

// Backend injects faults into calls to the backend it wraps. Knobs may be changed at any
// time from any goroutine. Faults are drawn from a generator seeded at New, so a sequence
// of calls made one after another gets the same faults on every run; concurrent calls draw
// in whatever order they arrive.
type Backend struct {
	b backend.Backend

	mu            sync.Mutex
	rng           *rand.Rand
	errorRate     map[Method]float64
	stallProb     float64
	stallFor      time.Duration
	shortReadProb float64
	bitFlipProb   float64
	lyingSaveProb float64
	listFailAfter int // <0: off
	failHandles   map[backend.Handle]bool
	failTypes     map[backend.FileType]bool
	calls         []Call
}

// New wraps b. No fault is enabled until a knob is set.
func New(b backend.Backend, seed int64) *Backend {
	return &Backend{
		b:             b,
		rng:           rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		errorRate:     make(map[Method]float64),
		listFailAfter: -1,
		failHandles:   make(map[backend.Handle]bool),
		failTypes:     make(map[backend.FileType]bool),
	}
}

// Unwrap returns the wrapped backend, to inspect what was really stored.
func (f *Backend) Unwrap() backend.Backend { return f.b }

// SetErrorRate makes a fraction p (0 to 1) of calls to m fail with errs.Unavailable.
func (f *Backend) SetErrorRate(m Method, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errorRate[m] = p
}

// SetErrorRateAll sets the same error rate on every method.
func (f *Backend) SetErrorRateAll(p float64) {
	for _, m := range Methods {
		f.SetErrorRate(m, p)
	}
}

// SetStall makes a fraction p of calls sleep for d (or until their ctx ends, which fails
// the call with errs.Canceled) before going on.
func (f *Backend) SetStall(p float64, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stallProb, f.stallFor = p, d
}

// SetShortRead makes a fraction p of loads of at least one byte end early with
// io.ErrUnexpectedEOF.
func (f *Backend) SetShortRead(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shortReadProb = p
}

// SetBitFlip makes a fraction p of loads of at least one byte deliver data with one bit
// flipped.
func (f *Backend) SetBitFlip(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bitFlipProb = p
}

// SetLyingSave makes a fraction p of saves of at least one byte store a truncated copy and
// report success.
func (f *Backend) SetLyingSave(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lyingSaveProb = p
}

// SetListFailAfter makes every List fail with errs.Unavailable after delivering n entries;
// n < 0 turns it off. A listing with n entries or fewer completes.
func (f *Backend) SetListFailAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listFailAfter = n
}

// FailHandle makes every call on h fail with errs.Unavailable until ClearRules.
func (f *Backend) FailHandle(h backend.Handle) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failHandles[norm(h)] = true
}

// norm gives every Config handle the same key (its Name is ignored).
func norm(h backend.Handle) backend.Handle {
	if h.Type == backend.Config {
		h.Name = ""
	}
	return h
}

// FailType makes every call on files of type t (List of t included) fail with
// errs.Unavailable until ClearRules.
func (f *Backend) FailType(t backend.FileType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failTypes[t] = true
}

// ClearRules removes FailHandle and FailType rules.
func (f *Backend) ClearRules() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.failHandles)
	clear(f.failTypes)
}

// Calls returns a copy of the call log.
func (f *Backend) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Faults counts logged calls by fault.
func (f *Backend) Faults() map[Fault]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[Fault]int)
	for _, c := range f.calls {
		out[c.Fault]++
	}
	return out
}

// ResetCalls empties the call log.
func (f *Backend) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Location returns the wrapped backend's location, marked as faulty.
func (f *Backend) Location() string { return "faulty:" + f.b.Location() }

// Close closes the wrapped backend.
func (f *Backend) Close() error { return f.b.Close() }

// decision is what one call got. Every call draws the same numbers whatever the knobs, so
// changing one knob does not shift the faults of unrelated calls.
type decision struct {
	fault    Fault
	stallFor time.Duration
	u        float64 // for the method's own fault (short read, bit flip, lying save)
	pos      uint64  // where to cut or flip
}

func (f *Backend) decide(m Method, h backend.Handle) decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	uErr, uStall, u, pos := f.rng.Float64(), f.rng.Float64(), f.rng.Float64(), f.rng.Uint64()
	d := decision{u: u, pos: pos}
	switch {
	case f.failTypes[h.Type] || (m != List && f.failHandles[norm(h)]):
		d.fault = Rule
	case uErr < f.errorRate[m]:
		d.fault = Error
	case uStall < f.stallProb:
		d.fault, d.stallFor = Stall, f.stallFor
	}
	return d
}

func (f *Backend) log(m Method, h backend.Handle, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: m, Handle: h, Fault: fault})
}

// prologue applies the faults common to every method. It returns a non-nil error if the
// call must fail now.
func (f *Backend) prologue(ctx context.Context, m Method, h backend.Handle) (decision, error) {
	d := f.decide(m, h)
	op := "faulty." + string(m)
	switch d.fault {
	case Rule:
		f.log(m, h, Rule)
		return d, errs.Errorf(op, errs.Unavailable, "%v: injected failure (rule)", h)
	case Error:
		f.log(m, h, Error)
		return d, errs.Errorf(op, errs.Unavailable, "%v: injected failure", h)
	case Stall:
		t := time.NewTimer(d.stallFor)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			f.log(m, h, Stall)
			return d, errs.E(op, errs.Canceled, ctx.Err())
		}
	}
	return d, nil
}

// Save may fail, stall, or store a truncated copy and report success.
func (f *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	d, err := f.prologue(ctx, Save, h)
	if err != nil {
		return err
	}
	f.mu.Lock()
	lie := d.fault == None && len(data) > 0 && d.u < f.lyingSaveProb
	f.mu.Unlock()
	if lie {
		d.fault = LyingSave
		data = data[:d.pos%uint64(len(data))]
	}
	f.log(Save, h, d.fault)
	return f.b.Save(ctx, h, data)
}

// Load may fail, stall, end the reader early or flip a bit of the data.
func (f *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	d, err := f.prologue(ctx, Load, h)
	if err != nil {
		return err
	}
	f.mu.Lock()
	short := d.fault == None && d.u < f.shortReadProb
	flip := d.fault == None && !short && d.u < f.shortReadProb+f.bitFlipProb
	f.mu.Unlock()
	if !short && !flip {
		f.log(Load, h, d.fault)
		return f.b.Load(ctx, h, offset, length, fn)
	}
	// Read the range, then hand fn a damaged copy.
	var data []byte
	err = f.b.Load(ctx, h, offset, length, func(rd io.Reader) error {
		var err error
		data, err = io.ReadAll(rd)
		return err
	})
	if err != nil || len(data) == 0 {
		f.log(Load, h, None)
		if err != nil {
			return err
		}
		return fn(bytes.NewReader(data))
	}
	if short {
		f.log(Load, h, ShortRead)
		return fn(&shortReader{r: bytes.NewReader(data[:d.pos%uint64(len(data))])})
	}
	f.log(Load, h, BitFlip)
	bit := d.pos % uint64(len(data)*8)
	data[bit/8] ^= 1 << (bit % 8)
	return fn(bytes.NewReader(data))
}

// shortReader ends with io.ErrUnexpectedEOF instead of io.EOF.
type shortReader struct{ r io.Reader }

func (s *shortReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Stat may fail or stall.
func (f *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	d, err := f.prologue(ctx, Stat, h)
	if err != nil {
		return backend.FileInfo{}, err
	}
	f.log(Stat, h, d.fault)
	return f.b.Stat(ctx, h)
}

// List may fail, stall, or fail after a set number of entries.
func (f *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	h := backend.Handle{Type: t}
	d, err := f.prologue(ctx, List, h)
	if err != nil {
		return err
	}
	f.mu.Lock()
	after := f.listFailAfter
	f.mu.Unlock()
	if after < 0 {
		f.log(List, h, d.fault)
		return f.b.List(ctx, t, fn)
	}
	n := 0
	broken := false
	err = f.b.List(ctx, t, func(fi backend.FileInfo) error {
		if n == after {
			broken = true
			return errs.Errorf("faulty.List", errs.Unavailable, "%v: injected failure after %d entries", t, n)
		}
		n++
		return fn(fi)
	})
	if broken {
		d.fault = ListBroken
	}
	f.log(List, h, d.fault)
	return err
}

// Remove may fail or stall.
func (f *Backend) Remove(ctx context.Context, h backend.Handle) error {
	d, err := f.prologue(ctx, Remove, h)
	if err != nil {
		return err
	}
	f.log(Remove, h, d.fault)
	return f.b.Remove(ctx, h)
}

var _ backend.Creator = (*Backend)(nil)

// Create forwards to the wrapped backend's Create without injecting faults; it returns
// Invalid if the wrapped backend cannot create a location.
func (f *Backend) Create(ctx context.Context) error {
	c, ok := f.b.(backend.Creator)
	if !ok {
		return errs.Errorf("faulty.Create", errs.Invalid, "the storage at %s cannot prepare a new vault location", f.b.Location())
	}
	return c.Create(ctx)
}
