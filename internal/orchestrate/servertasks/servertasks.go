package servertasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// Error names the tasks fail with; a Catch or Retry can match them.
const (
	ErrJobFailed     = "Rewind.JobFailed"  // the job ended FAILED; the cause is its error
	ErrJobAborted    = "Rewind.JobAborted" // the job was aborted
	ErrJobExpired    = "Rewind.JobExpired" // the job's start window passed
	ErrInvalidParams = "Rewind.InvalidParameters"
	ErrNoPoint       = "Rewind.NoPoint" // no recovery point matches
)

// DefaultPoll is how often a task reads its job's state when Deps.Poll is 0.
const DefaultPoll = 2 * time.Second

// Deps is what the tasks need from the server.
type Deps struct {
	Store catalog.Store
	// Submit creates and enqueues a job (control.Service.Submit).
	Submit func(ctx context.Context, r control.Request) (*catalog.Job, error)
	Poll   time.Duration
}

// Register adds rewind:backup, rewind:restore, rewind:copy and rewind:check to reg.
// Backup, restore and copy are not idempotent (a resumed execution that finds one
// interrupted fails with States.Runtime rather than run the job twice); check is.
func Register(reg runbook.Registry, d Deps) {
	if d.Poll <= 0 {
		d.Poll = DefaultPoll
	}
	reg["rewind:backup"] = runbook.TaskSpec{Run: d.backup}
	reg["rewind:restore"] = runbook.TaskSpec{Run: d.restore}
	reg["rewind:copy"] = runbook.TaskSpec{Run: d.copy}
	reg["rewind:check"] = runbook.TaskSpec{Run: d.check, Idempotent: true}
}

// BackupParams are rewind:backup's Parameters.
type BackupParams struct {
	Resource string `json:"resource"`
	Vault    string `json:"vault,omitempty"` // default: the vault of the first plan rule protecting it
}

// RestoreParams are rewind:restore's Parameters: a point ("latest", the default, or an ID)
// or a time (At, RFC 3339: the newest point taken at or before it), and the target.
type RestoreParams struct {
	Resource string     `json:"resource"`
	Point    string     `json:"point,omitempty"`
	At       *time.Time `json:"at,omitempty"`
	Vault    string     `json:"vault,omitempty"`
	Target   string     `json:"target"`
}

// CopyParams are rewind:copy's Parameters: Point, or the newest available point of
// Resource in Vault, is copied to To.
type CopyParams struct {
	Resource string `json:"resource,omitempty"`
	Point    string `json:"point,omitempty"`
	Vault    string `json:"vault"`
	To       string `json:"to"`
}

// CheckParams are rewind:check's Parameters.
type CheckParams struct {
	Vault    string `json:"vault"`
	ReadData bool   `json:"read_data,omitempty"`
}

func decode(in runbook.TaskInput, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(in.Input)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &runbook.TaskError{Name: ErrInvalidParams, Cause: fmt.Sprintf("state %q (%s): Parameters: %v", in.State, in.Resource, err)}
	}
	return nil
}

func invalid(in runbook.TaskInput, format string, a ...any) error {
	return &runbook.TaskError{Name: ErrInvalidParams, Cause: fmt.Sprintf("state %q (%s): ", in.State, in.Resource) + fmt.Sprintf(format, a...)}
}

func (d Deps) backup(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p BackupParams
	if err := decode(in, &p); err != nil {
		return nil, err
	}
	if p.Resource == "" {
		return nil, invalid(in, "resource is required")
	}
	j, err := d.run(ctx, in, control.Request{Kind: catalog.JobBackup, Resource: p.Resource, Vault: p.Vault})
	if err != nil {
		return nil, err
	}
	return jobOutput(j, nil), nil
}

