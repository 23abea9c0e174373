package catalog

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// ExecutionTx is the part of Tx that keeps runbooks and their executions: the definitions,
// each execution's record and history (the runbook engine's events, stored as JSON so the
// catalog need not know them), and the task tokens that .waitForTaskToken tasks hand out.
// The errors every Tx method may return (errs.Unavailable, errs.Canceled, errs.Conflict on
// a deadlock) apply; the transaction stays usable after NotFound, Exists, Conflict and
// Invalid.
type ExecutionTx interface {
	// UpsertRunbook inserts or replaces a runbook after Runbook.Prepare (UpdatedAt is Now).
	// errs.Invalid for a bad record.
	UpsertRunbook(ctx context.Context, r *Runbook) error
	// GetRunbook returns one runbook; errs.NotFound if there is none of that name.
	GetRunbook(ctx context.Context, name string) (*Runbook, error)
	// ListRunbooks returns every runbook by name.
	ListRunbooks(ctx context.Context) ([]*Runbook, error)
	// DeleteRunbook removes a runbook; its executions are kept as history (each holds a copy
	// of its definition). errs.NotFound if there is none of that name.
	DeleteRunbook(ctx context.Context, name string) error

	// CreateExecution records a new execution after Execution.Prepare (e is updated in
	// place). errs.Invalid for a bad record, errs.Exists for a duplicate ID.
	CreateExecution(ctx context.Context, e *Execution) error
	// GetExecution returns one execution; errs.NotFound if there is none with that ID.
	GetExecution(ctx context.Context, id string) (*Execution, error)
	// ListExecutions returns the executions matching f by ID (start order; newest first
	// when f.Newest). errs.Invalid for a bad filter.
	ListExecutions(ctx context.Context, f ExecutionFilter) ([]*Execution, error)
	// UpdateExecution applies u (ExecutionUpdate.Apply) and returns the updated execution;
	// the row is locked until the transaction ends. errs.NotFound for an unknown ID,
	// errs.Conflict when the execution already ended (terminal is final) or u.IfOwner does
	// not match, errs.Invalid for a bad update.
	UpdateExecution(ctx context.Context, id string, u ExecutionUpdate) (*Execution, error)
	// ClaimExecution makes owner the execution's owner until leaseUntil, when the
	// execution is RUNNING and is unowned, already owned by owner (a renewal) or its lease
	// expired (LeaseUntil before Now): of servers claiming one execution at once exactly one
	// succeeds. errs.NotFound for an unknown ID, errs.Conflict when another owner holds a
	// live lease or the execution ended, errs.Invalid for an empty owner.
	ClaimExecution(ctx context.Context, id, owner string, leaseUntil time.Time) (*Execution, error)

	// AppendHistory appends events to a RUNNING execution's history. Their Seq must be
	// strictly increasing and above every recorded one: errs.Conflict otherwise (a
	// duplicate seq: another writer got there first) and when the execution ended;
	// errs.NotFound for an unknown execution; errs.Invalid for a bad event. Appends to one
	// execution serialize (its row is locked until the transaction ends).
	AppendHistory(ctx context.Context, execution string, events []HistoryEvent) error
	// ListHistory returns an execution's history by Seq. errs.NotFound for an unknown
	// execution.
	ListHistory(ctx context.Context, execution string) ([]HistoryEvent, error)

	// CreateTaskToken records a token handed out by a task of a known execution after
	// TaskToken.Prepare. errs.Exists for a duplicate token, errs.NotFound for an unknown
	// execution, errs.Invalid for a bad record.
	CreateTaskToken(ctx context.Context, t *TaskToken) error
	// GetTaskToken returns one token; errs.NotFound when it is unknown.
	GetTaskToken(ctx context.Context, token string) (*TaskToken, error)
	// ResolveTaskToken records the decision on a token (TokenDecision.Validate) with
	// ResolvedAt Now and returns the token. errs.NotFound for an unknown token,
	// errs.Conflict when it is already resolved, errs.Invalid for a bad decision.
	ResolveTaskToken(ctx context.Context, token string, d TokenDecision) (*TaskToken, error)
	// ListTaskTokens returns the tokens matching f by (CreatedAt, Token). errs.Invalid for
	// a bad filter.
	ListTaskTokens(ctx context.Context, f TaskTokenFilter) ([]*TaskToken, error)
}

