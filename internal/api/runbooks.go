package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// Runbooks runs durable runbook executions; the orchestrate service implements it. The
// API reads runbooks, executions, their history and task tokens from the catalog itself
// and goes through Runbooks only to change them. Methods are safe for concurrent use and
// do not retry.
type Runbooks interface {
	// PutRunbook validates a definition and stores it as runbook name from source
	// (catalog.RunbookFromAPI here). errs.Invalid, listing every problem, for a definition
	// that cannot run.
	PutRunbook(ctx context.Context, name string, def []byte, source string) (*catalog.Runbook, error)
	// Start starts an execution of runbook with input, named name (its ID when empty).
	// errs.NotFound for an unknown runbook, errs.Invalid for bad input, errs.Unavailable
	// while the server shuts down.
	Start(ctx context.Context, runbook string, input json.RawMessage, name string) (*catalog.Execution, error)
	// Stop aborts a RUNNING execution with cause. errs.NotFound, errs.Conflict when it
	// already ended.
	Stop(ctx context.Context, id, cause string) (*catalog.Execution, error)
	// Approve completes the task waiting for token with output. errs.NotFound for an
	// unknown token, errs.Conflict when it was decided already or its task or execution
	// ended.
	Approve(ctx context.Context, token string, output json.RawMessage) (*catalog.TaskToken, error)
	// Deny fails the task waiting for token with errorName (Rewind.Denied when empty) and
	// cause. Errors are those of Approve.
	Deny(ctx context.Context, token, errorName, cause string) (*catalog.TaskToken, error)
}

// MaxDefinitionSize is the largest runbook definition PUT /v1/runbooks/{name} accepts.
const MaxDefinitionSize = 256 << 10 // bytes

// MaxCauseLength bounds the cause of a denial or a stop, as Step Functions bounds causes.
const MaxCauseLength = 32768 // bytes

// StartExecution is the body of POST /v1/runbooks/{name}/executions. Both fields are
// optional: Input defaults to {} and Name to the execution's ID.
type StartExecution struct {
	Input json.RawMessage `json:"input,omitempty"`
	Name  string          `json:"name,omitempty"`
}

// StopExecution is the optional body of POST /v1/executions/{id}/stop.
type StopExecution struct {
	Cause string `json:"cause,omitempty"`
}

// Approval is the optional body of POST /v1/tokens/{token}/approve: Output becomes the
// waiting task's result ({} when absent).
type Approval struct {
	Output json.RawMessage `json:"output,omitempty"`
}

// Denial is the body of POST /v1/tokens/{token}/deny: the waiting task fails with Error
// (Rewind.Denied when empty), which a Catch or Retry can match, and Cause, the reason.
type Denial struct {
	Error string `json:"error,omitempty"`
	Cause string `json:"cause"`
}

// HistoryEntry is one recorded transition of an execution: the catalog's history event
// with the state, error and cause read out of the engine's event for display.
type HistoryEntry struct {
	Seq   int64           `json:"seq"`
	Type  string          `json:"type"`
	Time  time.Time       `json:"time"`
	State string          `json:"state,omitempty"`
	Error string          `json:"error,omitempty"`
	Cause string          `json:"cause,omitempty"`
	Event json.RawMessage `json:"event"`
}

// ExecutionDetail is the body of GET /v1/executions/{id}: the execution, its history in
// order and the task tokens its .waitForTaskToken tasks handed out (unresolved ones wait
// for approve or deny).
type ExecutionDetail struct {
	*catalog.Execution
	History []HistoryEntry       `json:"history"`
	Tokens  []*catalog.TaskToken `json:"tokens"`
}

// TokenDetail is the body of GET /v1/tokens/{token}: what the token waits for.
type TokenDetail struct {
	*catalog.TaskToken
	Runbook         string                  `json:"runbook,omitempty"`
	ExecutionName   string                  `json:"executionName"`
	ExecutionStatus catalog.ExecutionStatus `json:"executionStatus"`
}

// execNameRE is the rule for execution names: the engine allows 80 characters; the
// characters are those of every other Rewind name, so that names are safe in paths and
// shells.
var execNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// idRE accepts execution IDs and task tokens as the engine makes them (hex), with room for
// other printable identifiers.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$`)

func checkID(op, what, v string) error {
	if !idRE.MatchString(v) {
		return errs.Errorf(op, errs.Invalid, "%s %.70q is not valid", what, v).
			WithHint("copy the " + what + " from 'rewind executions' or 'rewind execution show'")
	}
	return nil
}

func (s *Server) needRunbooks(op string) error {
	if s.runbooks == nil {
		return errs.Errorf(op, errs.Unavailable, "this server runs no runbooks")
	}
	return nil
}

