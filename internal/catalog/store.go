package catalog

import (
	"context"
	"time"
)

// Store is a catalog database. Implementations live in adapter packages (sqlstore) and pass
// the conformance suite in catalog/catalogtest.
//
// Events after commit: a state change and the event announcing it are written in the same
// transaction (AppendEvent in the Tx that calls UpdateJob, or UpdateJobWithEvent), so a
// rolled-back change announces nothing; a dispatcher lists undispatched events after commit,
// delivers them and marks them dispatched.
type Store interface {
	// Tx runs fn in one transaction: it commits when fn returns nil and rolls back when fn
	// returns an error or panics (the panic is re-raised). fn's error is returned as is;
	// a failure to begin or commit returns errs.Unavailable (database unreachable) or
	// errs.Conflict (a serialization failure or deadlock: the caller may run fn again).
	// Tx never retries by itself. Safe for concurrent use; transactions are isolated at
	// least at READ COMMITTED and the row a Tx updates is locked until it ends. The Tx must
	// not be used after fn returns nor shared between goroutines.
	Tx(ctx context.Context, fn func(Tx) error) error

	// Close releases the database. Transactions running meanwhile fail.
	Close() error
}

// Tx is one catalog transaction. Every time it records (CreatedAt, StartedAt, DeletedAt,
// DispatchedAt, an event's Time) is Now(), fixed when the transaction began. Times are
// stored with microsecond precision, in UTC.
//
// Every method may also return errs.Unavailable when the database cannot be reached,
// errs.Canceled when ctx ends, and errs.Conflict on a deadlock between transactions.
// After a method fails with errs.NotFound, errs.Exists, errs.Conflict or errs.Invalid the
// transaction remains usable (the conformance suite checks this; PostgreSQL would otherwise
// abort the whole transaction). A Tx is used by one goroutine.
type Tx interface {
	ExecutionTx // runbooks, executions, their history and task tokens (executions.go)

	EventRulesTx // deliveries, dead letters, incidents and the event archive (events_rules.go)

	RulesAlarmsTx // event rules put through the API and alarm states (rules_alarms.go)

	// Now is the transaction's fixed time, from the store's injected clock, truncated to the
	// microsecond and in UTC.
	Now() time.Time

	// SyncConfig replaces the sites, vaults and resources with the given sets (as read from
	// the configuration at start): records not given are removed, the others are inserted
	// or updated. Points and jobs that name removed vaults or resources are kept as
	// history. errs.Invalid for an empty or duplicate name, or a vault naming a site not
	// in sites.
	SyncConfig(ctx context.Context, sites []Site, vaults []Vault, resources []Resource) error
	// UpsertSite inserts or updates a site. errs.Invalid for an empty name.
	UpsertSite(ctx context.Context, s Site) error
	// UpsertVault inserts or updates a vault. errs.Invalid for an empty name or URL or an
	// unknown site.
	UpsertVault(ctx context.Context, v Vault) error
	// UpsertResource inserts or updates a resource. errs.Invalid for an empty name or kind.
	UpsertResource(ctx context.Context, r Resource) error
	// ListSites returns all sites by name.
	ListSites(ctx context.Context) ([]Site, error)
	// ListVaults returns all vaults by name.
	ListVaults(ctx context.Context) ([]Vault, error)
	// GetVault returns one vault; errs.NotFound if there is none of that name.
	GetVault(ctx context.Context, name string) (*Vault, error)
	// ListResources returns all resources by name.
	ListResources(ctx context.Context) ([]Resource, error)
	// GetResource returns one resource; errs.NotFound if there is none of that name.
	GetResource(ctx context.Context, name string) (*Resource, error)

	// CreateJob records a new job after Job.Prepare (which fills ID, State and CreatedAt
	// when unset; j is updated in place). errs.Invalid for a bad record; errs.Exists when
	// a job with the same ID or the same non-empty DedupKey exists (of two concurrent
	// transactions creating the same DedupKey exactly one succeeds).
	CreateJob(ctx context.Context, j *Job) error
	// GetJob returns one job; errs.NotFound if there is none with that ID.
	GetJob(ctx context.Context, id string) (*Job, error)
	// ListJobs returns the jobs matching f, by ID (creation order; newest first when
	// f.Newest). errs.Invalid for a bad filter.
	ListJobs(ctx context.Context, f JobFilter) ([]*Job, error)
	// UpdateJob applies u to the job (JobUpdate.Apply) and returns the updated job. The row
	// is locked until the transaction ends, so concurrent updates of one job serialize.
	// errs.NotFound for an unknown ID; errs.Conflict when u changes the state in a way
	// CanTransition forbids or the job is already in a terminal state; errs.Invalid for a
	// bad update.
	UpdateJob(ctx context.Context, id string, u JobUpdate) (*Job, error)

	// UpsertPoint inserts or updates a point after Point.Prepare (CreatedAt is kept from the
	// first insert). errs.Invalid for a bad record.
	UpsertPoint(ctx context.Context, p *Point) error
	// MarkPointDeleted sets the point's state to DELETED and DeletedAt to Now (unchanged when
	// it is already deleted) and returns it. errs.NotFound for an unknown ID.
	MarkPointDeleted(ctx context.Context, id string) (*Point, error)
	// GetPoint returns one point; errs.NotFound if there is none with that ID.
	GetPoint(ctx context.Context, id string) (*Point, error)
	// ListPoints returns the points matching f, by (Time, ID); newest first when f.Newest.
	// errs.Invalid for a bad filter or cursor.
	ListPoints(ctx context.Context, f PointFilter) ([]*Point, error)

	// AppendEvent writes an event into the outbox after Event.Prepare (which fills ID,
	// Version and Time when unset; e is updated in place). errs.Invalid for a bad event;
	// errs.Exists for a duplicate ID.
	AppendEvent(ctx context.Context, e *Event) error
	// ListEvents returns the events matching f, by ID. IDs from several servers are not
	// in commit order, so a dispatcher lists Undispatched events rather than paging with a
	// cursor. errs.Invalid for a bad filter.
	ListEvents(ctx context.Context, f EventFilter) ([]*Event, error)
	// MarkDispatched sets DispatchedAt to Now on the given events that are not yet
	// dispatched (already dispatched ones keep their time). errs.NotFound, naming them,
	// when some IDs are unknown; nothing is marked then.
	MarkDispatched(ctx context.Context, ids []string) error
}

