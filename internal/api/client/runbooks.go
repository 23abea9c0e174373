package client

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
)

// Runbooks lists the server's runbooks, by name, with their definitions.
func (c *Client) Runbooks(ctx context.Context) ([]*catalog.Runbook, error) {
	var l api.List[*catalog.Runbook]
	return l.Items, c.do(ctx, "GET", "/v1/runbooks", nil, nil, &l)
}

// Runbook returns one runbook with its definition.
func (c *Client) Runbook(ctx context.Context, name string) (*catalog.Runbook, error) {
	var rb catalog.Runbook
	return &rb, c.do(ctx, "GET", "/v1/runbooks/"+url.PathEscape(name), nil, nil, &rb)
}

// PutRunbook creates or replaces runbook name with a definition in JSON (see
// orchestrate.Normalize for YAML). Needs an admin token.
func (c *Client) PutRunbook(ctx context.Context, name string, definition json.RawMessage) (*catalog.Runbook, error) {
	var rb catalog.Runbook
	return &rb, c.do(ctx, "PUT", "/v1/runbooks/"+url.PathEscape(name), nil, definition, &rb)
}

// StartExecution starts an execution of runbook. Needs an operator token.
func (c *Client) StartExecution(ctx context.Context, runbook string, req api.StartExecution) (*catalog.Execution, error) {
	var e catalog.Execution
	return &e, c.do(ctx, "POST", "/v1/runbooks/"+url.PathEscape(runbook)+"/executions", nil, req, &e)
}

// ExecutionQuery filters GET /v1/executions; empty fields do not filter.
type ExecutionQuery struct {
	Status, Runbook string
	Limit           int    // 0: the server's default
	After           string // the Next of the previous page
}

// Executions lists one page of executions, newest first.
func (c *Client) Executions(ctx context.Context, q ExecutionQuery) (*api.List[*catalog.Execution], error) {
	v := url.Values{}
	set(v, "status", q.Status)
	set(v, "runbook", q.Runbook)
	setInt(v, "limit", q.Limit)
	set(v, "after", q.After)
	var l api.List[*catalog.Execution]
	return &l, c.do(ctx, "GET", "/v1/executions", v, nil, &l)
}

// Execution returns one execution with its history and task tokens.
func (c *Client) Execution(ctx context.Context, id string) (*api.ExecutionDetail, error) {
	var d api.ExecutionDetail
	return &d, c.do(ctx, "GET", "/v1/executions/"+url.PathEscape(id), nil, nil, &d)
}

// StopExecution aborts a running execution with cause (a default cause when empty).
// Needs an operator token.
func (c *Client) StopExecution(ctx context.Context, id, cause string) (*catalog.Execution, error) {
	var e catalog.Execution
	return &e, c.do(ctx, "POST", "/v1/executions/"+url.PathEscape(id)+"/stop", nil, api.StopExecution{Cause: cause}, &e)
}

// TaskToken returns what a task token waits for.
func (c *Client) TaskToken(ctx context.Context, token string) (*api.TokenDetail, error) {
	var d api.TokenDetail
	return &d, c.do(ctx, "GET", "/v1/tokens/"+url.PathEscape(token), nil, nil, &d)
}

// Approve completes the task waiting for token with output ({} when empty). Needs an
// operator token.
func (c *Client) Approve(ctx context.Context, token string, output json.RawMessage) (*catalog.TaskToken, error) {
	var tk catalog.TaskToken
	return &tk, c.do(ctx, "POST", "/v1/tokens/"+url.PathEscape(token)+"/approve", nil, api.Approval{Output: output}, &tk)
}

// Deny fails the task waiting for token with errorName (Rewind.Denied when empty) and
// cause. Needs an operator token.
func (c *Client) Deny(ctx context.Context, token, errorName, cause string) (*catalog.TaskToken, error) {
	var tk catalog.TaskToken
	return &tk, c.do(ctx, "POST", "/v1/tokens/"+url.PathEscape(token)+"/deny", nil, api.Denial{Error: errorName, Cause: cause}, &tk)
}
