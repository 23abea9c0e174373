package catalog

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// EventRulesTx is the part of Tx that keeps what event rules produce: deliveries (one per
// matched rule target, the durable queue a dispatcher works through, dead letters
// included), incidents opened by incident targets, and the pruning of the event archive.
// The errors every Tx method may return (errs.Unavailable, errs.Canceled, errs.Conflict on
// a deadlock) apply; the transaction stays usable after NotFound, Exists, Conflict and
// Invalid.
type EventRulesTx interface {
	// CreateDeliveries records new deliveries after Delivery.Prepare (each is updated in
	// place). errs.Invalid for a bad record, errs.Exists for a duplicate ID (none is
	// written then).
	CreateDeliveries(ctx context.Context, ds []*Delivery) error
	// ClaimDeliveries makes owner the owner, until leaseUntil, of at most limit PENDING
	// deliveries that are due (NextAt at or before Now) and unowned or whose lease expired,
	// oldest NextAt first, and returns them. Of servers claiming at once each delivery goes
	// to one. errs.Invalid for an empty owner or a limit below 1.
	ClaimDeliveries(ctx context.Context, owner string, leaseUntil time.Time, limit int) ([]*Delivery, error)
	// UpdateDelivery applies u (DeliveryUpdate.Apply) and returns the updated delivery; the
	// row is locked until the transaction ends. errs.NotFound for an unknown ID,
	// errs.Conflict when the delivery already ended or u.IfOwner does not match.
	UpdateDelivery(ctx context.Context, id string, u DeliveryUpdate) (*Delivery, error)
	// GetDelivery returns one delivery; errs.NotFound if there is none with that ID.
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// ListDeliveries returns the deliveries matching f by ID (creation order; newest first
	// when f.Newest). errs.Invalid for a bad filter.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, error)

	// DeleteEventsBefore deletes the dispatched events whose Time is before t (the end of
	// the archive) and returns how many it deleted. Undispatched events are kept whatever
	// their age; deliveries keep their copy of the event.
	DeleteEventsBefore(ctx context.Context, t time.Time) (int, error)

	// CreateIncident records an incident after Incident.Prepare. errs.Exists for a
	// duplicate ID (an incident target delivered twice), errs.Invalid for a bad record.
	CreateIncident(ctx context.Context, inc *Incident) error
	// GetIncident returns one incident; errs.NotFound if there is none with that ID.
	GetIncident(ctx context.Context, id string) (*Incident, error)
	// ListIncidents returns the incidents matching f by ID (newest first when f.Newest).
	// errs.Invalid for a bad filter.
	ListIncidents(ctx context.Context, f IncidentFilter) ([]*Incident, error)
	// CloseIncident sets an open incident's status to closed and ClosedAt to Now and
	// returns it. errs.NotFound for an unknown ID, errs.Conflict when it is closed already.
	CloseIncident(ctx context.Context, id string) (*Incident, error)
}

// DeliveryState is where a delivery is in its life.
type DeliveryState string

// Delivery states: PENDING until delivered or out of retries; DEAD is a dead letter.
const (
	DeliveryPending   DeliveryState = "PENDING"
	DeliveryDelivered DeliveryState = "DELIVERED"
	DeliveryDead      DeliveryState = "DEAD"
)

// Valid reports whether s is one of the defined states.
func (s DeliveryState) Valid() bool {
	return s == DeliveryPending || s == DeliveryDelivered || s == DeliveryDead
}

// Terminal reports whether s is final: DELIVERED or DEAD.
func (s DeliveryState) Terminal() bool { return s == DeliveryDelivered || s == DeliveryDead }

