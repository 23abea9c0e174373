package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Sample is the result of one probe.
type Sample struct {
	Monitor string        `json:"monitor"`
	Time    time.Time     `json:"time"` // when the probe started
	Healthy bool          `json:"healthy"`
	Latency time.Duration `json:"latency"`
	Detail  string        `json:"detail"` // why it failed, or what succeeded ("HTTP 200")
}

// prober runs one kind of probe. It returns a short success detail or an error saying
// why the target is unhealthy; it honors ctx's deadline.
type prober interface {
	probe(ctx context.Context) (string, error)
}

// Monitor probes one target. It is immutable and safe for concurrent use.
type Monitor struct {
	name string
	spec Spec
	p    prober
	now  func() time.Time
}

// New validates s and returns its monitor. Invalid specs are errs.Invalid errors that
// name the monitor and list every problem.
func New(name string, s Spec) (*Monitor, error) {
	if name == "" {
		return nil, errs.Errorf("monitor.New", errs.Invalid, "monitor has no name").
			WithHint("give every monitor a name under monitors:")
	}
	if err := s.Validate(); err != nil {
		return nil, errs.E("monitor "+name, errs.Invalid, err).
			WithHint("fix the monitor's settings in the configuration")
	}
	s = s.withDefaults()
	m := &Monitor{name: name, spec: s, now: time.Now}
	var err error
	switch {
	case s.HTTP != nil:
		m.p = newHTTPProber(*s.HTTP)
	case s.TCP != nil:
		m.p = tcpProber{addr: s.TCP.Address}
	case s.DNS != nil:
		m.p, err = newDNSProber(*s.DNS)
	case s.Command != nil:
		m.p = commandProber{c: *s.Command}
	case s.Postgres != nil:
		m.p = postgresProber{url: s.Postgres.URL}
	case s.MySQL != nil:
		m.p, err = newMySQLProber(s.MySQL.URL)
	case s.Redis != nil:
		m.p, err = newRedisProber(s.Redis.URL)
	}
	if err != nil {
		return nil, errs.E("monitor "+name, errs.Invalid, err)
	}
	return m, nil
}

// Name returns the monitor's name.
func (m *Monitor) Name() string { return m.name }

// Spec returns the monitor's spec with defaults filled in.
func (m *Monitor) Spec() Spec { return m.spec }

// Probe runs the probe once, bounded by the spec's Timeout and by ctx. It never panics
// and never returns an error: a failure is an unhealthy Sample whose Detail says why.
func (m *Monitor) Probe(ctx context.Context) (s Sample) {
	start := m.now()
	s = Sample{Monitor: m.name, Time: start}
	ctx, cancel := context.WithTimeout(ctx, m.spec.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.Healthy, s.Detail = false, fmt.Sprintf("probe failed unexpectedly: %v", r)
		}
		s.Latency = m.now().Sub(start)
	}()
	detail, err := m.p.probe(ctx)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			s.Detail = fmt.Sprintf("timed out after %v: %v", m.spec.Timeout, err)
		} else {
			s.Detail = err.Error()
		}
		return s
	}
	s.Healthy, s.Detail = true, detail
	return s
}