func (d Deps) restore(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p RestoreParams
	if err := decode(in, &p); err != nil {
		return nil, err
	}
	if p.Resource == "" || p.Target == "" {
		return nil, invalid(in, "resource and target are required")
	}
	if p.At != nil && p.Point != "" {
		return nil, invalid(in, "give point or at, not both")
	}
	point := p.Point
	if point == "" {
		point = "latest"
	}
	if p.At != nil {
		pt, err := d.newestPoint(ctx, p.Resource, p.Vault, p.At)
		if err != nil {
			return nil, err
		}
		point, p.Vault = pt.ID, pt.Vault
	}
	params, _ := json.Marshal(map[string]string{"point": point, "target": p.Target})
	j, err := d.run(ctx, in, control.Request{Kind: catalog.JobRestore, Resource: p.Resource, Vault: p.Vault, Params: params})
	if err != nil {
		return nil, err
	}
	extra := map[string]any{"resourceTags": map[string]string{}}
	err = d.Store.Tx(ctx, func(tx catalog.Tx) error {
		r, err := tx.GetResource(ctx, p.Resource)
		if err == nil && r.Tags != nil {
			extra["resourceTags"] = r.Tags
		}
		if errs.Is(err, errs.NotFound) {
			return nil // removed from the configuration since: no tags
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return jobOutput(j, extra), nil
}

func (d Deps) copy(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p CopyParams
	if err := decode(in, &p); err != nil {
		return nil, err
	}
	if p.Vault == "" || p.To == "" || (p.Point == "") == (p.Resource == "") {
		return nil, invalid(in, "vault, to and one of point or resource are required")
	}
	point := p.Point
	if point == "" {
		pt, err := d.newestPoint(ctx, p.Resource, p.Vault, nil)
		if err != nil {
			return nil, err
		}
		point = pt.ID
	}
	params, _ := json.Marshal(map[string]string{"point": point})
	j, err := d.run(ctx, in, control.Request{Kind: catalog.JobCopy, Resource: p.Resource, Vault: p.Vault, Target: p.To, Params: params})
	if err != nil {
		return nil, err
	}
	return jobOutput(j, nil), nil
}

func (d Deps) check(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p CheckParams
	if err := decode(in, &p); err != nil {
		return nil, err
	}
	if p.Vault == "" {
		return nil, invalid(in, "vault is required")
	}
	params, _ := json.Marshal(map[string]bool{"read_data": p.ReadData})
	j, err := d.run(ctx, in, control.Request{Kind: catalog.JobVerify, Vault: p.Vault, Params: params})
	if err != nil {
		return nil, err
	}
	return jobOutput(j, nil), nil
}

// newestPoint finds the newest AVAILABLE point of resource (in vault when set), taken at or
// before at when set.
func (d Deps) newestPoint(ctx context.Context, resource, vault string, at *time.Time) (*catalog.Point, error) {
	f := catalog.PointFilter{Resource: &resource, State: catalog.Ptr(catalog.PointAvailable), Newest: true, Limit: 1}
	if vault != "" {
		f.Vault = &vault
	}
	if at != nil {
		f.Until = catalog.Ptr(at.Add(time.Microsecond))
	}
	var ps []*catalog.Point
	err := d.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		ps, err = tx.ListPoints(ctx, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		when := ""
		if at != nil {
			when = " at or before " + at.UTC().Format(time.RFC3339)
		}
		return nil, &runbook.TaskError{Name: ErrNoPoint, Cause: fmt.Sprintf("resource %s has no available point%s", resource, when)}
	}
	return ps[0], nil
}

// run submits the job and waits until it is terminal.
func (d Deps) run(ctx context.Context, in runbook.TaskInput, r control.Request) (*catalog.Job, error) {
	j, err := d.Submit(ctx, r)
	if err != nil && j == nil {
		if k := errs.KindOf(err); k == errs.Invalid || k == errs.NotFound {
			return nil, &runbook.TaskError{Name: ErrInvalidParams, Cause: fmt.Sprintf("state %q (%s): %v", in.State, in.Resource, err)}
		}
		return nil, err
	}
	// A job created but not enqueued (err with j) stays PENDING; the server's recovery
	// enqueues it, so waiting for it is right.
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for !j.State.Terminal() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		id := j.ID
		err := d.Store.Tx(ctx, func(tx catalog.Tx) error {
			var err error
			j, err = tx.GetJob(ctx, id)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	cause := fmt.Sprintf("%s job %s: %s", strings.ToLower(string(j.Kind)), j.ID, j.Error)
	switch j.State {
	case catalog.StateFailed:
		return nil, &runbook.TaskError{Name: ErrJobFailed, Cause: cause}
	case catalog.StateAborted:
		return nil, &runbook.TaskError{Name: ErrJobAborted, Cause: cause}
	case catalog.StateExpired:
		return nil, &runbook.TaskError{Name: ErrJobExpired, Cause: cause}
	}
	return j, nil // COMPLETED or PARTIAL: the output's "state" says which
}

// jobOutput is the job's JSON with extra fields added.
func jobOutput(j *catalog.Job, extra map[string]any) map[string]any {
	b, _ := json.Marshal(j)
	var out map[string]any
	_ = json.Unmarshal(b, &out) // a Job always round-trips through JSON
	for k, v := range extra {
		out[k] = v
	}
	return out
}
