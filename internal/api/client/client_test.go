package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/apitest"
	"github.com/rewind-dr/rewind/internal/api/client"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

const pointA = "aaaaaaaaaaaaaaaa"

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	env := apitest.New(t, true)
	env.AddPoint(t, pointA, "app-files", "main", apitest.Now.Add(-time.Hour), 42)
	c := newClient(t, env.URL+"/", apitest.OperatorToken)

	if h, err := c.Health(ctx); err != nil || h.Status != "ok" || !h.Auth {
		t.Errorf("Health: %+v %v", h, err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || !bytes.HasPrefix(doc, []byte("openapi:")) {
		t.Errorf("OpenAPI: %.20s %v", doc, err)
	}
	if m, err := c.Metrics(ctx); err != nil || !bytes.Contains(m, []byte("rewind_rpo_exposure_seconds")) {
		t.Errorf("Metrics: %v", err)
	}
	if s, err := c.Sites(ctx); err != nil || len(s) != 2 {
		t.Errorf("Sites: %+v %v", s, err)
	}
	if v, err := c.Vaults(ctx); err != nil || len(v) != 2 || v[1].Name != "offsite" {
		t.Errorf("Vaults: %+v %v", v, err)
	}
	if r, err := c.Resources(ctx); err != nil || len(r) != 2 {
		t.Errorf("Resources: %+v %v", r, err)
	}
	if p, err := c.Plans(ctx); err != nil || len(p) != 1 || p[0].Rules[0].NextRun == nil {
		t.Errorf("Plans: %+v %v", p, err)
	}
	j, err := c.StartJob(ctx, api.JobRequest{Kind: "backup", Resource: "app-files", Vault: "main"})
	if err != nil || j.State != catalog.StatePending || j.ID == "" {
		t.Fatalf("StartJob: %+v %v", j, err)
	}
	if got, err := c.Job(ctx, j.ID); err != nil || got.ID != j.ID {
		t.Errorf("Job: %+v %v", got, err)
	}
	page, err := c.Jobs(ctx, client.JobQuery{Kind: "backup", State: "pending", Resource: "app-files", Vault: "main",
		Since: apitest.Now.Add(-time.Minute), Limit: 10})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != j.ID {
		t.Errorf("Jobs: %+v %v", page, err)
	}
	if got, err := c.CancelJob(ctx, j.ID); err != nil || got.State != catalog.StateAborted {
		t.Errorf("CancelJob: %+v %v", got, err)
	}
	pts, err := c.Points(ctx, client.PointQuery{Resource: "app-files", Vault: "main", State: "AVAILABLE", Limit: 1})
	if err != nil || len(pts.Items) != 1 || pts.Next == "" {
		t.Fatalf("Points: %+v %v", pts, err)
	}
	if more, err := c.Points(ctx, client.PointQuery{Limit: 1, After: pts.Next}); err != nil || len(more.Items) != 0 {
		t.Errorf("Points after the last: %+v %v", more, err)
	}
	if p, err := c.Point(ctx, pointA); err != nil || p.SizeBytes != 42 {
		t.Errorf("Point: %+v %v", p, err)
	}
	ev, err := c.Events(ctx, client.EventQuery{Since: apitest.Now.Add(-time.Hour), Until: apitest.Now.Add(time.Hour),
		Source: catalog.EventSource, Limit: 100})
	if err != nil || len(ev.Items) != 3 {
		t.Errorf("Events: %d %v", len(ev.Items), err)
	}
}

func TestErrorsRebuilt(t *testing.T) {
	ctx := context.Background()
	env := apitest.New(t, true)
	cases := []struct {
		name  string
		token string
		call  func(*client.Client) error
		kind  errs.Kind
		want  string
	}{
		{"not found", apitest.ViewerToken, func(c *client.Client) error { _, err := c.Job(ctx, "NOPE"); return err }, errs.NotFound, "NOPE"},
		{"invalid", apitest.OperatorToken, func(c *client.Client) error {
			_, err := c.StartJob(ctx, api.JobRequest{Kind: "backup"})
			return err
		}, errs.Invalid, `needs field "resource"`},
		{"forbidden", apitest.ViewerToken, func(c *client.Client) error { _, err := c.CancelJob(ctx, "X"); return err }, errs.Unauthorized, "needs operator"},
		{"no token", "", func(c *client.Client) error { _, err := c.Sites(ctx); return err }, errs.Unauthorized, "requires a token"},
		{"bad filter", apitest.ViewerToken, func(c *client.Client) error {
			_, err := c.Jobs(ctx, client.JobQuery{State: "SLEEPING"})
			return err
		}, errs.Invalid, "not a job state"},
	}
	for _, tc := range cases {
		err := tc.call(newClient(t, env.URL, tc.token))
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != tc.kind || !strings.Contains(e.Error(), tc.want) || e.Hint == "" {
			t.Errorf("%s: %#v, want kind %v containing %q with a hint", tc.name, err, tc.kind, tc.want)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := client.New("ftp://x", "", nil); !errs.Is(err, errs.Invalid) {
		t.Errorf("ftp URL: %v", err)
	}
	if _, err := client.New("localhost:8420", "", nil); !errs.Is(err, errs.Invalid) {
		t.Errorf("URL without scheme: %v", err)
	}
	// A server that is gone.
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close()
	if _, err := newClient(t, url, "").Sites(ctx); !errs.Is(err, errs.Unavailable) || errs.HintOf(err) == "" {
		t.Errorf("closed server: %v", err)
	}
	// Something that is not a Rewind server.
	hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/sites" {
			w.Write([]byte("<html>hello</html>"))
			return
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer hs.Close()
	c := newClient(t, hs.URL, "")
	if _, err := c.Vaults(ctx); !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "502") {
		t.Errorf("502 page: %v", err)
	}
	if _, err := c.Sites(ctx); !errs.Is(err, errs.Internal) || !strings.Contains(err.Error(), "not the JSON expected") {
		t.Errorf("HTML answer: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Sites(cctx); !errs.Is(err, errs.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
