package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/plan"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/location"
)

var cheapKDF = vault.KDFParams{Time: 1, Memory: 64, Threads: 1}

// fixture is a configuration with two vaults at two sites (main at paris, offsite at
// london, each with its own password file), a files resource "docs" and a plan backing it
// up into main with retention keep_last 2 and a copy to offsite kept keep_last 1.
type fixture struct {
	dir, src string
	cfg      *config.Config
	dsn      string
	// agentLease is the runners' AgentLease (the default when zero).
	agentLease time.Duration

	mu          sync.Mutex
	unavailable map[string]bool // vaults whose opening fails with errs.Unavailable
	gate        chan struct{}   // when set, opening a vault waits until it is closed
	opened      chan string     // receives the vault names being opened while gate is set
}

func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{dir: dir, src: filepath.Join(dir, "src"), dsn: dsn, unavailable: map[string]bool{}}
	writeFile(t, filepath.Join(f.src, "a.txt"), "alpha")
	writeFile(t, filepath.Join(f.src, "sub", "b.txt"), "bravo")
	vaults := map[string]config.Vault{}
	for name, site := range map[string]string{"main": "paris", "offsite": "london"} {
		pwFile := filepath.Join(dir, name+".key")
		writeFile(t, pwFile, "password of "+name+"\n")
		loc := filepath.Join(dir, "vaults", name)
		if err := os.MkdirAll(loc, 0o700); err != nil {
			t.Fatal(err)
		}
		be, err := location.Open(ctx, loc, location.Credentials{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := vault.Init(ctx, be, "password of "+name, vault.InitOptions{KDF: cheapKDF})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		vaults[name] = config.Vault{Name: name, Site: site, URL: loc, PasswordFile: pwFile}
	}
	f.cfg = &config.Config{
		Sites:  map[string]config.Site{"paris": {Name: "paris"}, "london": {Name: "london"}},
		Vaults: vaults,
		Resources: map[string]config.Resource{
			"docs": {Name: "docs", Kind: config.KindFiles, Tags: map[string]string{"app": "docs"}, Paths: []string{f.src}},
			"shop": {Name: "shop", Kind: config.KindPostgres, Tags: map[string]string{}, URL: "postgres://db/shop"},
			"far":  {Name: "far", Kind: config.KindFiles, Host: "agent1", Tags: map[string]string{}, Paths: []string{f.src}},
		},
		Plans: map[string]config.Plan{"gold": {
			Name: "gold", Resources: []string{"docs"},
			Rules: []config.Rule{{
				Name: "daily", Vault: "main", Retention: plan.Retention{KeepLast: 2}, Window: plan.Window{Completion: 8 * time.Hour},
				CopyTo: []config.Copy{{Vault: "offsite", Retention: plan.Retention{KeepLast: 1}}},
				Tags:   map[string]string{"plan": "gold"},
			}},
		}},
	}
	return f
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) setUnavailable(name string, v bool) {
	f.mu.Lock()
	f.unavailable[name] = v
	f.mu.Unlock()
}

// block makes every vault opening wait until the returned function is called; the names
// being opened arrive on f.opened.
func (f *fixture) block() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
	f.opened = make(chan string, 16)
	g := f.gate
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.gate = nil
			f.mu.Unlock()
			close(g)
		})
	}
}

func (f *fixture) openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), f.dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// server is one Rewind server's job machinery on the fixture's catalog.
type server struct {
	store  *sqlstore.Store
	runner *jobs.Runner
	queue  *jobs.Queue
	vaults *jobs.Vaults
}

func (f *fixture) newRunner(t *testing.T, st catalog.Store) (*jobs.Runner, *jobs.Vaults) {
	t.Helper()
	vs := jobs.NewVaults(f.cfg, vault.OpenOptions{Host: "srv", LockWait: 20 * time.Second})
	t.Cleanup(func() { vs.Close() })
	open := func(ctx context.Context, name string) (*vault.Repository, error) {
		f.mu.Lock()
		down, gate, opened := f.unavailable[name], f.gate, f.opened
		f.mu.Unlock()
		if down {
			return nil, errs.Errorf("test.OpenVault", errs.Unavailable, "vault %s: storage unreachable", name)
		}
		if gate != nil {
			opened <- name
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, errs.E("test.OpenVault", errs.Canceled, ctx.Err())
			}
		}
		return vs.Open(ctx, name)
	}
	r, err := jobs.NewRunner(jobs.Env{Store: st, Config: f.cfg, Site: "paris", Host: "srv", OpenVault: open, VaultSecrets: vs.Secrets},
		jobs.RunnerOptions{ProgressInterval: 20 * time.Millisecond, AgentLease: f.agentLease})
	if err != nil {
		t.Fatal(err)
	}
	return r, vs
}

