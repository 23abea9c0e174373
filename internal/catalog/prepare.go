package catalog

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// The methods in this file hold the rules every Store implementation applies, so that all of
// them fill the same defaults and refuse the same records.

// Micro returns t in UTC truncated to the microsecond: the precision the catalog stores.
func Micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func microPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	m := Micro(*t)
	return &m
}

// validName refuses names a person could not type back: empty, over 256 bytes, or holding
// control characters.
func validName(op, what, s string) error {
	if s == "" {
		return errs.Errorf(op, errs.Invalid, "%s is empty", what)
	}
	if len(s) > 256 {
		return errs.Errorf(op, errs.Invalid, "%s %.40q… is longer than 256 bytes", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errs.Errorf(op, errs.Invalid, "%s %q holds a control character", what, s)
		}
	}
	return nil
}

func validObject(op, what string, raw json.RawMessage) error {
	if !json.Valid(raw) || strings.TrimLeft(string(raw), " \t\r\n")[0] != '{' {
		return errs.Errorf(op, errs.Invalid, "%s is not a JSON object: %.60q", what, raw)
	}
	return nil
}

// Prepare fills a new job's defaults (ID from NewID(now), State CREATED, CreatedAt now),
// normalizes its times (Micro) and validates it: errs.Invalid for an unknown kind, a state
// other than CREATED or PENDING, negative counters or Params that are not a JSON object.
func (j *Job) Prepare(now time.Time) error {
	const op = "catalog.CreateJob"
	if j.ID == "" {
		j.ID = NewID(now)
	}
	if err := validName(op, "job ID", j.ID); err != nil {
		return err
	}
	if !j.Kind.Valid() {
		return errs.Errorf(op, errs.Invalid, "job %s: kind %q is not one of BACKUP, COPY, RESTORE, VERIFY, PRUNE", j.ID, j.Kind)
	}
	if j.State == "" {
		j.State = StateCreated
	}
	if j.State != StateCreated && j.State != StatePending {
		return errs.Errorf(op, errs.Invalid, "job %s: a new job is CREATED or PENDING, not %q", j.ID, j.State)
	}
	if j.Attempt < 0 || j.BytesDone < 0 || j.BytesTotal < 0 || j.FilesDone < 0 {
		return errs.Errorf(op, errs.Invalid, "job %s: negative attempt or counter", j.ID)
	}
	if len(j.Params) > 0 {
		if err := validObject(op, "job "+j.ID+" params", j.Params); err != nil {
			return err
		}
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	j.CreatedAt = Micro(j.CreatedAt)
	j.ScheduledFor, j.StartBy, j.CompleteBy = microPtr(j.ScheduledFor), microPtr(j.StartBy), microPtr(j.CompleteBy)
	j.StartedAt, j.FinishedAt = microPtr(j.StartedAt), microPtr(j.FinishedAt)
	return nil
}

// Apply applies u to j at time now. IfState, when set, must be j's state. A state change must be one CanTransition allows;
// setting the state the job already has is no change. Entering RUNNING sets StartedAt and
// entering a terminal state sets FinishedAt to now unless u or the job sets them. A job in a
// terminal state refuses every update. Errors: errs.Conflict for a forbidden transition, a
// finished job or a job not in IfState, errs.Invalid for an unknown state or a negative counter; j is unchanged then.
func (u JobUpdate) Apply(j *Job, now time.Time) error {
	const op = "catalog.UpdateJob"
	if j.State.Terminal() {
		return errs.Errorf(op, errs.Conflict, "job %s is %s: a finished job does not change", j.ID, j.State).
			WithHint("create a new job to run it again")
	}
	if u.IfState != nil && *u.IfState != j.State {
		return errs.Errorf(op, errs.Conflict, "job %s is %s, not %s", j.ID, j.State, *u.IfState).
			WithHint("another worker or server changed it first; read it again")
	}
	next := *j
	if u.State != nil && *u.State != j.State {
		to := *u.State
		if !to.Valid() {
			return errs.Errorf(op, errs.Invalid, "job %s: unknown state %q", j.ID, to)
		}
		if !CanTransition(j.State, to) {
			return errs.Errorf(op, errs.Conflict, "job %s: cannot go from %s to %s", j.ID, j.State, to)
		}
		next.State = to
		if to == StateRunning && next.StartedAt == nil && u.StartedAt == nil {
			next.StartedAt = &now
		}
		if to.Terminal() && next.FinishedAt == nil && u.FinishedAt == nil {
			next.FinishedAt = &now
		}
	}
	if (u.Attempt != nil && *u.Attempt < 0) || (u.BytesDone != nil && *u.BytesDone < 0) ||
		(u.BytesTotal != nil && *u.BytesTotal < 0) || (u.FilesDone != nil && *u.FilesDone < 0) {
		return errs.Errorf(op, errs.Invalid, "job %s: negative attempt or counter", j.ID)
	}
	setIf(&next.Host, u.Host)
	setIf(&next.Attempt, u.Attempt)
	setIf(&next.BytesDone, u.BytesDone)
	setIf(&next.BytesTotal, u.BytesTotal)
	setIf(&next.FilesDone, u.FilesDone)
	setIf(&next.PointID, u.PointID)
	setIf(&next.CreatedResource, u.CreatedResource)
	setIf(&next.Error, u.Error)
	if u.StartedAt != nil {
		next.StartedAt = u.StartedAt
	}
	if u.FinishedAt != nil {
		next.FinishedAt = u.FinishedAt
	}
	if u.CompleteBy != nil {
		next.CompleteBy = u.CompleteBy
	}
	if u.HeartbeatAt != nil {
		next.HeartbeatAt = u.HeartbeatAt
	}
	next.StartedAt, next.FinishedAt = microPtr(next.StartedAt), microPtr(next.FinishedAt)
	next.CompleteBy, next.HeartbeatAt = microPtr(next.CompleteBy), microPtr(next.HeartbeatAt)
	*j = next
	return nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Prepare fills a point's defaults (State AVAILABLE, CreatedAt now, DeletedAt now for a
// DELETED point), normalizes its times (Micro) and validates it: errs.Invalid for an ID
// that is not hex, an empty vault, resource or kind, a zero time, an unknown state, a
// negative size or half a range.
func (p *Point) Prepare(now time.Time) error {
	const op = "catalog.UpsertPoint"
	if err := validPointID(op, p.ID); err != nil {
		return err
	}
	if p.Vault == "" || p.Resource == "" || p.Kind == "" {
		return errs.Errorf(op, errs.Invalid, "point %s: vault, resource and kind must be set", p.ID)
	}
	if p.Time.IsZero() {
		return errs.Errorf(op, errs.Invalid, "point %s: time is not set", p.ID)
	}
	if p.State == "" {
		p.State = PointAvailable
	}
	if !p.State.Valid() {
		return errs.Errorf(op, errs.Invalid, "point %s: state %q is not AVAILABLE, DELETED or MISSING", p.ID, p.State)
	}
	if p.SizeBytes < 0 {
		return errs.Errorf(op, errs.Invalid, "point %s: negative size", p.ID)
	}
	if (p.RangeFrom == nil) != (p.RangeTo == nil) || (p.RangeFrom != nil && p.RangeTo.Before(*p.RangeFrom)) {
		return errs.Errorf(op, errs.Invalid, "point %s: a range needs both ends, from before to", p.ID)
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	if p.State == PointDeleted && p.DeletedAt == nil {
		p.DeletedAt = &now
	}
	p.Time, p.CreatedAt = Micro(p.Time), Micro(p.CreatedAt)
	p.RangeFrom, p.RangeTo, p.DeletedAt = microPtr(p.RangeFrom), microPtr(p.RangeTo), microPtr(p.DeletedAt)
	return nil
}

func validPointID(op, id string) error {
	if id == "" || len(id) > 128 {
		return errs.Errorf(op, errs.Invalid, "point ID %.40q: want 1 to 128 hex digits", id)
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return errs.Errorf(op, errs.Invalid, "point ID %.40q is not lower-case hex", id)
	}
	return nil
}

// Cursor returns the position of p in a point listing, for PointFilter.After.
func (p *Point) Cursor() string {
	return strconv.FormatInt(Micro(p.Time).UnixMicro(), 10) + "." + p.ID
}

// ParsePointCursor decodes a PointFilter.After cursor into the point's time and ID.
// errs.Invalid when it is not one that Point.Cursor made.
func ParsePointCursor(c string) (time.Time, string, error) {
	const op = "catalog.ListPoints"
	us, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || validPointID(op, id) != nil {
		return time.Time{}, "", errs.Errorf(op, errs.Invalid, "cursor %.60q is not a point cursor", c).
			WithHint("pass the cursor of the last point of the previous page unchanged")
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// Prepare fills an event's defaults (ID from NewID(now), Version "0", Time now, Detail {},
// Resources []), normalizes Time (Micro) and validates it: errs.Invalid for an empty source
// or detail-type or a detail that is not a JSON object.
func (e *Event) Prepare(now time.Time) error {
	const op = "catalog.AppendEvent"
	if e.ID == "" {
		e.ID = NewID(now)
	}
	if err := validName(op, "event ID", e.ID); err != nil {
		return err
	}
	if e.Version == "" {
		e.Version = "0"
	}
	if e.Source == "" || e.DetailType == "" {
		return errs.Errorf(op, errs.Invalid, "event %s: source and detail-type must be set", e.ID)
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = Micro(e.Time)
	e.DispatchedAt = microPtr(e.DispatchedAt)
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	}
	if err := validObject(op, "event "+e.ID+" detail", e.Detail); err != nil {
		return err
	}
	if e.Resources == nil {
		e.Resources = []string{}
	}
	return nil
}

// Validate checks a filter's limit and time bounds: errs.Invalid for a negative limit or
// Until not after Since.
func (f JobFilter) Validate() error {
	return validateBounds("catalog.ListJobs", f.Limit, f.Since, f.Until)
}

// Validate checks a filter's limit, time bounds and cursor (errs.Invalid).
func (f PointFilter) Validate() error {
	if f.After != "" {
		if _, _, err := ParsePointCursor(f.After); err != nil {
			return err
		}
	}
	return validateBounds("catalog.ListPoints", f.Limit, f.Since, f.Until)
}

// Validate checks a filter's limit and time bounds (errs.Invalid).
func (f EventFilter) Validate() error {
	return validateBounds("catalog.ListEvents", f.Limit, f.Since, f.Until)
}

func validateBounds(op string, limit int, since, until *time.Time) error {
	if limit < 0 {
		return errs.Errorf(op, errs.Invalid, "negative limit %d", limit)
	}
	if since != nil && until != nil && !until.After(*since) {
		return errs.Errorf(op, errs.Invalid, "until %s is not after since %s",
			until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	return nil
}
