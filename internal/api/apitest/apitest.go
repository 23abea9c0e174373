package apitest

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/errs"
)

// ConfigYAML is the configuration every Env starts from: two sites, a vault at each, two
// resources and one plan selecting app-files.
const ConfigYAML = `
sites: {primary: {}, recovery: {}}
vaults:
  main:    {site: primary,  url: /srv/vaults/main,    password_file: /etc/rewind/main.key}
  offsite: {site: recovery, url: /srv/vaults/offsite, password_file: /etc/rewind/offsite.key}
resources:
  app-files: {kind: files, paths: [/srv/app/data], tags: {tier: gold}}
  app-db:    {kind: postgres, url: "postgres://app@db/app"}
plans:
  gold:
    select: {tags: {tier: gold}}
    rules:
      - name: frequent
        schedule: "*/5 * * * *"
        start_window: 1h
        vault: main
        retention: {keep_last: 12}
        copy_to: [{vault: offsite}]
`

// Token values of the tokens an Env with auth configures.
const (
	ViewerToken   = "viewer-0123456789abcdef"
	OperatorToken = "operator-0123456789abcdef"
	AdminToken    = "admin-0123456789abcdef"
	AgentToken    = "agent-0123456789abcdef"
)

// Now is the fixed time of every Env's clock.
var Now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Env is a running API server over a temporary catalog.
type Env struct {
	Store  *sqlstore.Store
	Config *config.Config
	Jobs   *FakeJobs
	Agents *FakeAgents
	API    *api.Server
	HTTP   *httptest.Server
	URL    string
}

// New starts an Env; with auth it configures a viewer, an operator and an admin token,
// otherwise none. Everything is closed when the test ends.
func New(t testing.TB, auth bool) *Env {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Parse("rewind.yaml", []byte(ConfigYAML))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	now := func() time.Time { return Now }
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{Now: now})
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	err = control.SyncConfig(ctx, st, cfg)
	if err != nil {
		t.Fatalf("sync config: %v", err)
	}
	var tokens []api.Token
	if auth {
		tokens = []api.Token{
			{Name: "grafana", Role: config.RoleViewer, Value: ViewerToken},
			{Name: "ci", Role: config.RoleOperator, Value: OperatorToken},
			{Name: "root", Role: config.RoleAdmin, Value: AdminToken},
			{Name: "db1-agent", Role: config.RoleAgent, Value: AgentToken},
		}
	}
	jobs := &FakeJobs{Store: st}
	agents := &FakeAgents{}
	srv, err := api.New(api.Options{Store: st, Config: cfg, Jobs: jobs, Agents: agents, Tokens: tokens, Now: now, Version: "test"})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &Env{Store: st, Config: cfg, Jobs: jobs, Agents: agents, API: srv, HTTP: hs, URL: hs.URL}
}

// AddPoint records an AVAILABLE point of resource in vault taken at t.
func (e *Env) AddPoint(t testing.TB, id, resource, vault string, at time.Time, size int64) *catalog.Point {
	t.Helper()
	p := &catalog.Point{ID: id, Vault: vault, Resource: resource, Kind: "files", Time: at, SizeBytes: size,
		State: catalog.PointAvailable}
	if err := e.Store.Tx(context.Background(), func(tx catalog.Tx) error { return tx.UpsertPoint(context.Background(), p) }); err != nil {
		t.Fatalf("add point: %v", err)
	}
	return p
}

// AddJob records a job directly in the catalog (as the queue would have).
func (e *Env) AddJob(t testing.TB, j *catalog.Job) *catalog.Job {
	t.Helper()
	if err := e.Store.Tx(context.Background(), func(tx catalog.Tx) error { return tx.CreateJob(context.Background(), j) }); err != nil {
		t.Fatalf("add job: %v", err)
	}
	return j
}

// FakeJobs implements api.Jobs over the catalog: Start records the job CREATED then
// PENDING with their events, Cancel moves it to ABORTED. Err, when set, is returned by
// both instead. Safe for concurrent use.
type FakeJobs struct {
	Store catalog.Store

	mu      sync.Mutex
	Err     error
	Started []api.StartJob
}

var _ api.Jobs = (*FakeJobs)(nil)

// SetErr makes every following call fail with err (nil to stop).
func (f *FakeJobs) SetErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Err = err
}

// Requests returns the requests Start received.
func (f *FakeJobs) Requests() []api.StartJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.StartJob(nil), f.Started...)
}

func (f *FakeJobs) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Err
}

// Start implements api.Jobs.
func (f *FakeJobs) Start(ctx context.Context, req api.StartJob) (*catalog.Job, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.Started = append(f.Started, req)
	f.mu.Unlock()
	j := &catalog.Job{Kind: req.Kind, Resource: req.Resource, Vault: req.Vault, TargetVault: req.TargetVault, PointID: req.Point}
	mk := func(j *catalog.Job) *catalog.Event { return catalog.JobStateEvent(j, "") }
	err := f.Store.Tx(ctx, func(tx catalog.Tx) error {
		if err := catalog.CreateJobWithEvent(ctx, tx, j, mk); err != nil {
			return err
		}
		var err error
		j, err = catalog.UpdateJobWithEvent(ctx, tx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)}, mk)
		return err
	})
	return j, err
}

// Cancel implements api.Jobs.
func (f *FakeJobs) Cancel(ctx context.Context, id string) (*catalog.Job, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	var j *catalog.Job
	err := f.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		j, err = catalog.UpdateJobWithEvent(ctx, tx, id, catalog.JobUpdate{State: catalog.Ptr(catalog.StateAborted)},
			func(j *catalog.Job) *catalog.Event { return catalog.JobStateEvent(j, "") })
		return err
	})
	if err != nil {
		return nil, errs.E("jobs.Cancel", errs.KindOf(err), err)
	}
	return j, nil
}

// FakeAgents is an Agents for handler tests: host "db1" has one job ("job1") to claim;
// reports on job "gone" are refused as taken back; it records the reports it accepts.
type FakeAgents struct {
	mu      sync.Mutex
	claimed bool
	Reports []string // "heartbeat host id body" or "finish host id body"
}

// Claim hands out job1 to db1 once.
func (f *FakeAgents) Claim(ctx context.Context, host string) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if host != "db1" || f.claimed {
		return nil, nil
	}
	f.claimed = true
	return json.RawMessage(`{"job":{"id":"job1","kind":"BACKUP"},"leaseSeconds":60}`), nil
}

// Heartbeat records the report.
func (f *FakeAgents) Heartbeat(ctx context.Context, host, id string, body json.RawMessage) error {
	return f.report("heartbeat", host, id, body)
}

// Finish records the report.
func (f *FakeAgents) Finish(ctx context.Context, host, id string, body json.RawMessage) error {
	return f.report("finish", host, id, body)
}

func (f *FakeAgents) report(what, host, id string, body json.RawMessage) error {
	if id == "gone" {
		return errs.Errorf("fake.Agents", errs.Conflict, "job gone was taken back").WithHint("stop working on it")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Reports = append(f.Reports, what+" "+host+" "+id+" "+string(body))
	return nil
}
