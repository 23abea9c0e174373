package client

import (
	"bytes"
	"context"
	"encoding/json"
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

// Rules lists the event rules, the configuration's and those put through the API, by
// name (GET /v1/rules).
func (c *Client) Rules(ctx context.Context) ([]api.RuleInfo, error) {
	var out []api.RuleInfo
	if err := c.doRules(ctx, "GET", "/v1/rules", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// doRules is do for the rule routes: a pattern's numbers are decoded as json.Number, so
// that they keep every digit when written out again.
func (c *Client) doRules(ctx context.Context, method, path string, body, out any) error {
	var data []byte
	if err := c.do(ctx, method, path, nil, body, &data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return c.badResponse(method+" "+path, err)
	}
	return nil
}

// Rule returns one event rule (GET /v1/rules/{name}); errs.NotFound when there is none.
func (c *Client) Rule(ctx context.Context, name string) (*api.RuleInfo, error) {
	var out api.RuleInfo
	return &out, c.doRules(ctx, "GET", "/v1/rules/"+url.PathEscape(name), nil, &out)
}

// PutRule creates or replaces the event rule name with spec, a rule of the
// configuration's shape as JSON (PUT /v1/rules/{name}). errs.Invalid for a rule that does
// not compile, errs.Conflict for a rule of the server's configuration. Needs an admin
// token.
func (c *Client) PutRule(ctx context.Context, name string, spec json.RawMessage) (*api.RuleInfo, error) {
	var out api.RuleInfo
	return &out, c.doRules(ctx, "PUT", "/v1/rules/"+url.PathEscape(name), spec, &out)
}

// DeleteRule deletes an event rule put through the API (DELETE /v1/rules/{name}).
// errs.NotFound when none is stored, errs.Conflict for a rule of the server's
// configuration. Needs an admin token.
func (c *Client) DeleteRule(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/rules/"+url.PathEscape(name), nil, nil, nil)
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