// optionalBody decodes a body that may be empty (then v is left as is).
func optionalBody(op string, r *http.Request, w http.ResponseWriter, v any) error {
	if err := checkContentType(op, r); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(http.MaxBytesReader(w, r.Body, MaxBodySize+1), MaxBodySize+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.Errorf(op, errs.Invalid, "the request body is larger than %d bytes", MaxBodySize)
		}
		return errs.E(op, errs.Invalid, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeBody(op, bytes.NewReader(data), v)
}

func (s *Server) listRunbooks(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var out []*catalog.Runbook
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListRunbooks(r.Context()); return })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[*catalog.Runbook]{Items: nonNil(out)})
	return nil
}

func (s *Server) getRunbook(w http.ResponseWriter, r *http.Request) error {
	const op = "GET /v1/runbooks/{name}"
	if err := noQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := checkName(op, "runbook", name); err != nil {
		return err
	}
	var rb *catalog.Runbook
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { rb, err = tx.GetRunbook(r.Context(), name); return })
	if err != nil {
		return withHint(err, "GET /v1/runbooks lists the runbooks")
	}
	writeJSON(w, http.StatusOK, rb)
	return nil
}

// putRunbook stores a definition sent as JSON. A runbook read from the configuration
// directory is not replaced: the server would put the file's version back at its next
// start, silently undoing the change.
func (s *Server) putRunbook(w http.ResponseWriter, r *http.Request) error {
	const op = "PUT /v1/runbooks/{name}"
	if err := noQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := checkName(op, "runbook", name); err != nil {
		return err
	}
	if err := s.needRunbooks(op); err != nil {
		return err
	}
	if err := checkContentType(op, r); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(http.MaxBytesReader(w, r.Body, MaxDefinitionSize+1), MaxDefinitionSize+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.Errorf(op, errs.Invalid, "the definition is larger than %d bytes", MaxDefinitionSize)
		}
		return errs.E(op, errs.Invalid, err)
	}
	if len(data) > MaxDefinitionSize {
		return errs.Errorf(op, errs.Invalid, "the definition is larger than %d bytes", MaxDefinitionSize)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || !utf8.Valid(data) || data[0] != '{' || !json.Valid(data) {
		return errs.Errorf(op, errs.Invalid, "the request body is not one JSON object").
			WithHint("send the Amazon States Language definition as JSON: {\"StartAt\": …, \"States\": {…}}; 'rewind runbook put' converts YAML")
	}
	existed := false
	err = s.read(r.Context(), func(tx catalog.Tx) error {
		cur, err := tx.GetRunbook(r.Context(), name)
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		existed = true
		if cur.Source == catalog.RunbookFromConfig {
			return errs.Errorf(op, errs.Conflict, "runbook %s is read from the server's runbooks directory", name).
				WithHint("edit its file there and restart the server, or choose another name")
		}
		return nil
	})
	if err != nil {
		return err
	}
	rb, err := s.runbooks.PutRunbook(r.Context(), name, data, catalog.RunbookFromAPI)
	if err != nil {
		return err
	}
	st := http.StatusOK
	if !existed {
		st = http.StatusCreated
		w.Header().Set("Location", "/v1/runbooks/"+name)
	}
	writeJSON(w, st, rb)
	return nil
}

