package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Agents hands the jobs of data hosts to the agents running there (`rewind agent`). Bodies
// and answers are JSON documents the implementation defines (the job queue's AgentWork,
// AgentProgress and AgentResult): the API checks only that they are JSON objects of a
// bounded size. Methods are safe for concurrent use and do not retry.
type Agents interface {
	// Claim claims the next job of host and returns its work, or nil when there is none.
	// errs.Invalid for a host that runs no agent jobs.
	Claim(ctx context.Context, host string) (json.RawMessage, error)
	// Heartbeat records the agent's progress on job id. errs.Conflict when the job is no
	// longer the agent's (canceled, taken back, ended): the agent must stop.
	Heartbeat(ctx context.Context, host, id string, progress json.RawMessage) error
	// Finish records how the agent's run of job id ended. errs.Conflict as Heartbeat,
	// errs.Invalid for a result that does not fit the job.
	Finish(ctx context.Context, host, id string, result json.RawMessage) error
}

func (s *Server) agentClaim(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	host := r.PathValue("host")
	if err := checkName("api.agentClaim", "host", host); err != nil {
		return err
	}
	if s.agents == nil {
		return errs.Errorf("api.agentClaim", errs.Unavailable, "this server runs no agent jobs")
	}
	work, err := s.agents.Claim(r.Context(), host)
	if err != nil {
		return err
	}
	if work == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(work)
	return err
}

func (s *Server) agentHeartbeat(w http.ResponseWriter, r *http.Request) error {
	return s.agentReport(w, r, "api.agentHeartbeat", func(ctx context.Context, host, id string, body json.RawMessage) error {
		return s.agents.Heartbeat(ctx, host, id, body)
	})
}

func (s *Server) agentFinish(w http.ResponseWriter, r *http.Request) error {
	return s.agentReport(w, r, "api.agentFinish", func(ctx context.Context, host, id string, body json.RawMessage) error {
		return s.agents.Finish(ctx, host, id, body)
	})
}

func (s *Server) agentReport(w http.ResponseWriter, r *http.Request, op string, fn func(context.Context, string, string, json.RawMessage) error) error {
	if err := noQuery(r); err != nil {
		return err
	}
	host, id := r.PathValue("host"), r.PathValue("id")
	if err := checkName(op, "host", host); err != nil {
		return err
	}
	if err := checkName(op, "job", id); err != nil {
		return err
	}
	if s.agents == nil {
		return errs.Errorf(op, errs.Unavailable, "this server runs no agent jobs")
	}
	body, err := rawObject(op, r.Body)
	if err != nil {
		return err
	}
	if err := fn(r.Context(), host, id, body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rawObject reads a body that must be one JSON object of at most MaxBodySize bytes.
func rawObject(op string, r io.Reader) (json.RawMessage, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	if len(data) > MaxBodySize {
		return nil, errs.Errorf(op, errs.Invalid, "the request body is larger than %d bytes", MaxBodySize)
	}
	data = bytes.TrimSpace(data)
	if !utf8.Valid(data) || len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return nil, errs.Errorf(op, errs.Invalid, "the request body is not one JSON object").
			WithHint("send the agent's progress or result as a JSON object; see GET /v1/openapi.yaml")
	}
	return data, nil
}