// Runbook sources.
const (
	RunbookFromConfig = "config" // read from the configuration directory at start
	RunbookFromAPI    = "api"    // sent through the API
)

// Runbook is a named runbook definition: Amazon States Language as normalized JSON (a
// YAML file is stored as its JSON equivalent).
type Runbook struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
	Source     string          `json:"source"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

// ExecutionStatus is a runbook execution's status, named as Step Functions names them.
type ExecutionStatus string

// Execution statuses.
const (
	ExecutionRunning   ExecutionStatus = "RUNNING"
	ExecutionSucceeded ExecutionStatus = "SUCCEEDED"
	ExecutionFailed    ExecutionStatus = "FAILED"
	ExecutionTimedOut  ExecutionStatus = "TIMED_OUT"
	ExecutionAborted   ExecutionStatus = "ABORTED"
)

// Valid reports whether s is one of the defined statuses.
func (s ExecutionStatus) Valid() bool {
	switch s {
	case ExecutionRunning, ExecutionSucceeded, ExecutionFailed, ExecutionTimedOut, ExecutionAborted:
		return true
	}
	return false
}

// Terminal reports whether s is final: every status but RUNNING.
func (s ExecutionStatus) Terminal() bool { return s.Valid() && s != ExecutionRunning }

// Execution is one run of a runbook. Definition is a copy of the definition it started
// with, so editing or deleting the runbook does not change it. Owner names the server that
// runs it and LeaseUntil how long that claim holds; another server may take a RUNNING
// execution over once the lease expired (its server died).
type Execution struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Runbook    string          `json:"runbook,omitempty"` // empty for a definition started directly
	Definition json.RawMessage `json:"definition"`
	Input      json.RawMessage `json:"input"`
	Status     ExecutionStatus `json:"status"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Cause      string          `json:"cause,omitempty"`
	StartedAt  time.Time       `json:"startedAt"`
	StoppedAt  *time.Time      `json:"stoppedAt,omitempty"`
	Owner      string          `json:"owner,omitempty"`
	LeaseUntil *time.Time      `json:"leaseUntil,omitempty"`
}

// ExecutionFilter selects executions; unset fields do not filter.
type ExecutionFilter struct {
	Status  *ExecutionStatus
	Runbook *string
	Owner   *string
	Limit   int    // at most this many; 0 means no limit
	After   string // cursor: the ID of the last execution of the previous page
	Newest  bool   // newest first (After then pages towards older executions)
}

// ExecutionUpdate changes an execution; nil fields are left alone.
type ExecutionUpdate struct {
	// IfOwner makes the update conditional on the execution's owner (errs.Conflict
	// otherwise): a server whose lease was taken over cannot write.
	IfOwner    *string
	Status     *ExecutionStatus
	Output     json.RawMessage // set when non-nil
	Error      *string
	Cause      *string
	StoppedAt  *time.Time
	Owner      *string
	LeaseUntil *time.Time
	ClearLease bool // sets LeaseUntil to nil
}

// HistoryEvent is one recorded runbook event: Seq numbers an execution's events from 1,
// Type and Time are copied out of Event (the runbook engine's event as JSON) so that the
// catalog can list them without decoding it.
type HistoryEvent struct {
	Execution string          `json:"execution"`
	Seq       int64           `json:"seq"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Event     json.RawMessage `json:"event"`
}

// TokenResolution is the decision recorded on a task token.
type TokenResolution string

// Token resolutions; "" is unresolved.
const (
	TokenUnresolved TokenResolution = ""
	TokenSuccess    TokenResolution = "success"
	TokenFailure    TokenResolution = "failure"
)

// TaskToken is a token a .waitForTaskToken task handed out: the execution waits until it
// is resolved (approve: success with Output; deny: failure with Error and Cause) or the
// task times out. The decision is stored so that it survives a restart and reaches the
// server that runs the execution.
type TaskToken struct {
	Token      string          `json:"token"`
	Execution  string          `json:"execution"`
	State      string          `json:"state"` // the Task state waiting for it
	CreatedAt  time.Time       `json:"createdAt"`
	Resolution TokenResolution `json:"resolution,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Cause      string          `json:"cause,omitempty"`
	ResolvedAt *time.Time      `json:"resolvedAt,omitempty"`
}

