package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// MaxResponseSize bounds how much of a response body the client reads.
const MaxResponseSize = 64 << 20 // bytes

// Client calls one Rewind server. Safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client for the server at baseURL ("http://127.0.0.1:8420") that sends
// token (none when empty). httpClient may be nil for a client with a 60 s timeout.
// errs.Invalid for a URL that is not http(s)://host[:port].
func New(baseURL, token string, httpClient *http.Client) (*Client, error) {
	const op = "client.New"
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.Errorf(op, errs.Invalid, "server URL %q is not http(s)://host[:port]", baseURL).
			WithHint("pass --server http://127.0.0.1:8420 or set REWIND_SERVER")
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: u, token: token, http: httpClient}, nil
}

// do sends a request and decodes a 2xx JSON response into out (unless nil or raw). Errors:
// the server's error rebuilt (see decodeError), errs.Unavailable when the server cannot
// be reached, errs.Canceled when ctx ends.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	op := method + " " + path
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errs.E(op, errs.Canceled, ctx.Err())
		}
		return errs.E(op, errs.Unavailable, err).WithHint("check that rewind server runs at " + c.base.String())
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize))
	if err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("reading the response: %w", err))
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(op, resp.StatusCode, data)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return c.badResponse(op, err)
	}
	return nil
}

func (c *Client) badResponse(op string, err error) error {
	return errs.E(op, errs.Internal, fmt.Errorf("the server's response is not the JSON expected: %w", err)).
		WithHint("the server may run another version of Rewind")
}

// decodeError rebuilds the *errs.Error of an error response: Kind from its code (or from
// the status when the body is not an API error), message and hint as sent.
func decodeError(op string, st int, data []byte) error {
	var b api.ErrorBody
	if err := json.Unmarshal(data, &b); err == nil && b.Error.Code != "" {
		e := errs.E(op, api.KindOfCode(b.Error.Code), errors.New(b.Error.Message))
		if b.Error.Hint != "" {
			e = e.WithHint(b.Error.Hint)
		}
		return e
	}
	kind := errs.Other
	switch {
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		kind = errs.Unauthorized
	case st == http.StatusNotFound:
		kind = errs.NotFound
	case st == http.StatusBadRequest:
		kind = errs.Invalid
	case st == http.StatusBadGateway || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout:
		kind = errs.Unavailable
	}
	snippet := strings.TrimSpace(string(data))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	return errs.Errorf(op, kind, "HTTP %d: %s", st, snippet).
		WithHint("is --server the URL of a Rewind server?")
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var h api.Health
	return &h, c.do(ctx, "GET", "/v1/health", nil, nil, &h)
}

// OpenAPI returns the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, "GET", "/v1/openapi.yaml", nil, nil, &b)
}

// Metrics returns the server's Prometheus metrics in the text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, "GET", "/metrics", nil, nil, &b)
}

// Sites lists the sites.
func (c *Client) Sites(ctx context.Context) ([]catalog.Site, error) {
	var l api.List[catalog.Site]
	return l.Items, c.do(ctx, "GET", "/v1/sites", nil, nil, &l)
}

// Vaults lists the vaults.
func (c *Client) Vaults(ctx context.Context) ([]catalog.Vault, error) {
	var l api.List[catalog.Vault]
	return l.Items, c.do(ctx, "GET", "/v1/vaults", nil, nil, &l)
}

// Resources lists the resources.
func (c *Client) Resources(ctx context.Context) ([]catalog.Resource, error) {
	var l api.List[catalog.Resource]
	return l.Items, c.do(ctx, "GET", "/v1/resources", nil, nil, &l)
}

// Plans lists the plans with each rule's next run.
func (c *Client) Plans(ctx context.Context) ([]api.Plan, error) {
	var l api.List[api.Plan]
	return l.Items, c.do(ctx, "GET", "/v1/plans", nil, nil, &l)
}

// JobQuery filters GET /v1/jobs; empty fields do not filter.
type JobQuery struct {
	Kind, State, Resource, Vault string
	Since                        time.Time
	Limit                        int    // 0: the server's default
	After                        string // the Next of the previous page
}

func (q JobQuery) values() url.Values {
	v := url.Values{}
	set(v, "kind", q.Kind)
	set(v, "state", q.State)
	set(v, "resource", q.Resource)
	set(v, "vault", q.Vault)
	setTime(v, "since", q.Since)
	setInt(v, "limit", q.Limit)
	set(v, "after", q.After)
	return v
}

// Jobs lists one page of jobs, newest first.
func (c *Client) Jobs(ctx context.Context, q JobQuery) (*api.List[*catalog.Job], error) {
	var l api.List[*catalog.Job]
	return &l, c.do(ctx, "GET", "/v1/jobs", q.values(), nil, &l)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (*catalog.Job, error) {
	var j catalog.Job
	return &j, c.do(ctx, "GET", "/v1/jobs/"+url.PathEscape(id), nil, nil, &j)
}

// StartJob starts a job.
func (c *Client) StartJob(ctx context.Context, req api.JobRequest) (*catalog.Job, error) {
	var j catalog.Job
	return &j, c.do(ctx, "POST", "/v1/jobs", nil, req, &j)
}

// CancelJob cancels a job.
func (c *Client) CancelJob(ctx context.Context, id string) (*catalog.Job, error) {
	var j catalog.Job
	return &j, c.do(ctx, "POST", "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &j)
}

// PointQuery filters GET /v1/points; empty fields do not filter.
type PointQuery struct {
	Resource, Vault, State string
	Limit                  int
	After                  string
}

// Points lists one page of points, newest first.
func (c *Client) Points(ctx context.Context, q PointQuery) (*api.List[*catalog.Point], error) {
	v := url.Values{}
	set(v, "resource", q.Resource)
	set(v, "vault", q.Vault)
	set(v, "state", q.State)
	setInt(v, "limit", q.Limit)
	set(v, "after", q.After)
	var l api.List[*catalog.Point]
	return &l, c.do(ctx, "GET", "/v1/points", v, nil, &l)
}

// Point returns one point.
func (c *Client) Point(ctx context.Context, id string) (*catalog.Point, error) {
	var p catalog.Point
	return &p, c.do(ctx, "GET", "/v1/points/"+url.PathEscape(id), nil, nil, &p)
}

// EventQuery filters GET /v1/events; zero fields do not filter.
type EventQuery struct {
	Since, Until time.Time
	Source       string
	Limit        int
	After        string
}

// Events lists one page of events, oldest first.
func (c *Client) Events(ctx context.Context, q EventQuery) (*api.List[*catalog.Event], error) {
	v := url.Values{}
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	set(v, "source", q.Source)
	setInt(v, "limit", q.Limit)
	set(v, "after", q.After)
	var l api.List[*catalog.Event]
	return &l, c.do(ctx, "GET", "/v1/events", v, nil, &l)
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setInt(v url.Values, k string, n int) {
	if n != 0 {
		v.Set(k, strconv.Itoa(n))
	}
}

func setTime(v url.Values, k string, t time.Time) {
	if !t.IsZero() {
		v.Set(k, t.UTC().Format(time.RFC3339Nano))
	}
}