func quietLogger() *slog.Logger {
	if os.Getenv("JOBS_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (f *fixture) newServer(t *testing.T, id string, opts jobs.QueueOptions) *server {
	t.Helper()
	st := f.openStore(t)
	r, vs := f.newRunner(t, st)
	opts.ID = id
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	opts.RetryDelay, opts.RetryMaxDelay, opts.BusyDelay = 50*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond
	opts.Logger = quietLogger()
	q, err := jobs.Open(context.Background(), st, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &server{store: st, runner: r, queue: q, vaults: vs}
}

func (s *server) start(t *testing.T) {
	t.Helper()
	if err := s.queue.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.queue.Stop(ctx)
	})
}

func createJob(t *testing.T, st catalog.Store, j *catalog.Job) string {
	t.Helper()
	err := st.Tx(context.Background(), func(tx catalog.Tx) error {
		return catalog.CreateJobWithEvent(context.Background(), tx, j, func(j *catalog.Job) *catalog.Event {
			return catalog.JobStateEvent(j, "paris")
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}

func backupJob() *catalog.Job {
	return &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "docs", Vault: "main",
		Plan: "gold", Rule: "daily"}
}

func getJob(t *testing.T, st catalog.Store, id string) *catalog.Job {
	t.Helper()
	var j *catalog.Job
	err := st.Tx(context.Background(), func(tx catalog.Tx) error {
		var err error
		j, err = tx.GetJob(context.Background(), id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// waitFor polls until cond holds; the queue works asynchronously. It fails after a minute,
// which only a hung queue reaches.
func waitFor(t *testing.T, what string, cond func() bool, onTimeout ...func()) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	for _, f := range onTimeout {
		f()
	}
	t.Errorf("timed out waiting for %s", what)
	t.FailNow()
}

func waitState(t *testing.T, st catalog.Store, id string, states ...catalog.State) *catalog.Job {
	t.Helper()
	var j *catalog.Job
	waitFor(t, "job "+id+" to reach "+string(states[0])+" (see the job and its events below)", func() bool {
		j = getJob(t, st, id)
		for _, s := range states {
			if j.State == s {
				return true
			}
		}
		return false
	}, func() { t.Logf("job %+v, events %v", j, jobStates(t, st, id)) })
	return j
}

// waitIdle waits until no job is CREATED, PENDING or RUNNING.
func waitIdle(t *testing.T, st catalog.Store) {
	t.Helper()
	waitFor(t, "every job to end", func() bool {
		var n int
		err := st.Tx(context.Background(), func(tx catalog.Tx) error {
			js, err := tx.ListJobs(context.Background(), catalog.JobFilter{States: []catalog.State{
				catalog.StateCreated, catalog.StatePending, catalog.StateRunning}})
			n = len(js)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

func listJobs(t *testing.T, st catalog.Store, f catalog.JobFilter) []*catalog.Job {
	t.Helper()
	var out []*catalog.Job
	err := st.Tx(context.Background(), func(tx catalog.Tx) error {
		var err error
		out, err = tx.ListJobs(context.Background(), f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listPoints(t *testing.T, st catalog.Store, f catalog.PointFilter) []*catalog.Point {
	t.Helper()
	var out []*catalog.Point
	err := st.Tx(context.Background(), func(tx catalog.Tx) error {
		var err error
		out, err = tx.ListPoints(context.Background(), f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// event is an outbox event with its detail decoded.
type event struct {
	*catalog.Event
	d map[string]any
}

// jobStates returns the states announced for job id, in outbox order.
func jobStates(t *testing.T, st catalog.Store, id string) []string {
	t.Helper()
	var out []string
	for _, e := range events(t, st) {
		if e.d["jobId"] == id {
			out = append(out, e.d["state"].(string))
		}
	}
	return out
}

func events(t *testing.T, st catalog.Store) []event {
	t.Helper()
	var es []*catalog.Event
	err := st.Tx(context.Background(), func(tx catalog.Tx) error {
		var err error
		es, err = tx.ListEvents(context.Background(), catalog.EventFilter{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]event, 0, len(es))
	for _, e := range es {
		var d map[string]any
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, event{e, d})
	}
	return out
}

// vaultPoints opens a vault afresh with only its own password and lists its points.
func (f *fixture) vaultPoints(t *testing.T, name string) (*vault.Repository, []*vault.Point) {
	t.Helper()
	ctx := context.Background()
	be, err := location.Open(ctx, f.cfg.Vaults[name].URL, location.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := vault.Open(ctx, be, "password of "+name, vault.OpenOptions{Host: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ps, err := r.Points(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r, ps
}

func (f *fixture) past() time.Time { return time.Now().Add(-time.Hour) }