// JobFilter selects jobs; unset (nil, empty) fields do not filter. Since and Until bound
// CreatedAt: Since <= CreatedAt < Until.
type JobFilter struct {
	Kind     *JobKind
	State    *State
	States   []State // any of these
	Resource *string
	Vault    *string // the job's vault or its target vault
	Plan     *string
	DedupKey *string
	Since    *time.Time
	Until    *time.Time
	Limit    int    // at most this many; 0 means no limit
	After    string // cursor: the ID of the last job of the previous page
	Newest   bool   // newest first (After then pages towards older jobs)
}

// JobUpdate changes a job; nil fields are left alone.
type JobUpdate struct {
	// IfState makes the update conditional: it applies only when the job is in this state,
	// and fails with errs.Conflict otherwise (two workers claiming one PENDING job: exactly
	// one succeeds).
	IfState    *State
	State      *State
	Host       *string
	StartedAt  *time.Time
	FinishedAt *time.Time
	// CompleteBy sets the completion deadline (a plan rule's completion window counts from
	// the job's first start).
	CompleteBy      *time.Time
	HeartbeatAt     *time.Time
	Attempt         *int
	BytesDone       *int64
	BytesTotal      *int64
	FilesDone       *int64
	PointID         *string
	CreatedResource *string
	Error           *string
}

// PointFilter selects points; unset fields do not filter. Since and Until bound Time:
// Since <= Time < Until.
type PointFilter struct {
	Vault      *string
	Resource   *string
	Kind       *string
	Host       *string
	State      *PointState
	Parent     *string
	CopiedFrom *string
	Since      *time.Time
	Until      *time.Time
	Limit      int    // at most this many; 0 means no limit
	After      string // cursor: Cursor() of the last point of the previous page
	Newest     bool   // newest first (After then pages towards older points)
}

// EventFilter selects events; unset fields do not filter. Since and Until bound Time:
// Since <= Time < Until.
type EventFilter struct {
	Source       *string
	DetailType   *string
	Since        *time.Time
	Until        *time.Time
	Undispatched bool   // only events not yet dispatched
	Limit        int    // at most this many; 0 means no limit
	After        string // cursor: the ID of the last event of the previous page
}

// Ptr returns a pointer to v, for filling filters and updates.
func Ptr[T any](v T) *T { return &v }
