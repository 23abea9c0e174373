package catalog

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// EventSource is the source of every event the catalog builds. Backup, copy, restore,
// verify and prune jobs and recovery points all announce under it, as AWS Backup announces
// all of them under aws.backup.
const EventSource = "rewind.backup"

// Detail types of the events the catalog builds.
const (
	DetailBackupJob  = "Backup Job State Change"
	DetailCopyJob    = "Copy Job State Change"
	DetailRestoreJob = "Restore Job State Change"
	DetailVerifyJob  = "Verify Job State Change"
	DetailPruneJob   = "Prune Job State Change"
	DetailPoint      = "Recovery Point State Change"
)

var jobDetailTypes = map[JobKind]string{
	JobBackup:  DetailBackupJob,
	JobCopy:    DetailCopyJob,
	JobRestore: DetailRestoreJob,
	JobVerify:  DetailVerifyJob,
	JobPrune:   DetailPruneJob,
}

// JobDetail is the detail of a job state change event. Unlike AWS Backup, every job kind
// names its state "state", so one event pattern matches all of them.
type JobDetail struct {
	JobID           string     `json:"jobId"`
	Kind            JobKind    `json:"kind"`
	State           State      `json:"state"`
	Resource        string     `json:"resource,omitempty"`
	Vault           string     `json:"vault,omitempty"`
	TargetVault     string     `json:"targetVault,omitempty"`
	Plan            string     `json:"plan,omitempty"`
	Rule            string     `json:"rule,omitempty"`
	Host            string     `json:"host,omitempty"`
	PointID         string     `json:"pointId,omitempty"`
	CreatedResource string     `json:"createdResource,omitempty"`
	Bytes           int64      `json:"bytes"`
	BytesTotal      int64      `json:"bytesTotal"`
	Files           int64      `json:"files"`
	Attempt         int        `json:"attempt"`
	Error           string     `json:"error,omitempty"`
	CreationDate    time.Time  `json:"creationDate"`
	StartDate       *time.Time `json:"startDate,omitempty"`
	CompletionDate  *time.Time `json:"completionDate,omitempty"`
	ScheduledFor    *time.Time `json:"scheduledFor,omitempty"`
}

// JobStateEvent builds the event announcing j's current state, for site (empty when the
// server has none): detail-type "<Kind> Job State Change", resources the job's resource and
// point when set. ID, Version and Time are left for Tx.AppendEvent to fill.
func JobStateEvent(j *Job, site string) *Event {
	d := JobDetail{
		JobID: j.ID, Kind: j.Kind, State: j.State, Resource: j.Resource, Vault: j.Vault,
		TargetVault: j.TargetVault, Plan: j.Plan, Rule: j.Rule, Host: j.Host, PointID: j.PointID,
		CreatedResource: j.CreatedResource, Bytes: j.BytesDone, BytesTotal: j.BytesTotal,
		Files: j.FilesDone, Attempt: j.Attempt, Error: j.Error, CreationDate: j.CreatedAt,
		StartDate: j.StartedAt, CompletionDate: j.FinishedAt, ScheduledFor: j.ScheduledFor,
	}
	dt, ok := jobDetailTypes[j.Kind]
	if !ok {
		dt = string(j.Kind) + " Job State Change"
	}
	res := []string{}
	if j.Resource != "" {
		res = append(res, j.Resource)
	}
	if j.PointID != "" {
		res = append(res, j.PointID)
	}
	return &Event{Source: EventSource, DetailType: dt, Site: site, Resources: res, Detail: mustJSON(d)}
}

// PointDetail is the detail of a recovery point state change event. Size is a string, as in
// AWS Backup's events.
type PointDetail struct {
	PointID      string     `json:"pointId"`
	Status       PointState `json:"status"`
	Vault        string     `json:"vault"`
	Resource     string     `json:"resource"`
	Kind         string     `json:"kind"`
	Host         string     `json:"host,omitempty"`
	Time         time.Time  `json:"time"`
	SizeBytes    string     `json:"backupSizeInBytes"`
	Parent       string     `json:"parent,omitempty"`
	CopiedFrom   string     `json:"copiedFrom,omitempty"`
	CreationDate time.Time  `json:"creationDate"`
	DeletionDate *time.Time `json:"deletionDate,omitempty"`
}

// PointStateEvent builds the event announcing that p entered state (for site; empty when the
// server has none), detail-type "Recovery Point State Change" with resources [vault, ID].
// ID, Version and Time are left for Tx.AppendEvent to fill.
func PointStateEvent(p *Point, state PointState, site string) *Event {
	d := PointDetail{
		PointID: p.ID, Status: state, Vault: p.Vault, Resource: p.Resource, Kind: p.Kind,
		Host: p.Host, Time: p.Time, SizeBytes: strconv.FormatInt(p.SizeBytes, 10),
		Parent: p.Parent, CopiedFrom: p.CopiedFrom, CreationDate: p.CreatedAt, DeletionDate: p.DeletedAt,
	}
	return &Event{Source: EventSource, DetailType: DetailPoint, Site: site,
		Resources: []string{p.Vault, p.ID}, Detail: mustJSON(d)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("catalog: marshal event detail: " + err.Error()) // plain structs always marshal
	}
	return b
}

// UpdateJobWithEvent updates a job and, when its state changed, appends the event mk builds
// from the updated job (JobStateEvent with the site, usually), all in tx: the event is
// written if and only if the change commits. mk may return nil for no event. Unless u sets
// IfState, the update is conditional on the state read first, so a concurrent change fails
// with errs.Conflict. Errors are those of Tx.GetJob, Tx.UpdateJob and Tx.AppendEvent.
func UpdateJobWithEvent(ctx context.Context, tx Tx, id string, u JobUpdate, mk func(*Job) *Event) (*Job, error) {
	before, err := tx.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.IfState == nil {
		// A concurrent transaction may change the state between GetJob and UpdateJob; the
		// condition turns that into errs.Conflict rather than an event for a change this
		// transaction did not make.
		u.IfState = &before.State
	}
	j, err := tx.UpdateJob(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if j.State != before.State {
		if e := mk(j); e != nil {
			if err := tx.AppendEvent(ctx, e); err != nil {
				return nil, err
			}
		}
	}
	return j, nil
}

// CreateJobWithEvent creates a job and appends the event mk builds from it in tx (see
// UpdateJobWithEvent). Errors are those of Tx.CreateJob and Tx.AppendEvent.
func CreateJobWithEvent(ctx context.Context, tx Tx, j *Job, mk func(*Job) *Event) error {
	if err := tx.CreateJob(ctx, j); err != nil {
		return err
	}
	if e := mk(j); e != nil {
		return tx.AppendEvent(ctx, e)
	}
	return nil
}
