package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/orchestrate"
)

// serverEvents is the server's event machinery: the dispatcher (rules, deliveries,
// replay, archive) and the monitors and alarms. The API reaches it through
// api.EventsService; Run starts it with start and waits for it with the returned channel.
type serverEvents struct {
	s        *Server
	dispatch *dispatch.Dispatcher
	alarms   *dispatch.Alarms
	secret   []byte
}

var _ api.EventsService = (*serverEvents)(nil)

// eventsAPI returns the server's event machinery, made on first use; open fills it in
// once the API (and so its metrics registry) exists.
func (s *Server) eventsAPI() *serverEvents {
	if s.events == nil {
		s.events = &serverEvents{s: s}
	}
	return s.events
}

// open builds the dispatcher and the alarms from the config. Alarms read the API server's
// registry, so open runs after api.New.
func (e *serverEvents) open() error {
	s := e.s
	cfg := s.cfg
	var err error
	if e.dispatch, err = dispatch.New(dispatch.Options{Store: s.store, Rules: cfg.Rules, Archive: cfg.Events.Archive,
		Log: s.log}); err != nil {
		return err
	}
	if s.runbooks != nil {
		e.dispatch.SetRunbooks(runbookStarter{s.runbooks})
		e.warnUnknownRunbooks()
	}
	if e.alarms, err = dispatch.NewAlarms(dispatch.AlarmOptions{Store: s.store, Monitors: cfg.Monitors,
		Alarms: cfg.Alarms, Gatherer: s.api.Registry(), Site: s.opts.Site, Log: s.log}); err != nil {
		return err
	}
	if f := cfg.Events.AlertmanagerSecretFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return errs.E("server", errs.Invalid, err).WithHint("events.alertmanager_secret_file must be readable by the server")
		}
		if e.secret = []byte(strings.TrimSpace(string(b))); len(e.secret) == 0 {
			return errs.Errorf("server", errs.Invalid, "the Alertmanager secret file %s is empty", f).
				WithHint("write a random secret into it, for example: openssl rand -hex 32 > " + f)
		}
	}
	return nil
}

// start runs the dispatcher and the alarms until ctx ends; the channel closes once both
// stopped. The alarms start from the states the catalog holds (so GET /v1/alarms shows
// them at once); when the catalog cannot be read now, the first evaluation loads them.
func (e *serverEvents) start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.dispatch.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := e.alarms.Restore(ctx); err != nil && ctx.Err() == nil {
			e.s.log.Warn("loading the stored alarm states; retrying at the first evaluation", "err", err)
		}
		e.alarms.Run(ctx)
	}()
	go func() { wg.Wait(); close(done) }()
	return done
}

func (e *serverEvents) Replay(ctx context.Context, req api.ReplayRequest) (*api.ReplayResult, error) {
	if e.dispatch == nil {
		return nil, errs.Errorf("server.Replay", errs.Unavailable, "the event dispatcher is not running")
	}
	r, err := e.dispatch.Replay(ctx, dispatch.Replay{Name: req.Name, From: req.From, To: req.To, Rule: req.Rule})
	if err != nil {
		return nil, err
	}
	return &api.ReplayResult{Name: r.Name, Events: r.Events, Deliveries: r.Deliveries}, nil
}

func (e *serverEvents) Alarms() []alarm.Status {
	if e.alarms == nil {
		return nil
	}
	return e.alarms.States()
}

func (e *serverEvents) IntakeSecret() []byte { return e.secret }

// runbookStarter starts the runbook a rule's runbook target names, with the (transformed)
// event as its input.
type runbookStarter struct{ svc *orchestrate.Service }

func (r runbookStarter) StartRunbook(ctx context.Context, name string, input json.RawMessage) error {
	_, err := r.svc.Start(ctx, name, input, "")
	return err
}

// warnUnknownRunbooks logs the runbook targets that name no runbook known now: runbooks
// may still arrive through the API, and until then such deliveries end as dead letters
// that say why.
func (e *serverEvents) warnUnknownRunbooks() {
	ctx := context.Background()
	for _, r := range e.dispatch.Rules() {
		for _, t := range r.Targets() {
			if t.Runbook == nil {
				continue
			}
			err := e.s.store.Tx(ctx, func(tx catalog.Tx) error {
				_, err := tx.GetRunbook(ctx, t.Runbook.Name)
				return err
			})
			switch {
			case errs.Is(err, errs.NotFound):
				e.s.log.Warn("a rule's runbook target names no runbook (yet)", "rule", r.Name(), "runbook", t.Runbook.Name)
			case err != nil:
				e.s.log.Error("checking a rule's runbook target", "rule", r.Name(), "runbook", t.Runbook.Name, "err", err)
			}
		}
	}
}
