package api

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	rewindapi "github.com/rewind-dr/rewind/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/metrics"
)

// Jobs starts and cancels jobs. The job queue implements it.
type Jobs interface {
	// Start creates the catalog job for req (CREATED then PENDING, with their events) and
	// enqueues it, returning the job as recorded. errs.Invalid for a request the queue
	// cannot run, errs.Unavailable when the queue is down. Safe for concurrent use; no
	// retries.
	Start(ctx context.Context, req StartJob) (*catalog.Job, error)
	// Cancel aborts the job (ABORTED, with its event; a running job is told to stop) and
	// returns it. errs.NotFound for an unknown ID, errs.Conflict for a finished job. Safe
	// for concurrent use; no retries.
	Cancel(ctx context.Context, id string) (*catalog.Job, error)
}

// Options configures a Server. Store, Config and Jobs are required.
type Options struct {
	Store  catalog.Store
	Config *config.Config
	Jobs   Jobs
	// Events serves event replay, alarms and the Alertmanager secret (nil: replay answers 503).
	Events EventsService
	// Agents serves `rewind agent` on data hosts (nil: the agent routes answer 503).
	Agents Agents
	// Runbooks starts, stops and decides runbook executions (nil: those routes answer 503).
	Runbooks Runbooks
	// Tokens are the accepted tokens (see LoadTokens). None means every call is allowed:
	// the caller must then listen on loopback only (CheckListen).
	Tokens  []Token
	Now     func() time.Time // time.Now when nil
	Version string
}

// MaxBodySize is the largest request body the server reads.
const MaxBodySize = 64 << 10 // bytes

// DefaultLimit and MaxLimit bound the page size of list routes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Server serves the API. Safe for concurrent use.
type Server struct {
	store   catalog.Store
	cfg     *config.Config
	jobs    Jobs
	events  EventsService
	agents  Agents
	tokens  []Token
	hashes  []tokenHash
	now     func() time.Time
	version string
	reg     *prometheus.Registry

	runbooks Runbooks
}

// New builds a Server. errs.Invalid when a required option is missing or a token has no
// value or an unknown role.
func New(o Options) (*Server, error) {
	const op = "api.New"
	if o.Store == nil || o.Config == nil || o.Jobs == nil {
		return nil, errs.Errorf(op, errs.Invalid, "Store, Config and Jobs are required")
	}
	s := &Server{store: o.Store, cfg: o.Config, jobs: o.Jobs, agents: o.Agents, now: o.Now, version: o.Version}
	s.runbooks = o.Runbooks
	s.events = o.Events
	if s.now == nil {
		s.now = time.Now
	}
	for _, t := range o.Tokens {
		if t.Value == "" || rank(t.Role) == 0 {
			return nil, errs.Errorf(op, errs.Invalid, "token %q has no value or an unknown role %q", t.Name, t.Role)
		}
		s.tokens = append(s.tokens, t)
		s.hashes = append(s.hashes, tokenHash(sha256.Sum256([]byte(t.Value))))
	}
	s.reg = prometheus.NewRegistry()
	if err := s.reg.Register(metrics.NewCollector(o.Store, s.now)); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	// The server's own health beside the catalog's: memory, goroutines, open files.
	if err := s.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	if err := s.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return s, nil
}

// AuthRequired reports whether the server checks tokens (false when none is configured).
func (s *Server) AuthRequired() bool { return len(s.tokens) > 0 }

// Route is one registered route: Method and Path as written in the OpenAPI document, and
// the least role that may call it ("" for a route without authentication).
type Route struct {
	Method string
	Path   string
	Role   config.Role
}

type route struct {
	Route
	h func(http.ResponseWriter, *http.Request) error
}