// TokenDecision resolves a task token.
type TokenDecision struct {
	Resolution TokenResolution // TokenSuccess or TokenFailure
	Output     json.RawMessage // success: the task's output (JSON; empty means {})
	Error      string          // failure: the error name
	Cause      string          // failure: why
}

// TaskTokenFilter selects task tokens; unset fields do not filter.
type TaskTokenFilter struct {
	Execution  *string
	Unresolved bool // only tokens without a decision
	Limit      int  // at most this many; 0 means no limit
}

// Prepare sets UpdatedAt to now and validates r: errs.Invalid for a bad name, a definition
// that is not a JSON object or a source other than config and api.
func (r *Runbook) Prepare(now time.Time) error {
	const op = "catalog.UpsertRunbook"
	if err := validName(op, "runbook name", r.Name); err != nil {
		return err
	}
	if err := validObject(op, "runbook "+r.Name+" definition", r.Definition); err != nil {
		return err
	}
	if r.Source != RunbookFromConfig && r.Source != RunbookFromAPI {
		return errs.Errorf(op, errs.Invalid, "runbook %s: source %q is not config or api", r.Name, r.Source)
	}
	r.UpdatedAt = now
	return nil
}

// Prepare fills a new execution's defaults (ID from NewID(now), Name its ID, Status
// RUNNING, StartedAt now, Input {}), normalizes its times and validates it: errs.Invalid
// for a bad name, a status other than RUNNING, a definition that is not a JSON object or
// input or output that is not JSON.
func (e *Execution) Prepare(now time.Time) error {
	const op = "catalog.CreateExecution"
	if e.ID == "" {
		e.ID = NewID(now)
	}
	if err := validName(op, "execution ID", e.ID); err != nil {
		return err
	}
	if e.Name == "" {
		e.Name = e.ID
	}
	if err := validName(op, "execution name", e.Name); err != nil {
		return err
	}
	if e.Status == "" {
		e.Status = ExecutionRunning
	}
	if e.Status != ExecutionRunning {
		return errs.Errorf(op, errs.Invalid, "execution %s: a new execution is RUNNING, not %q", e.ID, e.Status)
	}
	if err := validObject(op, "execution "+e.ID+" definition", e.Definition); err != nil {
		return err
	}
	if len(e.Input) == 0 {
		e.Input = json.RawMessage("{}")
	}
	if !json.Valid(e.Input) || (len(e.Output) > 0 && !json.Valid(e.Output)) {
		return errs.Errorf(op, errs.Invalid, "execution %s: input or output is not JSON", e.ID)
	}
	if e.StartedAt.IsZero() {
		e.StartedAt = now
	}
	e.StartedAt = Micro(e.StartedAt)
	e.StoppedAt, e.LeaseUntil = microPtr(e.StoppedAt), microPtr(e.LeaseUntil)
	return nil
}

