package faulty_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/bits"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/backendtest"
	"github.com/rewind-dr/rewind/internal/vault/backend/faulty"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

var ctx = context.Background()

func TestConformanceWithoutFaults(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return faulty.New(mem.New(), 1) })
}

func fill(t *testing.T, b backend.Backend, ft backend.FileType, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := b.Save(ctx, backend.Handle{Type: ft, Name: backendtest.ID()}, []byte("data")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestErrorRate(t *testing.T) {
	f := faulty.New(mem.New(), 7)
	h := backend.Handle{Type: backend.Key, Name: "k"}
	if err := f.Save(ctx, h, []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.SetErrorRate(faulty.Stat, 1)
	for i := 0; i < 5; i++ {
		if _, err := f.Stat(ctx, h); !errs.Is(err, errs.Unavailable) {
			t.Fatalf("Stat with error rate 1 = %v, want Unavailable", err)
		}
	}
	if _, err := backend.LoadAll(ctx, f, h, 0, 0); err != nil {
		t.Fatalf("Load is not affected by Stat's error rate: %v", err)
	}
	f.SetErrorRate(faulty.Stat, 0.5)
	failed := 0
	for i := 0; i < 400; i++ {
		if _, err := f.Stat(ctx, h); err != nil {
			failed++
		}
	}
	if failed < 120 || failed > 280 {
		t.Errorf("error rate 0.5: %d of 400 calls failed", failed)
	}
}

func TestDeterministicForSeed(t *testing.T) {
	run := func(seed int64) []bool {
		f := faulty.New(mem.New(), seed)
		f.SetErrorRateAll(0.5)
		out := make([]bool, 64)
		for i := range out {
			_, err := f.Stat(ctx, backend.Handle{Type: backend.Lock, Name: "l"})
			out[i] = errs.Is(err, errs.Unavailable)
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	if !equal(a, b) {
		t.Error("two runs with the same seed injected different faults")
	}
	if equal(a, c) {
		t.Error("runs with different seeds injected the same 64 faults")
	}
}

func equal(a, b []bool) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestStall(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	h := backend.Handle{Type: backend.Key, Name: "k"}
	if err := f.Save(ctx, h, []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.SetStall(1, time.Hour)
	c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := f.Stat(c, h); !errs.Is(err, errs.Canceled) {
		t.Fatalf("stalled Stat with a short deadline = %v, want Canceled", err)
	}
	f.SetStall(1, time.Millisecond)
	if _, err := f.Stat(ctx, h); err != nil {
		t.Fatalf("a short stall must go on to succeed: %v", err)
	}
	calls := f.Calls()
	if len(calls) != 3 || calls[1].Fault != faulty.Stall || calls[2].Fault != faulty.Stall {
		t.Errorf("call log = %+v, want Save then two stalled Stats", calls)
	}
}

func TestShortRead(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	h := backend.Handle{Type: backend.Pack, Name: "ab01"}
	data := bytes.Repeat([]byte("0123456789"), 100)
	if err := f.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	f.SetShortRead(1)
	got, err := backend.LoadAll(ctx, f, h, 0, 0)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short read error = %v, want io.ErrUnexpectedEOF", err)
	}
	if len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("short read returned %d bytes, want a true prefix of %d", len(got), len(data))
	}
	if c := f.Calls(); c[len(c)-1].Fault != faulty.ShortRead {
		t.Errorf("last call = %+v, want a logged short read", c[len(c)-1])
	}
}

func TestBitFlip(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	h := backend.Handle{Type: backend.Pack, Name: "ab02"}
	data := bytes.Repeat([]byte{0x55}, 4096)
	if err := f.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	f.SetBitFlip(1)
	for i := 0; i < 10; i++ {
		got, err := backend.LoadAll(ctx, f, h, 100, 1000)
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for j := range got {
			diff += bits.OnesCount8(got[j] ^ data[100+j])
		}
		if len(got) != 1000 || diff != 1 {
			t.Fatalf("bit flip: %d bytes, %d bits differ; want 1000 bytes, 1 bit", len(got), diff)
		}
	}
	// The stored copy is intact.
	if got, _ := backend.LoadAll(ctx, f.Unwrap(), h, 0, 0); !bytes.Equal(got, data) {
		t.Error("bit flip damaged the stored file")
	}
}

func TestLyingSave(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	f.SetLyingSave(1)
	h := backend.Handle{Type: backend.Index, Name: "i"}
	data := bytes.Repeat([]byte("x"), 500)
	if err := f.Save(ctx, h, data); err != nil {
		t.Fatalf("lying Save must report success: %v", err)
	}
	fi, err := f.Unwrap().Stat(ctx, h)
	if err != nil || fi.Size >= int64(len(data)) {
		t.Fatalf("stored %+v (%v), want fewer than %d bytes", fi, err, len(data))
	}
	if c := f.Calls(); len(c) != 1 || c[0] != (faulty.Call{Method: faulty.Save, Handle: h, Fault: faulty.LyingSave}) {
		t.Errorf("call log = %+v", c)
	}
}

func TestListFailAfter(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	fill(t, f, backend.Point, 10)
	f.SetListFailAfter(3)
	n := 0
	err := f.List(ctx, backend.Point, func(backend.FileInfo) error { n++; return nil })
	if !errs.Is(err, errs.Unavailable) || n != 3 {
		t.Fatalf("List failing after 3 = %d entries, %v; want 3 and Unavailable", n, err)
	}
	f.SetListFailAfter(10)
	n = 0
	if err := f.List(ctx, backend.Point, func(backend.FileInfo) error { n++; return nil }); err != nil || n != 10 {
		t.Fatalf("List of 10 failing after 10 = %d, %v; want a complete listing", n, err)
	}
	f.SetListFailAfter(-1)
	if got := backendtest.SortedNames(t, f, backend.Point); len(got) != 10 {
		t.Fatalf("List with the fault off returned %d", len(got))
	}
}

func TestRules(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	bad := backend.Handle{Type: backend.Key, Name: "bad"}
	good := backend.Handle{Type: backend.Key, Name: "good"}
	if err := f.Save(ctx, good, []byte("g")); err != nil {
		t.Fatal(err)
	}
	f.FailHandle(bad)
	if err := f.Save(ctx, bad, []byte("b")); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Save on a failed handle = %v", err)
	}
	if _, err := f.Stat(ctx, good); err != nil {
		t.Errorf("Stat on another handle = %v", err)
	}
	f.FailHandle(backend.Handle{Type: backend.Config, Name: "any"})
	if _, err := f.Stat(ctx, backend.Handle{Type: backend.Config}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Config rule must ignore Name: %v", err)
	}
	f.FailType(backend.Key)
	if _, err := f.Stat(ctx, good); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Stat on a failed type = %v", err)
	}
	if err := f.List(ctx, backend.Key, func(backend.FileInfo) error { return nil }); !errs.Is(err, errs.Unavailable) {
		t.Errorf("List of a failed type = %v", err)
	}
	if err := f.List(ctx, backend.Pack, func(backend.FileInfo) error { return nil }); err != nil {
		t.Errorf("List of another type = %v", err)
	}
	f.ClearRules()
	if err := f.Save(ctx, bad, []byte("b")); err != nil {
		t.Errorf("Save after ClearRules = %v", err)
	}
	if got := f.Faults()[faulty.Rule]; got != 4 {
		t.Errorf("logged %d rule faults, want 4 (log %+v)", got, f.Calls())
	}
	f.ResetCalls()
	if len(f.Calls()) != 0 {
		t.Error("ResetCalls left entries")
	}
}

func TestConcurrentKnobs(t *testing.T) {
	f := faulty.New(mem.New(), 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			f.SetErrorRateAll(float64(i%2) / 2)
			f.SetBitFlip(0.1)
			f.FailType(backend.Lock)
			f.ClearRules()
		}
	}()
	for i := 0; i < 200; i++ {
		_ = f.Save(ctx, backend.Handle{Type: backend.Lock, Name: "l"}, []byte("x"))
		_, _ = backend.LoadAll(ctx, f, backend.Handle{Type: backend.Lock, Name: "l"}, 0, 0)
	}
	<-done
	if len(f.Calls()) != 400 {
		t.Errorf("logged %d calls, want 400", len(f.Calls()))
	}
}