func (s *Server) startExecution(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/runbooks/{name}/executions"
	if err := noQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := checkName(op, "runbook", name); err != nil {
		return err
	}
	if err := s.needRunbooks(op); err != nil {
		return err
	}
	var req StartExecution
	if err := optionalBody(op, r, w, &req); err != nil {
		return err
	}
	if req.Name != "" && !execNameRE.MatchString(req.Name) {
		return errs.Errorf(op, errs.Invalid, "execution name %.90q is not valid", req.Name).
			WithHint("names are 1 to 80 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if string(req.Input) == "null" {
		req.Input = nil
	}
	e, err := s.runbooks.Start(r.Context(), name, req.Input, req.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/executions/"+e.ID)
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request) error {
	q, err := newQuery(r, "status", "runbook", "limit", "after")
	if err != nil {
		return err
	}
	f := catalog.ExecutionFilter{Runbook: q.name("runbook"), Limit: q.limit(), After: q.cursor(), Newest: true}
	if st := q.str("status"); st != nil && q.err == nil {
		status := catalog.ExecutionStatus(strings.ToUpper(*st))
		if !status.Valid() {
			return errs.Errorf(q.op, errs.Invalid, "status=%.40q is not an execution status", *st).
				WithHint("one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED")
		}
		f.Status = &status
	}
	if q.err != nil {
		return q.err
	}
	var out []*catalog.Execution
	err = s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListExecutions(r.Context(), f); return })
	if err != nil {
		return withHint(err, "pass the \"next\" value of the previous page as after")
	}
	page := List[*catalog.Execution]{Items: nonNil(out)}
	if len(out) == f.Limit {
		page.Next = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// eventFields are the fields of a runbook engine event shown beside its type.
type eventFields struct {
	State string `json:"state"`
	Error string `json:"error"`
	Cause string `json:"cause"`
}

func (s *Server) getExecution(w http.ResponseWriter, r *http.Request) error {
	const op = "GET /v1/executions/{id}"
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := checkID(op, "execution ID", id); err != nil {
		return err
	}
	ctx := r.Context()
	d := ExecutionDetail{History: []HistoryEntry{}, Tokens: []*catalog.TaskToken{}}
	var hist []catalog.HistoryEvent
	err := s.read(ctx, func(tx catalog.Tx) error {
		var err error
		if d.Execution, err = tx.GetExecution(ctx, id); err != nil {
			return err
		}
		if hist, err = tx.ListHistory(ctx, id); err != nil {
			return err
		}
		toks, err := tx.ListTaskTokens(ctx, catalog.TaskTokenFilter{Execution: &id})
		d.Tokens = nonNil(toks)
		return err
	})
	if err != nil {
		return withHint(err, "GET /v1/executions lists the executions")
	}
	for _, h := range hist {
		var f eventFields
		// The event was written by the engine; a field that does not decode is shown empty
		// rather than hiding the whole history.
		_ = json.Unmarshal(h.Event, &f)
		d.History = append(d.History, HistoryEntry{Seq: h.Seq, Type: h.Type, Time: h.Time, State: f.State,
			Error: f.Error, Cause: f.Cause, Event: h.Event})
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) stopExecution(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/executions/{id}/stop"
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := checkID(op, "execution ID", id); err != nil {
		return err
	}
	if err := s.needRunbooks(op); err != nil {
		return err
	}
	var req StopExecution
	if err := optionalBody(op, r, w, &req); err != nil {
		return err
	}
	if err := checkCause(op, req.Cause); err != nil {
		return err
	}
	e, err := s.runbooks.Stop(r.Context(), id, req.Cause)
	if err != nil {
		return withHint(err, "GET /v1/executions lists the executions")
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request) error {
	const op = "GET /v1/tokens/{token}"
	if err := noQuery(r); err != nil {
		return err
	}
	token := r.PathValue("token")
	if err := checkID(op, "task token", token); err != nil {
		return err
	}
	d, err := s.tokenDetail(r.Context(), token)
	if err != nil {
		return withHint(err, "'rewind execution show ID' lists an execution's tokens")
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// tokenDetail reads a task token and the execution it belongs to.
func (s *Server) tokenDetail(ctx context.Context, token string) (TokenDetail, error) {
	var d TokenDetail
	err := s.read(ctx, func(tx catalog.Tx) error {
		var err error
		if d.TaskToken, err = tx.GetTaskToken(ctx, token); err != nil {
			return err
		}
		e, err := tx.GetExecution(ctx, d.TaskToken.Execution)
		if err != nil {
			return err
		}
		d.Runbook, d.ExecutionName, d.ExecutionStatus = e.Runbook, e.Name, e.Status
		return nil
	})
	return d, err
}

func (s *Server) approveToken(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/tokens/{token}/approve"
	if err := noQuery(r); err != nil {
		return err
	}
	token := r.PathValue("token")
	if err := checkID(op, "task token", token); err != nil {
		return err
	}
	if err := s.needRunbooks(op); err != nil {
		return err
	}
	var req Approval
	if err := optionalBody(op, r, w, &req); err != nil {
		return err
	}
	tk, err := s.runbooks.Approve(r.Context(), token, req.Output)
	if err != nil {
		return withHint(err, "'rewind execution show ID' lists an execution's open tokens")
	}
	writeJSON(w, http.StatusOK, tk)
	return nil
}

func (s *Server) denyToken(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/tokens/{token}/deny"
	if err := noQuery(r); err != nil {
		return err
	}
	token := r.PathValue("token")
	if err := checkID(op, "task token", token); err != nil {
		return err
	}
	if err := s.needRunbooks(op); err != nil {
		return err
	}
	if err := checkContentType(op, r); err != nil {
		return err
	}
	var req Denial
	if err := decodeBody(op, http.MaxBytesReader(w, r.Body, MaxBodySize), &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Cause) == "" {
		return errs.Errorf(op, errs.Invalid, "a denial needs field \"cause\": the reason, recorded in the execution's history").
			WithHint(`send {"cause": "the primary recovered; no failover"}`)
	}
	if err := checkCause(op, req.Cause); err != nil {
		return err
	}
	if req.Error != "" {
		if len(req.Error) > 256 || strings.HasPrefix(req.Error, "States.") || strings.ContainsFunc(req.Error, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			return errs.Errorf(op, errs.Invalid, "error name %.70q is not valid", req.Error).
				WithHint("an error name is up to 256 printable characters without spaces, not starting with \"States.\" (reserved); leave it out for Rewind.Denied")
		}
	}
	tk, err := s.runbooks.Deny(r.Context(), token, req.Error, req.Cause)
	if err != nil {
		return withHint(err, "'rewind execution show ID' lists an execution's open tokens")
	}
	writeJSON(w, http.StatusOK, tk)
	return nil
}

func checkCause(op, cause string) error {
	if len(cause) > MaxCauseLength {
		return errs.Errorf(op, errs.Invalid, "the cause is longer than %d bytes", MaxCauseLength)
	}
	return nil
}