// Apply applies u to e at time now. Only RUNNING changes: a RUNNING execution may end in
// any terminal status; entering one sets StoppedAt to now (unless u sets it) and clears
// the lease. Errors: errs.Conflict when e already ended or u.IfOwner is not e's owner,
// errs.Invalid for an unknown status, a return to RUNNING or output that is not JSON; e is
// unchanged then.
func (u ExecutionUpdate) Apply(e *Execution, now time.Time) error {
	const op = "catalog.UpdateExecution"
	if e.Status.Terminal() {
		return errs.Errorf(op, errs.Conflict, "execution %s is %s: a finished execution does not change", e.ID, e.Status).
			WithHint("start a new execution to run the runbook again")
	}
	if u.IfOwner != nil && *u.IfOwner != e.Owner {
		return errs.Errorf(op, errs.Conflict, "execution %s is owned by %q, not %q", e.ID, e.Owner, *u.IfOwner).
			WithHint("another server took the execution over")
	}
	if len(u.Output) > 0 && !json.Valid(u.Output) {
		return errs.Errorf(op, errs.Invalid, "execution %s: output is not JSON", e.ID)
	}
	next := *e
	if u.Status != nil && *u.Status != e.Status {
		if !u.Status.Valid() {
			return errs.Errorf(op, errs.Invalid, "execution %s: unknown status %q", e.ID, *u.Status)
		}
		next.Status = *u.Status
		next.LeaseUntil = nil
		if u.StoppedAt == nil {
			next.StoppedAt = &now
		}
	}
	if u.Output != nil {
		next.Output = append(json.RawMessage(nil), u.Output...)
	}
	setIf(&next.Error, u.Error)
	setIf(&next.Cause, u.Cause)
	setIf(&next.Owner, u.Owner)
	if u.StoppedAt != nil {
		next.StoppedAt = u.StoppedAt
	}
	if u.LeaseUntil != nil && !next.Status.Terminal() {
		next.LeaseUntil = u.LeaseUntil
	}
	if u.ClearLease {
		next.LeaseUntil = nil
	}
	next.StoppedAt, next.LeaseUntil = microPtr(next.StoppedAt), microPtr(next.LeaseUntil)
	*e = next
	return nil
}

// CanClaim reports whether owner may claim e at time now (see Tx.ClaimExecution), with the
// errs.Conflict error saying why not.
func (e *Execution) CanClaim(owner string, now time.Time) error {
	const op = "catalog.ClaimExecution"
	if owner == "" {
		return errs.Errorf(op, errs.Invalid, "execution %s: empty owner", e.ID)
	}
	if e.Status.Terminal() {
		return errs.Errorf(op, errs.Conflict, "execution %s is %s", e.ID, e.Status)
	}
	if e.Owner != "" && e.Owner != owner && e.LeaseUntil != nil && !e.LeaseUntil.Before(now) {
		return errs.Errorf(op, errs.Conflict, "execution %s is run by %s until %s", e.ID, e.Owner,
			e.LeaseUntil.Format(time.RFC3339)).WithHint("the other server renews its lease while it runs")
	}
	return nil
}

// Validate checks a history event: errs.Invalid for a seq below 1, an empty type or time,
// or an event that is not a JSON object.
func (h HistoryEvent) Validate() error {
	const op = "catalog.AppendHistory"
	if h.Seq < 1 || h.Type == "" || h.Time.IsZero() {
		return errs.Errorf(op, errs.Invalid, "history event %d: seq must be positive and type and time set", h.Seq)
	}
	return validObject(op, "history event", h.Event)
}

