package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/orchestrate"
	"github.com/rewind-dr/rewind/internal/vault"
)

// serverOptions are the server's settings after flags override the config file.
type serverOptions struct {
	ConfigPath string
	DataDir    string
	Listen     string
	Catalog    string
	Site       string
	Tick       time.Duration
	// AgentLease is how long a job run by an agent lives without a heartbeat.
	AgentLease time.Duration
	Log        io.Writer
	// Runbooks is the runbooks directory (default: "runbooks" next to the config file).
	Runbooks string
}

// Server is the control plane in one process: catalog, queue and workers, scheduler and
// API. Run starts it and blocks until ctx ends; Close releases what Open acquired. Tests
// run it in-process on a free port with a temporary catalog.
type Server struct {
	opts   serverOptions
	cfg    *config.Config
	store  *sqlstore.Store
	vaults *jobs.Vaults
	queue  *jobs.Queue
	svc    *control.Service
	api    *api.Server
	ln     net.Listener
	tokens []api.Token
	log    *slog.Logger
	events *serverEvents // rules, deliveries, monitors and alarms (server_events.go)

	runbooks *orchestrate.Service // durable runbook executions
}

// openServer loads the config, opens (or creates) the catalog and the vaults, and binds
// the listener. Nothing runs until Run.
func openServer(ctx context.Context, o serverOptions) (s *Server, err error) {
	const op = "server"
	cfg, err := config.Load(o.ConfigPath, config.CheckSecretFiles())
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(o.Log, nil))
	for _, w := range cfg.Warnings {
		log.Warn("config", "problem", w.String())
	}
	o = o.withDefaults(cfg)
	if _, ok := cfg.Sites[o.Site]; !ok {
		return nil, errs.Errorf(op, errs.Invalid, "--site %q is not a site of the config", o.Site)
	}
	s = &Server{opts: o, cfg: cfg, log: log}
	opened := s // "return nil, err" sets s to nil before this deferred Close runs
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	if s.tokens, err = api.LoadTokens(cfg.Auth); err != nil {
		return nil, err
	}
	if err := api.CheckListen(o.Listen, len(s.tokens)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, errs.E(op, errs.Invalid, err).WithHint("choose a data directory this user can create, with --data-dir")
	}
	host := hostname()
	// Jobs on one vault wait for each other's locks (a prune after a backup, two prunes of
	// one vault) rather than fail.
	s.vaults = jobs.NewVaults(cfg, vault.OpenOptions{Host: host, LockWait: 10 * time.Minute})
	if err := s.ensureVaults(ctx); err != nil {
		return nil, err
	}
	if s.store, err = sqlstore.Open(ctx, o.Catalog, sqlstore.Options{}); err != nil {
		return nil, err
	}
	if err := control.SyncConfig(ctx, s.store, cfg); err != nil {
		return nil, err
	}
	runner, err := jobs.NewRunner(jobs.Env{Store: s.store, Config: cfg, Site: o.Site, Host: host, OpenVault: s.vaults.Open,
		VaultSecrets: s.vaults.Secrets, Log: log}, jobs.RunnerOptions{AgentLease: o.AgentLease})
	if err != nil {
		return nil, err
	}
	if s.queue, err = jobs.Open(ctx, s.store, runner, jobs.QueueOptions{Logger: log}); err != nil {
		return nil, err
	}
	s.svc = &control.Service{Store: s.store, Config: cfg, Site: o.Site, Enqueue: s.queue.Enqueue}
	if s.runbooks, err = openRunbooks(ctx, s); err != nil {
		return nil, err
	}
	apiOpts := api.Options{
		Store:    s.store,
		Config:   cfg,
		Jobs:     apiJobs{s},
		Agents:   apiAgents{s.queue},
		Events:   s.eventsAPI(),
		Runbooks: s.runbooks,
		Tokens:   s.tokens,
		Version:  "dev",
	}
	if s.api, err = api.New(apiOpts); err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", o.Listen); err != nil {
		return nil, errs.E(op, errs.Unavailable, err).WithHint("is another server using " + o.Listen + "? pick another with --listen")
	}
	if err := s.eventsAPI().open(); err != nil {
		return nil, err
	}
	return s, nil
}