func (s *Server) routes() []route {
	const v, op = config.RoleViewer, config.RoleOperator
	r := func(method, path string, role config.Role, h func(http.ResponseWriter, *http.Request) error) route {
		return route{Route{method, path, role}, h}
	}
	return []route{
		r("GET", "/v1/health", "", s.health),
		r("GET", "/v1/openapi.yaml", "", s.openapi),
		r("GET", "/v1/sites", v, s.listSites),
		r("GET", "/v1/vaults", v, s.listVaults),
		r("GET", "/v1/resources", v, s.listResources),
		r("GET", "/v1/plans", v, s.listPlans),
		r("GET", "/v1/jobs", v, s.listJobs),
		r("POST", "/v1/jobs", op, s.startJob),
		r("GET", "/v1/jobs/{id}", v, s.getJob),
		r("POST", "/v1/jobs/{id}/cancel", op, s.cancelJob),
		r("GET", "/v1/points", v, s.listPoints),
		r("GET", "/v1/points/{id}", v, s.getPoint),
		r("GET", "/v1/events", v, s.listEvents),
		r("GET", "/v1/runbooks", v, s.listRunbooks),
		r("GET", "/v1/runbooks/{name}", v, s.getRunbook),
		r("PUT", "/v1/runbooks/{name}", config.RoleAdmin, s.putRunbook),
		r("POST", "/v1/runbooks/{name}/executions", op, s.startExecution),
		r("GET", "/v1/executions", v, s.listExecutions),
		r("GET", "/v1/executions/{id}", v, s.getExecution),
		r("POST", "/v1/executions/{id}/stop", op, s.stopExecution),
		r("GET", "/v1/tokens/{token}", v, s.getToken),
		r("POST", "/v1/tokens/{token}/approve", op, s.approveToken),
		r("POST", "/v1/tokens/{token}/deny", op, s.denyToken),
		r("GET", "/approve/{token}", "", s.approvalGet),
		r("POST", "/approve/{token}", "", s.approvalPost),
		r("GET", "/metrics", v, s.metrics),
		r("POST", "/v1/agents/{host}/claim", config.RoleAgent, s.agentClaim),
		r("POST", "/v1/agents/{host}/jobs/{id}/heartbeat", config.RoleAgent, s.agentHeartbeat),
		r("POST", "/v1/agents/{host}/jobs/{id}/finish", config.RoleAgent, s.agentFinish),
		r("POST", "/v1/events", op, s.putEvents),
		r("POST", "/v1/events/replay", op, s.replayEvents),
		r("GET", "/v1/events/dead-letters", v, s.listDeadLetters),
		r("POST", "/v1/intake/{name}", "", s.intake), // an operator token, or for alertmanager the shared secret
		r("GET", "/v1/rules", v, s.listRules),
		r("GET", "/v1/rules/{name}", v, s.getRule),
		r("PUT", "/v1/rules/{name}", config.RoleAdmin, s.putRule),
		r("DELETE", "/v1/rules/{name}", config.RoleAdmin, s.deleteRule),
		r("GET", "/v1/incidents", v, s.listIncidents),
		r("POST", "/v1/incidents/{id}/close", op, s.closeIncident),
		r("GET", "/v1/alarms", v, s.listAlarms),
	}
}

// Routes lists every route the handler serves, for documentation and tests.
func (s *Server) Routes() []Route {
	rs := s.routes()
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = r.Route
	}
	return out
}

// Handler returns the HTTP handler of every route. Unknown paths answer 404 and known
// paths with another method 405, both as ErrorBody JSON.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range s.routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	for path, ms := range methods {
		sort.Strings(ms)
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{
				Code: "method_not_allowed", Message: r.Method + " is not allowed on " + path, Hint: "use " + allow}})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errs.Errorf("api", errs.NotFound, "no route %s %s", r.Method, r.URL.Path).
			WithHint("GET /v1/openapi.yaml lists every route"))
	})
	return mux
}

// wrap authenticates and authorizes a request for rt, then runs its handler and writes
// the error it returns.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Role != "" {
			t, err := s.authenticate(r)
			if err == nil {
				err = authorize(t, rt.Method, rt.Path, rt.Role)
			}
			if err != nil {
				writeError(w, err)
				return
			}
		}
		if err := rt.h(w, r); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok", Version: s.version, Auth: s.AuthRequired()})
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(rewindapi.OpenAPI) // a write error means the client went away
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
	return nil
}
