package catalog

import (
	"encoding/json"
	"time"
)

// Site is a place vaults live in (a data centre, a region). Sites come from the server's
// configuration.
type Site struct {
	Name string `json:"name"`
}

// Vault is a configured vault: a name the API and plans use, and the location URL of the
// repository. Site is empty when the vault belongs to no named site.
type Vault struct {
	Name   string `json:"name"`
	Site   string `json:"site,omitempty"`
	URL    string `json:"url"`
	Locked bool   `json:"locked"` // the vault refuses deletion of points before their retention
}

// Resource is a protected resource from the configuration: what a plan backs up.
type Resource struct {
	Name       string            `json:"name"`
	Kind       string            `json:"kind"` // the protection plugin: "files", "postgres", …
	Host       string            `json:"host,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Continuous bool              `json:"continuous"` // point-in-time recovery between points
}

// PointState is the catalog's view of a recovery point.
type PointState string

const (
	PointAvailable PointState = "AVAILABLE" // present in its vault
	PointDeleted   PointState = "DELETED"   // deleted (pruned or by a person); kept as history
	PointMissing   PointState = "MISSING"   // indexed before but absent from the vault at the last sync
)

// Valid reports whether s is one of the defined point states.
func (s PointState) Valid() bool {
	switch s {
	case PointAvailable, PointDeleted, PointMissing:
		return true
	}
	return false
}

// Point is a recovery point as indexed from its vault. ID is the vault's point ID (hex); it
// names the point's sealed contents, so it is unique across vaults and a copy has its own ID
// with CopiedFrom naming the source.
type Point struct {
	ID         string            `json:"id"`
	Vault      string            `json:"vault"`
	Resource   string            `json:"resource"`
	Kind       string            `json:"kind"`
	Time       time.Time         `json:"time"` // when the data was captured
	Host       string            `json:"host,omitempty"`
	Paths      []string          `json:"paths,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Parent     string            `json:"parent,omitempty"` // the point this one is incremental on
	SizeBytes  int64             `json:"sizeBytes"`
	RangeFrom  *time.Time        `json:"rangeFrom,omitempty"` // continuous points: the recoverable window
	RangeTo    *time.Time        `json:"rangeTo,omitempty"`
	CopiedFrom string            `json:"copiedFrom,omitempty"`
	State      PointState        `json:"state"`
	CreatedAt  time.Time         `json:"createdAt"` // when the catalog first indexed it
	DeletedAt  *time.Time        `json:"deletedAt,omitempty"`
}

// JobKind is what a job does.
type JobKind string

const (
	JobBackup  JobKind = "BACKUP"
	JobCopy    JobKind = "COPY"
	JobRestore JobKind = "RESTORE"
	JobVerify  JobKind = "VERIFY"
	JobPrune   JobKind = "PRUNE"
)

// Valid reports whether k is one of the defined job kinds.
func (k JobKind) Valid() bool {
	switch k {
	case JobBackup, JobCopy, JobRestore, JobVerify, JobPrune:
		return true
	}
	return false
}

// State is a job's state, named as AWS Backup names its job states.
type State string

const (
	StateCreated   State = "CREATED"   // recorded, not yet eligible to run
	StatePending   State = "PENDING"   // waiting for a worker (or for a retry)
	StateRunning   State = "RUNNING"   // a worker holds it
	StateCompleted State = "COMPLETED" // done, everything succeeded
	StatePartial   State = "PARTIAL"   // done, some items failed
	StateFailed    State = "FAILED"    // done, nothing usable
	StateAborted   State = "ABORTED"   // canceled by a person or by shutdown
	StateExpired   State = "EXPIRED"   // its start window passed before it ran
)

// Valid reports whether s is one of the defined job states.
func (s State) Valid() bool {
	switch s {
	case StateCreated, StatePending, StateRunning, StateCompleted, StatePartial, StateFailed,
		StateAborted, StateExpired:
		return true
	}
	return false
}

// Terminal reports whether s is final: a job in a terminal state never changes again.
func (s State) Terminal() bool {
	switch s {
	case StateCompleted, StatePartial, StateFailed, StateAborted, StateExpired:
		return true
	}
	return false
}

// transitions lists, for each non-terminal state, the states a job may move to.
var transitions = map[State][]State{
	StateCreated: {StatePending, StateExpired, StateAborted},
	StatePending: {StateRunning, StateExpired, StateAborted},
	StateRunning: {StateCompleted, StatePartial, StateFailed, StateAborted, StatePending},
}

// CanTransition reports whether a job may move from one state to another. Staying in the same
// state is not a transition and is reported false; terminal states are final.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Job is one unit of work for a worker: a backup, a copy, a restore, a verification or a
// prune. ID is sortable by creation time (see NewID).
type Job struct {
	ID              string          `json:"id"`
	Kind            JobKind         `json:"kind"`
	State           State           `json:"state"`
	Resource        string          `json:"resource,omitempty"`
	Vault           string          `json:"vault,omitempty"`
	TargetVault     string          `json:"targetVault,omitempty"` // copies: the destination vault
	Plan            string          `json:"plan,omitempty"`
	Rule            string          `json:"rule,omitempty"`
	Host            string          `json:"host,omitempty"` // the worker host that runs it
	ScheduledFor    *time.Time      `json:"scheduledFor,omitempty"`
	StartBy         *time.Time      `json:"startBy,omitempty"`    // expires if not started by then
	CompleteBy      *time.Time      `json:"completeBy,omitempty"` // aborted if not finished by then
	CreatedAt       time.Time       `json:"createdAt"`
	StartedAt       *time.Time      `json:"startedAt,omitempty"`
	FinishedAt      *time.Time      `json:"finishedAt,omitempty"`
	Attempt         int             `json:"attempt"`
	BytesDone       int64           `json:"bytesDone"`
	BytesTotal      int64           `json:"bytesTotal"`
	FilesDone       int64           `json:"filesDone"`
	PointID         string          `json:"pointId,omitempty"`         // the point made, copied, restored or verified
	CreatedResource string          `json:"createdResource,omitempty"` // restores: what was created
	Error           string          `json:"error,omitempty"`
	Params          json.RawMessage `json:"params,omitempty"` // kind-specific parameters, a JSON object
	// HeartbeatAt is when the agent running the job last reported it alive (jobs run by an
	// agent on a data host; nil otherwise). A RUNNING agent job whose heartbeat is too old
	// is taken back by the server.
	HeartbeatAt *time.Time `json:"heartbeatAt,omitempty"`
	// DedupKey, when set, is unique among all jobs: the scheduler uses
	// "plan/rule/resource/scheduled time" so that a due rule becomes a job exactly once,
	// even with several servers sharing one catalog.
	DedupKey string `json:"dedupKey,omitempty"`
}

// Event is an entry of the event outbox, in the EventBridge envelope. Version is "0" and
// Source "rewind.backup" for the events the catalog builds; DispatchedAt is set once the
// dispatcher delivered it and is not part of the envelope.
type Event struct {
	Version      string          `json:"version"`
	ID           string          `json:"id"`
	Source       string          `json:"source"`
	DetailType   string          `json:"detail-type"`
	Time         time.Time       `json:"time"`
	Site         string          `json:"site"`
	Resources    []string        `json:"resources"`
	Detail       json.RawMessage `json:"detail"`
	DispatchedAt *time.Time      `json:"-"`
}
