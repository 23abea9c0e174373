package monitor

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Scheduler runs a set of monitors, each on its own interval, and hands every sample to
// a callback.
type Scheduler struct {
	monitors []*Monitor
	deliver  func(Sample)
	mu       sync.Mutex // serializes deliver

	// Jitter returns the delay before a monitor's first probe, so that monitors started
	// together do not probe together. The default is uniform in [0, every). Set it
	// before Run.
	Jitter func(every time.Duration) time.Duration
}

// NewScheduler returns a scheduler for monitors that passes each sample to deliver.
// Deliveries are serialized: deliver need not be safe for concurrent use, and a slow
// deliver delays the other monitors' deliveries (not their probes' timing).
func NewScheduler(deliver func(Sample), monitors ...*Monitor) *Scheduler {
	return &Scheduler{
		monitors: monitors,
		deliver:  deliver,
		Jitter: func(every time.Duration) time.Duration {
			if every <= 0 {
				return 0
			}
			return rand.N(every)
		},
	}
}

// Run probes every monitor every Spec.Every, after a jittered start, with one goroutine
// per monitor, until ctx is done; it returns after every goroutine has stopped and
// delivered its last sample. A probe under way when ctx ends is canceled and its sample
// is not delivered.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range s.monitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, m)
		}()
	}
	wg.Wait()
}

func (s *Scheduler) loop(ctx context.Context, m *Monitor) {
	every := m.spec.Every
	first := time.NewTimer(s.Jitter(every))
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.probe(ctx, m)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Scheduler) probe(ctx context.Context, m *Monitor) {
	sample := m.Probe(ctx)
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliver(sample)
}

// Tick probes every monitor once, concurrently, delivers the samples in the order of
// the monitors and returns them. It is the synchronous form of Run, for tests and for a
// "check now" command.
func (s *Scheduler) Tick(ctx context.Context) []Sample {
	out := make([]Sample, len(s.monitors))
	var wg sync.WaitGroup
	for i, m := range s.monitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = m.Probe(ctx)
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range out {
		s.deliver(sm)
	}
	return out
}