// withDefaults fills unset options from the config's server block, then the built-in
// defaults.
func (o serverOptions) withDefaults(cfg *config.Config) serverOptions {
	first := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	o.DataDir = first(o.DataDir, cfg.Server.DataDir, "/var/lib/rewind")
	o.Listen = first(o.Listen, cfg.Server.Listen, "127.0.0.1:8080")
	o.Catalog = first(o.Catalog, cfg.Server.Catalog, filepath.Join(o.DataDir, "catalog.db"))
	o.Site = first(o.Site, defaultSite(cfg))
	if o.Tick <= 0 {
		o.Tick = 10 * time.Second
	}
	return o
}

// Addr is the address the API listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then stops the API, the scheduler and the workers in order.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("rewind server", "listen", s.Addr(), "site", s.opts.Site, "catalog", redactDSN(s.opts.Catalog), "data_dir", s.opts.DataDir)
	s.log.Info(api.ListenNotice(s.Addr(), len(s.tokens)))
	if err := s.queue.Start(ctx); err != nil {
		return err
	}
	if err := s.runbooks.Resume(ctx); err != nil {
		s.log.Error("resuming runbook executions", "err", err)
	}
	if n, err := s.svc.Recover(ctx); err != nil {
		s.log.Error("re-queueing pending jobs", "err", err)
	} else if n > 0 {
		s.log.Info("re-queued pending jobs", "count", n)
	}
	hs := &http.Server{Handler: s.api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.Serve(s.ln) }()
	eventsDone := s.events.start(ctx)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		s.svc.Run(ctx, s.opts.Tick, func(err error) { s.log.Error("scheduler", "err", err) })
	}()
	agentsDone := make(chan struct{})
	go func() {
		defer close(agentsDone)
		s.reclaimAgentJobs(ctx)
	}()
	protectDone := make(chan struct{})
	go func() {
		defer close(protectDone)
		s.queue.Protect(ctx) // continuous resources: WAL streaming and frame shipping
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = errs.E("server", errs.Unavailable, fmt.Errorf("API stopped: %w", err))
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	hs.Shutdown(stopCtx)
	if rerr := s.runbooks.Close(); rerr != nil {
		s.log.Error("stopping runbook executions", "err", rerr)
	}
	<-schedDone
	<-agentsDone
	<-eventsDone
	<-protectDone
	if qerr := s.queue.Stop(stopCtx); qerr != nil && err == nil {
		err = qerr
	}
	s.log.Info("rewind server stopped")
	return err
}

// Close releases the catalog, the vaults and the listener.
func (s *Server) Close() error {
	var list []error
	if s.ln != nil {
		s.ln.Close()
	}
	if s.runbooks != nil {
		list = append(list, s.runbooks.Close())
	}
	if s.vaults != nil {
		list = append(list, s.vaults.Close())
	}
	if s.store != nil {
		list = append(list, s.store.Close())
	}
	return errors.Join(list...)
}

// ensureVaults creates every configured vault whose location holds none yet, with its
// password file; a vault that exists is only checked to open with its password.
func (s *Server) ensureVaults(ctx context.Context) error {
	for _, name := range sortedKeys(s.cfg.Vaults) {
		created, err := s.vaults.Ensure(ctx, name)
		if err != nil {
			return err
		}
		if created {
			s.log.Info("created vault", "vault", name, "location", s.cfg.Vaults[name].URL)
		}
	}
	return nil
}

