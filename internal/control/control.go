package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
)

// Service submits jobs and runs the schedule. Its methods are safe for concurrent use.
type Service struct {
	Store  catalog.Store
	Config *config.Config
	// Site is this server's site, recorded in events.
	Site string
	// Enqueue hands a PENDING job to the queue that runs it. Enqueuing a job twice must run
	// it once (the queue is keyed by job ID).
	Enqueue func(ctx context.Context, jobID string) error
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Lookback bounds how far back Tick looks for a due run of a rule with no start
	// window (default 24 h): a run missed longer ago than that is not started.
	Lookback time.Duration
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Request asks for a job.
type Request struct {
	Kind     catalog.JobKind
	Resource string          // backup, restore: the resource
	Vault    string          // the vault (backup: default the first rule's vault; copy: source)
	Target   string          // copy: destination vault
	Params   json.RawMessage // kind-specific (restore: point, target; verify: read_data)
}

// Submit validates r against the config, creates the job as PENDING with its event, and
// enqueues it. Errors: errs.Invalid for a bad request (naming the field), errs.NotFound
// for an unknown resource or vault; the store's and the queue's errors otherwise. A job
// that was created but could not be enqueued stays PENDING and is returned with the error;
// Recover enqueues it again.
func (s *Service) Submit(ctx context.Context, r Request) (*catalog.Job, error) {
	const op = "control.Submit"
	j := &catalog.Job{Kind: r.Kind, State: catalog.StatePending, Resource: r.Resource, Vault: r.Vault, TargetVault: r.Target, Params: r.Params}
	if err := s.validate(op, j); err != nil {
		return nil, err
	}
	err := s.Store.Tx(ctx, func(tx catalog.Tx) error {
		j.CreatedAt = tx.Now()
		return catalog.CreateJobWithEvent(ctx, tx, j, s.event)
	})
	if err != nil {
		return nil, err
	}
	if err := s.Enqueue(ctx, j.ID); err != nil {
		return j, errs.E(op, errs.KindOf(err), fmt.Errorf("job %s was created but not queued: %w", j.ID, err))
	}
	return j, nil
}

func (s *Service) event(j *catalog.Job) *catalog.Event { return catalog.JobStateEvent(j, s.Site) }

// validate checks a job against the config and fills defaults.
func (s *Service) validate(op string, j *catalog.Job) error {
	cfg := s.Config
	if !j.Kind.Valid() {
		return errs.Errorf(op, errs.Invalid, "kind %q is not one of backup, copy, restore, verify, prune", strings.ToLower(string(j.Kind)))
	}
	needResource := j.Kind == catalog.JobBackup || j.Kind == catalog.JobRestore
	if needResource && j.Resource == "" {
		return errs.Errorf(op, errs.Invalid, "a %s job needs a resource", strings.ToLower(string(j.Kind)))
	}
	if j.Resource != "" {
		if _, ok := cfg.Resources[j.Resource]; !ok {
			return errs.Errorf(op, errs.NotFound, "resource %q is not in the config", j.Resource).
				WithHint("see 'rewind --server … resources'")
		}
		if j.Vault == "" {
			j.Vault = s.defaultVault(j.Resource)
		}
	}
	if j.Vault == "" {
		return errs.Errorf(op, errs.Invalid, "no vault given and no plan rule names one for resource %q", j.Resource).
			WithHint("pass a vault")
	}
	v, ok := cfg.Vaults[j.Vault]
	if !ok {
		return errs.Errorf(op, errs.NotFound, "vault %q is not in the config", j.Vault).WithHint("see 'rewind --server … vaults'")
	}
	if v.ReadOnly && j.Kind != catalog.JobRestore && j.Kind != catalog.JobCopy {
		return errs.Errorf(op, errs.Invalid, "vault %q is read_only for this server: it may restore and copy from it, not %s it", j.Vault, verb(j.Kind)).
			WithHint("run the job on the server that owns the vault")
	}
	if j.Kind == catalog.JobCopy {
		if j.TargetVault == "" {
			return errs.Errorf(op, errs.Invalid, "a copy job needs a target vault")
		}
		t, ok := cfg.Vaults[j.TargetVault]
		if !ok {
			return errs.Errorf(op, errs.NotFound, "target vault %q is not in the config", j.TargetVault)
		}
		if t.ReadOnly {
			return errs.Errorf(op, errs.Invalid, "target vault %q is read_only for this server: it cannot copy into it", j.TargetVault)
		}
		if j.TargetVault == j.Vault {
			return errs.Errorf(op, errs.Invalid, "a copy job copies between two vaults; source and target are both %q", j.Vault)
		}
	}
	if j.Kind == catalog.JobRestore && len(j.Params) > 0 {
		var p struct {
			Target string `json:"target"`
		}
		if json.Unmarshal(j.Params, &p) == nil {
			if u, err := url.Parse(p.Target); err == nil && u.Scheme != "" && u.User != nil {
				if _, has := u.User.Password(); has {
					return errs.Errorf(op, errs.Invalid, "the restore target URL carries a password, which the job would keep in the catalog").
						WithHint("put the password in a file the server can read and name it in the URL: mysql://user@host:3306/?password_file=/etc/rewind/restore-target.pw")
				}
			}
		}
	}
	if res, ok := cfg.Resources[j.Resource]; ok && agentKind(j.Kind) {
		j.Host = res.Host
	}
	if j.Kind == catalog.JobBackup {
		// An on-demand backup follows the plan rule that protects this resource in this
		// vault, if any: its tags, retention and copies to the other site apply.
		j.Plan, j.Rule = s.ruleFor(j.Resource, j.Vault)
	}
	return nil
}

// ruleFor returns the first plan rule (by plan name, then rule order) that selects
// resource and writes to vault, or empty names.
func (s *Service) ruleFor(resource, vault string) (plan, rule string) {
	for _, name := range sortedPlanNames(s.Config) {
		p := s.Config.Plans[name]
		for _, r := range p.Resources {
			if r != resource {
				continue
			}
			for _, ru := range p.Rules {
				if ru.Vault == vault && ru.PullFrom == "" {
					return name, ru.Name
				}
			}
		}
	}
	return "", ""
}

// defaultVault is the vault of the first rule (by plan name) whose plan selects resource.
func (s *Service) defaultVault(resource string) string {
	for _, name := range sortedPlanNames(s.Config) {
		p := s.Config.Plans[name]
		for _, r := range p.Resources {
			if r == resource && len(p.Rules) > 0 {
				return p.Rules[0].Vault
			}
		}
	}
	return ""
}

// verb names what a job of kind k does to its vault.
func verb(k catalog.JobKind) string {
	switch k {
	case catalog.JobBackup:
		return "back up into"
	case catalog.JobVerify:
		return "verify (which locks)"
	case catalog.JobPrune:
		return "prune"
	}
	return strings.ToLower(string(k))
}

// agentKind reports whether a job of kind k runs on its resource's host (an agent there
// when the host is not the server's): backups read the resource's files and restores
// write them. Copies, checks and prunes touch only vaults and run on a server.
func agentKind(k catalog.JobKind) bool { return k == catalog.JobBackup || k == catalog.JobRestore }