// Prepare fills a token's CreatedAt (now) and validates it: errs.Invalid for an empty or
// over-long token or execution, or a token created already resolved.
func (t *TaskToken) Prepare(now time.Time) error {
	const op = "catalog.CreateTaskToken"
	if err := validName(op, "task token", t.Token); err != nil {
		return err
	}
	if err := validName(op, "token execution", t.Execution); err != nil {
		return err
	}
	if t.Resolution != TokenUnresolved || t.ResolvedAt != nil {
		return errs.Errorf(op, errs.Invalid, "task token for %s: a new token is unresolved", t.Execution)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.CreatedAt = Micro(t.CreatedAt)
	return nil
}

// Validate checks a decision: errs.Invalid for a resolution other than success or
// failure, success output that is not JSON, or a failure without an error name. Empty
// success output becomes {}.
func (d *TokenDecision) Validate() error {
	const op = "catalog.ResolveTaskToken"
	switch d.Resolution {
	case TokenSuccess:
		if len(d.Output) == 0 {
			d.Output = json.RawMessage("{}")
		}
		if !json.Valid(d.Output) {
			return errs.Errorf(op, errs.Invalid, "the approval output is not valid JSON: %.60q", d.Output).
				WithHint(`pass a JSON value, such as '{"approved": true}'`)
		}
	case TokenFailure:
		if d.Error == "" {
			return errs.Errorf(op, errs.Invalid, "a failure needs an error name")
		}
		d.Output = nil
	default:
		return errs.Errorf(op, errs.Invalid, "resolution %q is not success or failure", d.Resolution)
	}
	return nil
}

// Validate checks the filter's limit and cursor (errs.Invalid).
func (f ExecutionFilter) Validate() error {
	return validateBounds("catalog.ListExecutions", f.Limit, nil, nil)
}

// RunbookEventSource is the source of execution status events, as Step Functions announces
// under aws.states.
const RunbookEventSource = "rewind.runbook"

// DetailExecution is the detail type of execution status events.
const DetailExecution = "Execution Status Change"

// MaxEventPayload bounds the input and output an execution status event carries: larger
// ones are left out (the execution record keeps them).
const MaxEventPayload = 64 << 10 // bytes

// ExecutionDetail is the detail of an execution status event.
type ExecutionDetail struct {
	ExecutionID string          `json:"executionId"`
	Name        string          `json:"name"`
	Runbook     string          `json:"runbook"`
	Status      ExecutionStatus `json:"status"`
	Error       string          `json:"error,omitempty"`
	Cause       string          `json:"cause,omitempty"`
	Input       json.RawMessage `json:"input,omitempty"`
	Output      json.RawMessage `json:"output,omitempty"`
	StartDate   time.Time       `json:"startDate"`
	StopDate    *time.Time      `json:"stopDate,omitempty"`
}

// ExecutionStatusEvent builds the event announcing e's current status, for site (empty when
// the server has none): source rewind.runbook, detail-type "Execution Status Change",
// resources [runbook, execution ID] (the runbook left out when empty). Input and output
// over MaxEventPayload are left out. ID, Version and Time are left for Tx.AppendEvent.
func ExecutionStatusEvent(e *Execution, site string) *Event {
	d := ExecutionDetail{
		ExecutionID: e.ID, Name: e.Name, Runbook: e.Runbook, Status: e.Status, Error: e.Error, Cause: e.Cause,
		StartDate: e.StartedAt, StopDate: e.StoppedAt,
	}
	if len(e.Input) <= MaxEventPayload && json.Valid(e.Input) {
		d.Input = e.Input
	}
	if len(e.Output) <= MaxEventPayload && json.Valid(e.Output) {
		d.Output = e.Output
	}
	res := []string{}
	if e.Runbook != "" {
		res = append(res, e.Runbook)
	}
	res = append(res, e.ID)
	return &Event{Source: RunbookEventSource, DetailType: DetailExecution, Site: site, Resources: res, Detail: mustJSON(d)}
}

// CreateExecutionWithEvent creates an execution and appends its RUNNING status event for
// site, in tx. Errors are those of Tx.CreateExecution and Tx.AppendEvent.
func CreateExecutionWithEvent(ctx context.Context, tx Tx, e *Execution, site string) error {
	if err := tx.CreateExecution(ctx, e); err != nil {
		return err
	}
	return tx.AppendEvent(ctx, ExecutionStatusEvent(e, site))
}

// UpdateExecutionWithEvent updates an execution and, when its status changed, appends the
// status event for site, in tx: the event is written if and only if the change commits.
// Errors are those of Tx.GetExecution, Tx.UpdateExecution and Tx.AppendEvent.
func UpdateExecutionWithEvent(ctx context.Context, tx Tx, id string, u ExecutionUpdate, site string) (*Execution, error) {
	before, err := tx.GetExecution(ctx, id)
	if err != nil {
		return nil, err
	}
	e, err := tx.UpdateExecution(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if e.Status != before.Status {
		if err := tx.AppendEvent(ctx, ExecutionStatusEvent(e, site)); err != nil {
			return nil, err
		}
	}
	return e, nil
}
