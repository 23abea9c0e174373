package monitor_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/monitor"
)

func TestSchedulerRun(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	up, err := monitor.New("up", monitor.Spec{TCP: &monitor.TCP{Address: l.Addr().String()}, Every: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	down, err := monitor.New("down", monitor.Spec{Command: &monitor.Command{Command: []string{"false"}}, Every: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const want = 3
	var mu sync.Mutex
	counts := map[string]int{}
	enough := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := monitor.NewScheduler(func(sm monitor.Sample) {
		mu.Lock()
		defer mu.Unlock()
		if sm.Healthy != (sm.Monitor == "up") {
			t.Errorf("sample %+v: wrong health", sm)
		}
		counts[sm.Monitor]++
		if counts["up"] >= want && counts["down"] >= want {
			once.Do(func() { close(enough) })
		}
	}, up, down)
	var jitters []time.Duration
	s.Jitter = func(every time.Duration) time.Duration {
		mu.Lock()
		jitters = append(jitters, every)
		mu.Unlock()
		return 0
	}
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("the scheduler did not deliver 3 samples per monitor in 30s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(jitters) != 2 {
		t.Errorf("Jitter called %d times, want once per monitor", len(jitters))
	}
	// Nothing is delivered after Run returns.
	after := counts["up"] + counts["down"]
	time.Sleep(50 * time.Millisecond)
	if n := counts["up"] + counts["down"]; n != after {
		t.Errorf("%d samples delivered after Run returned", n-after)
	}
}

func TestSchedulerTick(t *testing.T) {
	a, _ := monitor.New("a", monitor.Spec{Command: &monitor.Command{Command: []string{"true"}}})
	b, _ := monitor.New("b", monitor.Spec{Command: &monitor.Command{Command: []string{"false"}}})
	var got []string
	s := monitor.NewScheduler(func(sm monitor.Sample) { got = append(got, sm.Monitor) }, a, b)
	out := s.Tick(context.Background())
	if len(out) != 2 || !out[0].Healthy || out[1].Healthy {
		t.Fatalf("Tick() = %+v, want a healthy, b not", out)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("delivered %v, want [a b]", got)
	}
}
