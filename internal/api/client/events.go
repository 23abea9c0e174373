package client

import (
	"context"
	"net/url"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/events/intake"
)

// PutEvents sends outside events (POST /v1/events), body being a PutEvents request; the
// answer says which entries were refused. Needs an operator token.
func (c *Client) PutEvents(ctx context.Context, body any) (*intake.Response, error) {
	var out intake.Response
	return &out, c.do(ctx, "POST", "/v1/events", nil, body, &out)
}

// ReplayEvents sends an archived window through the rules again (POST /v1/events/replay).
func (c *Client) ReplayEvents(ctx context.Context, req api.ReplayRequest) (*api.ReplayResult, error) {
	var out api.ReplayResult
	return &out, c.do(ctx, "POST", "/v1/events/replay", nil, req, &out)
}

// DeadLetters lists one page of dead letters, newest first (GET /v1/events/dead-letters);
// rule filters when not empty.
func (c *Client) DeadLetters(ctx context.Context, rule string, limit int, after string) (*api.List[*catalog.Delivery], error) {
	v := url.Values{}
	set(v, "rule", rule)
	setInt(v, "limit", limit)
	set(v, "after", after)
	var out api.List[*catalog.Delivery]
	return &out, c.do(ctx, "GET", "/v1/events/dead-letters", v, nil, &out)
}

// Rules lists the event rules (GET /v1/rules).
func (c *Client) Rules(ctx context.Context) ([]api.RuleInfo, error) {
	var out []api.RuleInfo
	if err := c.do(ctx, "GET", "/v1/rules", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Incidents lists one page of incidents, newest first (GET /v1/incidents); status is
// open, closed or "" for both.
func (c *Client) Incidents(ctx context.Context, status string, limit int, after string) (*api.List[*catalog.Incident], error) {
	v := url.Values{}
	set(v, "status", status)
	setInt(v, "limit", limit)
	set(v, "after", after)
	var out api.List[*catalog.Incident]
	return &out, c.do(ctx, "GET", "/v1/incidents", v, nil, &out)
}

// CloseIncident closes an open incident (POST /v1/incidents/{id}/close).
func (c *Client) CloseIncident(ctx context.Context, id string) (*catalog.Incident, error) {
	var out catalog.Incident
	return &out, c.do(ctx, "POST", "/v1/incidents/"+url.PathEscape(id)+"/close", nil, nil, &out)
}

// Alarms lists every alarm's state (GET /v1/alarms).
func (c *Client) Alarms(ctx context.Context) ([]alarm.Status, error) {
	var out []alarm.Status
	if err := c.do(ctx, "GET", "/v1/alarms", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}