// defaultSite is the site of the first vault named by a plan rule, else the first site.
func defaultSite(cfg *config.Config) string {
	for _, p := range sortedKeys(cfg.Plans) {
		for _, r := range cfg.Plans[p].Rules {
			if v, ok := cfg.Vaults[r.Vault]; ok {
				return v.Site
			}
		}
	}
	if names := sortedKeys(cfg.Sites); len(names) > 0 {
		return names[0]
	}
	return ""
}

func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 && strings.Contains(dsn, "://") {
		return dsn[:strings.Index(dsn, "://")+3] + "…" + dsn[i:]
	}
	return dsn
}

// apiJobs lets the API start and cancel jobs through the control service and the queue.
type apiJobs struct{ s *Server }

func (a apiJobs) Start(ctx context.Context, req api.StartJob) (*catalog.Job, error) {
	params := map[string]string{}
	if req.Point != "" {
		params["point"] = req.Point
	}
	if req.Target != "" {
		params["target"] = req.Target
	}
	var raw []byte
	if len(params) > 0 {
		var err error
		if raw, err = json.Marshal(params); err != nil {
			return nil, errs.E("server.StartJob", errs.Internal, err)
		}
	}
	return a.s.svc.Submit(ctx, control.Request{Kind: req.Kind, Resource: req.Resource, Vault: req.Vault, Target: req.TargetVault, Params: raw})
}

func (a apiJobs) Cancel(ctx context.Context, id string) (*catalog.Job, error) {
	if err := a.s.queue.Cancel(ctx, id); err != nil {
		return nil, err
	}
	var j *catalog.Job
	err := a.s.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		j, err = tx.GetJob(ctx, id)
		return err
	})
	return j, err
}