// Delivery is one rule target to invoke for one event, kept until it succeeded or ran out
// of retries (DEAD: a dead letter, with the last error). Spec is the rules engine's
// delivery as JSON (target, payload, retry policy), so that a delivery runs as it was
// matched even if the rules change; the catalog does not read it. Replay names the replay
// that made it ("" for a live event).
type Delivery struct {
	ID             string          `json:"id"`
	EventID        string          `json:"eventId"`
	Rule           string          `json:"rule"`
	Target         int             `json:"target"`
	Kind           string          `json:"kind"` // webhook, notify, exec, runbook, incident
	Replay         string          `json:"replay,omitempty"`
	State          DeliveryState   `json:"state"`
	Spec           json.RawMessage `json:"spec"`
	Attempts       int             `json:"attempts"`
	FirstAttemptAt *time.Time      `json:"firstAttemptAt,omitempty"`
	NextAt         time.Time       `json:"nextAt"`
	LastError      string          `json:"lastError,omitempty"`
	Owner          string          `json:"owner,omitempty"`
	LeaseUntil     *time.Time      `json:"leaseUntil,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	FinishedAt     *time.Time      `json:"finishedAt,omitempty"`
}

// DeliveryFilter selects deliveries; unset fields do not filter.
type DeliveryFilter struct {
	State   *DeliveryState
	Rule    *string
	EventID *string
	Replay  *string
	Limit   int    // at most this many; 0 means no limit
	After   string // cursor: the ID of the last delivery of the previous page
	Newest  bool   // newest first (After then pages towards older deliveries)
}

// Validate checks the filter (errs.Invalid).
func (f DeliveryFilter) Validate() error {
	const op = "catalog.ListDeliveries"
	if f.State != nil && !f.State.Valid() {
		return errs.Errorf(op, errs.Invalid, "unknown delivery state %q", *f.State).
			WithHint("use PENDING, DELIVERED or DEAD")
	}
	return validateBounds(op, f.Limit, nil, nil)
}

// DeliveryUpdate changes a delivery; nil fields are left alone.
type DeliveryUpdate struct {
	// IfOwner makes the update conditional on the delivery's owner (errs.Conflict
	// otherwise): a worker whose lease was taken over cannot record an outcome.
	IfOwner        *string
	State          *DeliveryState
	Attempts       *int
	FirstAttemptAt *time.Time
	NextAt         *time.Time
	LastError      *string
	ClearLease     bool // unowned again (with no lease)
}

// Prepare fills a new delivery's defaults (ID from NewID(now), State PENDING, NextAt and
// CreatedAt now), normalizes its times and validates it: errs.Invalid for an empty event
// ID, rule or kind, a negative target, a state other than PENDING or a Spec that is not a
// JSON object.
func (d *Delivery) Prepare(now time.Time) error {
	const op = "catalog.CreateDeliveries"
	if d.ID == "" {
		d.ID = NewID(now)
	}
	for _, f := range []struct{ what, v string }{{"delivery ID", d.ID}, {"delivery event ID", d.EventID},
		{"delivery rule", d.Rule}, {"delivery kind", d.Kind}} {
		if err := validName(op, f.what, f.v); err != nil {
			return err
		}
	}
	if d.Target < 0 {
		return errs.Errorf(op, errs.Invalid, "delivery %s: negative target index %d", d.ID, d.Target)
	}
	if d.State == "" {
		d.State = DeliveryPending
	}
	if d.State != DeliveryPending {
		return errs.Errorf(op, errs.Invalid, "delivery %s: a new delivery is PENDING, not %q", d.ID, d.State)
	}
	if err := validObject(op, "delivery "+d.ID+" spec", d.Spec); err != nil {
		return err
	}
	if d.NextAt.IsZero() {
		d.NextAt = now
	}
	d.CreatedAt = now
	d.NextAt = Micro(d.NextAt)
	d.FirstAttemptAt, d.LeaseUntil, d.FinishedAt = microPtr(d.FirstAttemptAt), microPtr(d.LeaseUntil), microPtr(d.FinishedAt)
	d.Attempts, d.Owner = 0, ""
	return nil
}

// Apply applies u to d at time now: a PENDING delivery may become DELIVERED or DEAD
// (FinishedAt now, lease cleared) or stay PENDING with a new NextAt. Errors: errs.Conflict
// when d already ended or u.IfOwner is not d's owner, errs.Invalid for an unknown state, a
// return to PENDING or a negative attempt count; d is unchanged then.
func (u DeliveryUpdate) Apply(d *Delivery, now time.Time) error {
	const op = "catalog.UpdateDelivery"
	if d.State.Terminal() {
		return errs.Errorf(op, errs.Conflict, "delivery %s is %s: a finished delivery does not change", d.ID, d.State)
	}
	if u.IfOwner != nil && *u.IfOwner != d.Owner {
		return errs.Errorf(op, errs.Conflict, "delivery %s is owned by %q, not %q", d.ID, d.Owner, *u.IfOwner).
			WithHint("another worker took the delivery over after its lease expired")
	}
	if u.Attempts != nil && *u.Attempts < 0 {
		return errs.Errorf(op, errs.Invalid, "delivery %s: negative attempt count %d", d.ID, *u.Attempts)
	}
	next := *d
	if u.State != nil && *u.State != d.State {
		if !u.State.Valid() || !u.State.Terminal() {
			return errs.Errorf(op, errs.Invalid, "delivery %s: cannot go from %s to %q", d.ID, d.State, *u.State)
		}
		next.State = *u.State
		next.FinishedAt = &now
		next.Owner, next.LeaseUntil = "", nil
	}
	setIf(&next.Attempts, u.Attempts)
	setIf(&next.LastError, u.LastError)
	if u.FirstAttemptAt != nil {
		next.FirstAttemptAt = u.FirstAttemptAt
	}
	if u.NextAt != nil {
		next.NextAt = *u.NextAt
	}
	if u.ClearLease {
		next.Owner, next.LeaseUntil = "", nil
	}
	next.NextAt = Micro(next.NextAt)
	next.FirstAttemptAt, next.FinishedAt = microPtr(next.FirstAttemptAt), microPtr(next.FinishedAt)
	*d = next
	return nil
}

// Due reports whether owner may claim d at now (see EventRulesTx.ClaimDeliveries).
func (d *Delivery) Due(now time.Time) bool {
	return d.State == DeliveryPending && !d.NextAt.After(now) && (d.LeaseUntil == nil || d.LeaseUntil.Before(now))
}

// IncidentStatus is open or closed.
type IncidentStatus string

// Incident statuses.
const (
	IncidentOpen   IncidentStatus = "open"
	IncidentClosed IncidentStatus = "closed"
)

// Severities of incidents, most severe first (as the rules engine names them).
var incidentSeverities = []string{"critical", "high", "medium", "low"}

// Incident is what an incident target opened: a title, a severity, the rule and event
// that opened it, and whether someone closed it.
type Incident struct {
	ID       string          `json:"id"`
	Title    string          `json:"title"`
	Severity string          `json:"severity"`
	Rule     string          `json:"rule"`
	EventID  string          `json:"eventId"`
	Event    json.RawMessage `json:"event"`
	Status   IncidentStatus  `json:"status"`
	OpenedAt time.Time       `json:"openedAt"`
	ClosedAt *time.Time      `json:"closedAt,omitempty"`
}

// IncidentFilter selects incidents; unset fields do not filter.
type IncidentFilter struct {
	Status *IncidentStatus
	Limit  int    // at most this many; 0 means no limit
	After  string // cursor: the ID of the last incident of the previous page
	Newest bool   // newest first
}

// Validate checks the filter (errs.Invalid).
func (f IncidentFilter) Validate() error {
	const op = "catalog.ListIncidents"
	if f.Status != nil && *f.Status != IncidentOpen && *f.Status != IncidentClosed {
		return errs.Errorf(op, errs.Invalid, "unknown incident status %q", *f.Status).WithHint("use open or closed")
	}
	return validateBounds(op, f.Limit, nil, nil)
}

// Prepare fills a new incident's defaults (ID from NewID(now), status open, OpenedAt now)
// and validates it: errs.Invalid for an empty title or rule, an unknown severity, a status
// other than open or an event that is not a JSON object.
func (inc *Incident) Prepare(now time.Time) error {
	const op = "catalog.CreateIncident"
	if inc.ID == "" {
		inc.ID = NewID(now)
	}
	for _, f := range []struct{ what, v string }{{"incident ID", inc.ID}, {"incident rule", inc.Rule},
		{"incident event ID", inc.EventID}} {
		if err := validName(op, f.what, f.v); err != nil {
			return err
		}
	}
	if inc.Title == "" {
		return errs.Errorf(op, errs.Invalid, "incident %s has no title", inc.ID)
	}
	if !slices.Contains(incidentSeverities, inc.Severity) {
		return errs.Errorf(op, errs.Invalid, "incident %s: unknown severity %q", inc.ID, inc.Severity).
			WithHint("use critical, high, medium or low")
	}
	if inc.Status == "" {
		inc.Status = IncidentOpen
	}
	if inc.Status != IncidentOpen || inc.ClosedAt != nil {
		return errs.Errorf(op, errs.Invalid, "incident %s: a new incident is open", inc.ID)
	}
	if err := validObject(op, "incident "+inc.ID+" event", inc.Event); err != nil {
		return err
	}
	inc.OpenedAt = now
	return nil
}
