package client

import (
	"context"
	"encoding/json"
	"net/url"
)

// ClaimAgentJob asks for the next job of host (POST /v1/agents/{host}/claim) and decodes
// its work into work; it reports false when no job waits. Needs an agent (or admin) token.
func (c *Client) ClaimAgentJob(ctx context.Context, host string, work any) (bool, error) {
	var data []byte
	if err := c.do(ctx, "POST", "/v1/agents/"+url.PathEscape(host)+"/claim", nil, nil, &data); err != nil {
		return false, err
	}
	if len(data) == 0 {
		return false, nil // 204: nothing to do
	}
	if err := json.Unmarshal(data, work); err != nil {
		return false, c.badResponse("POST /v1/agents/{host}/claim", err)
	}
	return true, nil
}

// AgentHeartbeat reports that host's agent still runs job id, with progress. An
// errs.Conflict means the job is no longer the agent's: stop working on it.
func (c *Client) AgentHeartbeat(ctx context.Context, host, id string, progress any) error {
	return c.do(ctx, "POST", "/v1/agents/"+url.PathEscape(host)+"/jobs/"+url.PathEscape(id)+"/heartbeat", nil, progress, nil)
}

// FinishAgentJob reports how host's agent's run of job id ended.
func (c *Client) FinishAgentJob(ctx context.Context, host, id string, result any) error {
	return c.do(ctx, "POST", "/v1/agents/"+url.PathEscape(host)+"/jobs/"+url.PathEscape(id)+"/finish", nil, result, nil)
}