func newCatalogCmd() *cobra.Command {
	var o serverOptions
	var asJSON bool
	rebuild := &cobra.Command{
		Use:   "rebuild --config FILE",
		Short: "Rebuild the catalog's recovery points from the vaults",
		Long: `Read every vault the config names and make the catalog's recovery points match them:
every point found is AVAILABLE (a lost or deleted catalog comes back whole), and a point
the catalog knew that its vault no longer holds is marked MISSING. Nothing is deleted from
any vault. Job history is not in the vaults, so it starts empty in a new catalog.`,
		Example: `  rewind catalog rebuild --config /etc/rewind/rewind.yaml
  rewind catalog rebuild --config rewind.yaml --catalog postgres://rewind:…@db/rewind --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if o.ConfigPath == "" {
				return errs.Errorf("catalog rebuild", errs.Invalid, "--config is required")
			}
			cfg, err := config.Load(o.ConfigPath, config.CheckSecretFiles())
			if err != nil {
				return err
			}
			o = o.withDefaults(cfg)
			if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
				return errs.E("catalog rebuild", errs.Invalid, err)
			}
			store, err := sqlstore.Open(ctx, o.Catalog, sqlstore.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			if err := control.SyncConfig(ctx, store, cfg); err != nil {
				return err
			}
			vaults := jobs.NewVaults(cfg, vault.OpenOptions{Host: hostname()})
			defer vaults.Close()
			rep, err := jobs.Rebuild(ctx, jobs.Env{Store: store, Config: cfg, Site: o.Site, Host: hostname(), OpenVault: vaults.Open})
			out := cmd.OutOrStdout()
			if rep != nil {
				if asJSON {
					if jerr := writeJSON(out, rep); jerr != nil {
						return jerr
					}
				} else {
					fmt.Fprintf(out, "read %d vaults: %d points available (%d new to the catalog), %d missing from their vault\n",
						rep.Vaults, rep.Points, rep.Added, rep.Missing)
				}
			}
			return err
		},
	}
	f := rebuild.Flags()
	f.StringVar(&o.ConfigPath, "config", "", "the server config (YAML)")
	f.StringVar(&o.DataDir, "data-dir", "", "the server's data directory (default: server.data_dir, else /var/lib/rewind)")
	f.StringVar(&o.Catalog, "catalog", "", "catalog: an SQLite file or postgres://… (default DATA_DIR/catalog.db)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd := &cobra.Command{Use: "catalog", Short: "Maintain the control plane's catalog"}
	cmd.AddCommand(rebuild)
	return cmd
}

func newServerCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server --config FILE",
		Short: "Run the control plane: scheduler, workers, API and metrics",
		Long: `Run Rewind's control plane from one YAML config: plans run on schedule into vaults,
copies go to the other site's vaults, retention applies after every job, and the API
(with /metrics for Prometheus) lists and starts jobs. The catalog is an SQLite file in the
data directory unless --catalog names a PostgreSQL database (several servers may share
one). Vaults that do not exist yet are created with their password files.

Without auth tokens in the config the server listens on loopback only and allows every
call; it says so when it starts.`,
		Example: `  rewind server --config /etc/rewind/rewind.yaml
  rewind server --config rewind.yaml --data-dir /var/lib/rewind --listen 127.0.0.1:8080
  rewind server --config rewind.yaml --catalog postgres://rewind:…@db:5432/rewind`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.ConfigPath == "" {
				return errs.Errorf("server", errs.Invalid, "--config is required").WithHint("see examples/quickstart/rewind.yaml")
			}
			s, err := openServer(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", "", "the server config (YAML)")
	f.StringVar(&o.DataDir, "data-dir", "", "where the server keeps its state (default: server.data_dir, else /var/lib/rewind)")
	f.StringVar(&o.Listen, "listen", "", "API address (default: server.listen, else 127.0.0.1:8080)")
	f.StringVar(&o.Catalog, "catalog", "", "catalog: an SQLite file or postgres://… (default DATA_DIR/catalog.db)")
	f.StringVar(&o.Site, "site", "", "this server's site (default: the site of the first plan rule's vault)")
	f.DurationVar(&o.Tick, "tick", 10*time.Second, "how often the scheduler looks for due rules")
	f.StringVar(&o.Runbooks, "runbooks", "", "directory of runbook definitions, *.asl.json|yaml|yml (default: runbooks next to the config file; none when missing)")
	f.DurationVar(&o.AgentLease, "agent-lease", jobs.DefaultAgentLease, "how long a job run by an agent lives without a heartbeat before the server takes it back")
	return cmd
}

// apiAgents serves `rewind agent` through the job queue: the API passes the JSON bodies,
// decoded here strictly into the queue's types.
type apiAgents struct{ q *jobs.Queue }

func (a apiAgents) Claim(ctx context.Context, host string) (json.RawMessage, error) {
	w, err := a.q.ClaimAgentJob(ctx, host)
	if err != nil || w == nil {
		return nil, err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, errs.E("server.ClaimAgentJob", errs.Internal, err)
	}
	return b, nil
}

func (a apiAgents) Heartbeat(ctx context.Context, host, id string, body json.RawMessage) error {
	var p jobs.AgentProgress
	if err := decodeStrict("server.AgentHeartbeat", body, &p); err != nil {
		return err
	}
	return a.q.AgentHeartbeat(ctx, host, id, p)
}

func (a apiAgents) Finish(ctx context.Context, host, id string, body json.RawMessage) error {
	var r jobs.AgentResult
	if err := decodeStrict("server.FinishAgentJob", body, &r); err != nil {
		return err
	}
	return a.q.FinishAgentJob(ctx, host, id, r)
}

// decodeStrict decodes one JSON object into v, refusing unknown fields.
func decodeStrict(op string, body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.Errorf(op, errs.Invalid, "the request body does not fit: %v", err).
			WithHint("the agent may run another version of Rewind than the server")
	}
	return nil
}

// reclaimAgentJobs takes back, every few seconds until ctx ends, the jobs whose agent
// stopped reporting.
func (s *Server) reclaimAgentJobs(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids, err := s.queue.ReclaimAgentJobs(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("taking back the jobs of silent agents", "err", err)
		}
		if len(ids) > 0 {
			s.log.Warn("took back the jobs of silent agents", "jobs", ids)
		}
	}
}
