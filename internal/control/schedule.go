package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
)

// DefaultLookback is how far back Tick looks for a missed run of a rule with no start
// window.
const DefaultLookback = 24 * time.Hour

// TickReport says what one Tick did.
type TickReport struct {
	Created []string // job IDs created by this tick
	Expired []string // job IDs this tick marked EXPIRED
}

// DedupKey is the unique key of the scheduled job for one rule, resource and time.
func DedupKey(plan, rule, resource string, at time.Time) string {
	return fmt.Sprintf("%s/%s/%s/%s", plan, rule, resource, at.UTC().Format(time.RFC3339))
}

// Tick creates the jobs due now and expires pending jobs whose start window closed. For
// each plan rule and each resource the plan selects, only the latest scheduled time not
// after now counts (so runs missed during downtime start once), and only while its start
// window is open. A job that another server (or an earlier tick) already created for that
// time is left alone. Tick is synchronous, so tests drive it with a fixed clock.
func (s *Service) Tick(ctx context.Context) (*TickReport, error) {
	now := s.now()
	rep := &TickReport{}
	var errList []error
	for _, pname := range sortedPlanNames(s.Config) {
		p := s.Config.Plans[pname]
		for _, rule := range p.Rules {
			at, ok := s.latestDue(rule, now)
			if !ok {
				continue
			}
			for _, resource := range p.Resources {
				id, err := s.schedule(ctx, pname, rule, resource, at)
				if err != nil {
					errList = append(errList, fmt.Errorf("plan %s rule %s resource %s: %w", pname, rule.Name, resource, err))
					continue
				}
				if id != "" {
					rep.Created = append(rep.Created, id)
				}
			}
		}
	}
	expired, err := s.expire(ctx, now)
	rep.Expired = expired
	if err != nil {
		errList = append(errList, err)
	}
	return rep, errors.Join(errList...)
}

// latestDue returns the latest scheduled time of rule in (now - window, now].
func (s *Service) latestDue(rule config.Rule, now time.Time) (time.Time, bool) {
	if rule.Schedule.IsZero() {
		return time.Time{}, false
	}
	back := rule.Window.Start
	if back <= 0 {
		back = s.Lookback
		if back <= 0 {
			back = DefaultLookback
		}
	}
	// Between is exclusive of from; a run exactly at now counts.
	times := rule.Schedule.Between(now.Add(-back), now.Add(time.Nanosecond))
	if len(times) == 0 {
		return time.Time{}, false
	}
	at := times[len(times)-1]
	if rule.Window.StartExpired(at, now) {
		return time.Time{}, false
	}
	return at, true
}

// schedule creates the job for (plan, rule, resource, at) unless it exists, and enqueues
// it. It returns the new job's ID, or "" when the job existed.
func (s *Service) schedule(ctx context.Context, plan string, rule config.Rule, resource string, at time.Time) (string, error) {
	j := &catalog.Job{
		Kind: catalog.JobBackup, State: catalog.StatePending, Resource: resource, Vault: rule.Vault,
		Plan: plan, Rule: rule.Name, DedupKey: DedupKey(plan, rule.Name, resource, at),
	}
	if rule.PullFrom != "" {
		// A pull rule copies the resource's points that its vault lacks from the other
		// site's vault; the copy needs no agent.
		j.Kind, j.Vault, j.TargetVault = catalog.JobCopy, rule.PullFrom, rule.Vault
	} else if res, ok := s.Config.Resources[resource]; ok {
		j.Host = res.Host
	}
	sched := at.UTC()
	j.ScheduledFor = &sched
	if d, ok := rule.Window.StartDeadline(at); ok {
		d = d.UTC()
		j.StartBy = &d
	}
	// The completion window counts from the job's start: the runner sets CompleteBy when
	// it first claims the job.
	err := s.Store.Tx(ctx, func(tx catalog.Tx) error {
		j.CreatedAt = tx.Now()
		return catalog.CreateJobWithEvent(ctx, tx, j, s.event)
	})
	if errs.Is(err, errs.Exists) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if err := s.Enqueue(ctx, j.ID); err != nil {
		return j.ID, fmt.Errorf("job %s created but not queued (it will be on restart): %w", j.ID, err)
	}
	return j.ID, nil
}

// expire marks EXPIRED every PENDING job whose StartBy has passed.
func (s *Service) expire(ctx context.Context, now time.Time) ([]string, error) {
	var ids []string
	pending := catalog.StatePending
	err := s.Store.Tx(ctx, func(tx catalog.Tx) error {
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{State: &pending})
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.StartBy == nil || !now.After(*j.StartBy) {
				continue
			}
			st, msg := catalog.StateExpired, fmt.Sprintf("not started by %s (start window)", j.StartBy.Format(time.RFC3339))
			fin := now
			_, err := catalog.UpdateJobWithEvent(ctx, tx, j.ID, catalog.JobUpdate{IfState: &pending, State: &st, Error: &msg, FinishedAt: &fin}, s.event)
			if errs.Is(err, errs.Conflict) {
				continue // started meanwhile
			}
			if err != nil {
				return err
			}
			ids = append(ids, j.ID)
		}
		return nil
	})
	return ids, err
}

// Recover enqueues every PENDING job again (after a restart, or when an enqueue failed);
// the queue runs each job once however often it is enqueued.
func (s *Service) Recover(ctx context.Context) (int, error) {
	pending := catalog.StatePending
	var jobs []*catalog.Job
	err := s.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		jobs, err = tx.ListJobs(ctx, catalog.JobFilter{State: &pending})
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, j := range jobs {
		if err := s.Enqueue(ctx, j.ID); err != nil {
			return 0, fmt.Errorf("re-queueing job %s: %w", j.ID, err)
		}
	}
	return len(jobs), nil
}

// Run calls Tick every interval until ctx ends, reporting each tick's error to onErr.
func (s *Service) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sortedPlanNames(cfg *config.Config) []string { return sorted(cfg.Plans) }
