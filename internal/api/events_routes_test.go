package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/apitest"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/events/intake"
)

// eventsYAML adds a rule and an intake mapping to apitest's configuration.
const eventsYAML = apitest.ConfigYAML + `
rules:
  failed-backups:
    pattern: {source: [rewind.backup], detail: {state: [FAILED]}}
    targets:
      - incident: {title: "Backup of <resource> failed"}
intake:
  ci:
    source: ci.example
    detail_type: Pipeline Finished
    detail: $.build
`

const intakeSecret = "alertmanager-shared-secret-0123"

// eventsService is the server's event machinery over a real dispatcher.
type eventsService struct{ d *dispatch.Dispatcher }

func (e eventsService) Replay(ctx context.Context, req api.ReplayRequest) (*api.ReplayResult, error) {
	r, err := e.d.Replay(ctx, dispatch.Replay{Name: req.Name, From: req.From, To: req.To, Rule: req.Rule})
	if err != nil {
		return nil, err
	}
	return &api.ReplayResult{Name: r.Name, Events: r.Events, Deliveries: r.Deliveries}, nil
}

func (eventsService) Alarms() []alarm.Status {
	return []alarm.Status{{Name: "queue", State: alarm.StateOK, Reason: "fine", Since: apitest.Now}}
}

func (eventsService) IntakeSecret() []byte { return []byte(intakeSecret) }

// eventsEnv is an API server with tokens, the events configuration and, unless noEvents,
// an events service.
type eventsEnv struct {
	*apitest.Env
	dispatcher *dispatch.Dispatcher
}

func newEventsEnv(t testing.TB, noEvents bool) *eventsEnv {
	t.Helper()
	cfg, err := config.Parse("rewind.yaml", []byte(eventsYAML))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	now := func() time.Time { return apitest.Now }
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := control.SyncConfig(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Options{Store: st, Rules: cfg.Rules, Now: now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	o := api.Options{Store: st, Config: cfg, Jobs: &apitest.FakeJobs{Store: st}, Now: now, Tokens: []api.Token{
		{Name: "grafana", Role: config.RoleViewer, Value: apitest.ViewerToken},
		{Name: "ci", Role: config.RoleOperator, Value: apitest.OperatorToken},
		{Name: "root", Role: config.RoleAdmin, Value: apitest.AdminToken},
	}}
	if !noEvents {
		o.Events = eventsService{d}
	}
	srv, err := api.New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &eventsEnv{Env: &apitest.Env{Store: st, Config: cfg, API: srv, HTTP: hs, URL: hs.URL}, dispatcher: d}
}

func (e *eventsEnv) events(t testing.TB) []*catalog.Event {
	t.Helper()
	var out []*catalog.Event
	err := e.Store.Tx(context.Background(), func(tx catalog.Tx) (err error) {
		out, err = tx.ListEvents(context.Background(), catalog.EventFilter{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutEventsPartialFailure(t *testing.T) {
	env := newEventsEnv(t, false)
	body := `{"Entries": [
		{"Source": "shop.orders", "DetailType": "Order Placed", "Detail": "{\"id\": 7}"},
		{"Source": "rewind.backup", "DetailType": "Backup Job State Change", "Detail": "{}"},
		{"Source": "shop.orders", "Detail": "{}"},
		{"Source": "shop.orders", "DetailType": "Order Shipped", "Detail": "{}", "Resources": ["order/7"]}
	]}`
	res := call(t, env.Env, "POST", "/v1/events", apitest.OperatorToken, body)
	if res.status != http.StatusOK {
		t.Fatalf("POST /v1/events: %d %s", res.status, res.body)
	}
	var out struct {
		FailedEntryCount int
		Entries          []map[string]string
	}
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 2 || len(out.Entries) != 4 {
		t.Fatalf("answer: %s", res.body)
	}
	for i, want := range []string{"", intake.CodeReservedSource, intake.CodeInvalidArgument, ""} {
		e := out.Entries[i]
		switch {
		case want == "" && (e["EventId"] == "" || e["ErrorCode"] != ""):
			t.Errorf("entry %d: %v, want an event ID", i, e)
		case want != "" && (e["ErrorCode"] != want || e["ErrorMessage"] == "" || e["EventId"] != ""):
			t.Errorf("entry %d: %v, want error %s with a message", i, e, want)
		}
	}
	byID := map[string]*catalog.Event{}
	for _, e := range env.events(t) {
		byID[e.ID] = e
	}
	placed, shipped := byID[out.Entries[0]["EventId"]], byID[out.Entries[3]["EventId"]]
	if len(byID) != 2 || placed == nil || shipped == nil || placed.DetailType != "Order Placed" ||
		string(placed.Detail) != `{"id":7}` || shipped.Resources[0] != "order/7" {
		t.Fatalf("stored events: %+v", byID)
	}

	for _, tc := range []struct {
		name, token, body string
		status            int
	}{
		{"viewer", apitest.ViewerToken, body, http.StatusForbidden},
		{"no token", "", body, http.StatusUnauthorized},
		{"not JSON", apitest.OperatorToken, `{"Entries": [`, http.StatusBadRequest},
		{"no entries", apitest.OperatorToken, `{"Entries": []}`, http.StatusBadRequest},
		{"too many", apitest.OperatorToken, `[` + strings.TrimSuffix(strings.Repeat(`{"source":"a.b","detail-type":"x","detail":{}},`, 11), ",") + `]`, http.StatusBadRequest},
	} {
		res := call(t, env.Env, "POST", "/v1/events", tc.token, tc.body)
		if res.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, res.status, res.body, tc.status)
		}
		if res.status >= 400 {
			errorOf(t, res)
		}
	}
	if n := len(env.events(t)); n != 2 {
		t.Errorf("refused requests stored events: %d", n)
	}
}

const amNotification = `{"version":"4","receiver":"rewind","status":"firing","alerts":[
	{"status":"firing","labels":{"alertname":"DiskFull","instance":"db1"},"startsAt":"2026-03-01T11:59:00Z"}]}`

func TestIntakeAuth(t *testing.T) {
	env := newEventsEnv(t, false)
	tests := []struct {
		name, path, token, body string
		status                  int
	}{
		{"shared secret", "/v1/intake/alertmanager", intakeSecret, amNotification, http.StatusOK},
		{"operator token", "/v1/intake/alertmanager", apitest.OperatorToken, amNotification, http.StatusOK},
		{"viewer token", "/v1/intake/alertmanager", apitest.ViewerToken, amNotification, http.StatusForbidden},
		{"wrong secret", "/v1/intake/alertmanager", "not-the-secret-at-all", amNotification, http.StatusUnauthorized},
		{"nothing", "/v1/intake/alertmanager", "", amNotification, http.StatusUnauthorized},
		{"bad notification", "/v1/intake/alertmanager", intakeSecret, `{"version":"3"}`, http.StatusBadRequest},
		{"mapping with a token", "/v1/intake/ci", apitest.OperatorToken, `{"build": {"id": 12, "ok": true}}`, http.StatusOK},
		{"mapping refuses the secret", "/v1/intake/ci", intakeSecret, `{"build": {}}`, http.StatusUnauthorized},
		{"mapping without a token", "/v1/intake/ci", "", `{"build": {}}`, http.StatusUnauthorized},
		{"unknown intake", "/v1/intake/jenkins", apitest.OperatorToken, `{}`, http.StatusNotFound},
	}
	want := 0
	for _, tt := range tests {
		res := call(t, env.Env, "POST", tt.path, tt.token, tt.body)
		if res.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, res.status, res.body, tt.status)
			continue
		}
		if res.status != http.StatusOK {
			e := errorOf(t, res)
			if tt.status == http.StatusNotFound && (!strings.Contains(e.Message, "jenkins") || e.Hint == "") {
				t.Errorf("%s: %+v", tt.name, e)
			}
			continue
		}
		ids := decode[api.IntakeResult](t, res).EventIDs
		if len(ids) != 1 {
			t.Errorf("%s: event IDs %v", tt.name, ids)
		}
		want++
	}
	evs := env.events(t)
	if len(evs) != want {
		t.Fatalf("%d events stored, want %d", len(evs), want)
	}
	var mapped *catalog.Event
	for _, e := range evs {
		if e.Source == "ci.example" {
			mapped = e
		}
	}
	if mapped == nil || mapped.DetailType != "Pipeline Finished" || string(mapped.Detail) != `{"id":12,"ok":true}` {
		t.Errorf("mapped event: %+v", mapped)
	}
}

func TestReplayRoute(t *testing.T) {
	env := newEventsEnv(t, false)
	// Rewind's own events cannot come through PutEvents: write one as the jobs would.
	e := catalog.JobStateEvent(&catalog.Job{ID: "J1", Kind: catalog.JobBackup, State: catalog.StateFailed, Resource: "app-db"}, "")
	e.Time = apitest.Now.Add(-time.Hour)
	if err := env.Store.Tx(context.Background(), func(tx catalog.Tx) error { return tx.AppendEvent(context.Background(), e) }); err != nil {
		t.Fatal(err)
	}
	if err := env.dispatcher.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	window := `"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T12:00:00Z"`
	tests := []struct {
		name, token, body string
		status            int
		msg               string
	}{
		{"no window", apitest.OperatorToken, `{}`, http.StatusBadRequest, "from and to are required"},
		{"reversed", apitest.OperatorToken, `{"from": "2026-03-01T12:00:00Z", "to": "2026-03-01T10:00:00Z"}`, http.StatusBadRequest, "empty or reversed"},
		{"not a time", apitest.OperatorToken, `{"from": "yesterday", "to": "2026-03-01T10:00:00Z"}`, http.StatusBadRequest, ""},
		{"unknown field", apitest.OperatorToken, `{` + window + `, "rules": "x"}`, http.StatusBadRequest, "unknown field"},
		{"unknown rule", apitest.OperatorToken, `{` + window + `, "rule": "ghost"}`, http.StatusNotFound, "ghost"},
		{"bad name", apitest.OperatorToken, `{` + window + `, "name": "a b"}`, http.StatusBadRequest, "not valid"},
		{"viewer", apitest.ViewerToken, `{` + window + `}`, http.StatusForbidden, ""},
		{"ok", apitest.OperatorToken, `{` + window + `, "rule": "failed-backups", "name": "drill"}`, http.StatusOK, ""},
	}
	for _, tt := range tests {
		res := call(t, env.Env, "POST", "/v1/events/replay", tt.token, tt.body)
		if res.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, res.status, res.body, tt.status)
			continue
		}
		if res.status != http.StatusOK {
			if e := errorOf(t, res); !strings.Contains(e.Message, tt.msg) {
				t.Errorf("%s: message %q lacks %q", tt.name, e.Message, tt.msg)
			}
			continue
		}
		got := decode[api.ReplayResult](t, res)
		if got.Name != "drill" || got.Events != 1 || got.Deliveries != 1 {
			t.Errorf("replay: %+v", got)
		}
	}
	// Without the event machinery, replay is unavailable rather than wrong.
	bare := newEventsEnv(t, true)
	if res := call(t, bare.Env, "POST", "/v1/events/replay", apitest.OperatorToken, `{`+window+`}`); res.status != http.StatusServiceUnavailable {
		t.Errorf("replay without events: %d %s", res.status, res.body)
	}
}

func TestCloseIncident(t *testing.T) {
	env := newEventsEnv(t, false)
	inc := &catalog.Incident{Title: "Backup failed", Severity: "high", Rule: "failed-backups", EventID: "E1",
		Event: json.RawMessage(`{"id": "E1"}`)}
	if err := env.Store.Tx(context.Background(), func(tx catalog.Tx) error { return tx.CreateIncident(context.Background(), inc) }); err != nil {
		t.Fatal(err)
	}
	path := "/v1/incidents/" + inc.ID + "/close"
	if res := call(t, env.Env, "POST", path, apitest.ViewerToken, ""); res.status != http.StatusForbidden {
		t.Errorf("viewer closes: %d", res.status)
	}
	res := call(t, env.Env, "POST", path, apitest.OperatorToken, "")
	got := decode[catalog.Incident](t, res)
	if res.status != http.StatusOK || got.Status != catalog.IncidentClosed || got.ClosedAt == nil || !got.ClosedAt.Equal(apitest.Now) {
		t.Fatalf("close: %d %s", res.status, res.body)
	}
	if res := call(t, env.Env, "POST", path, apitest.OperatorToken, ""); res.status != http.StatusConflict {
		t.Errorf("close twice: %d %s", res.status, res.body)
	}
	res = call(t, env.Env, "POST", "/v1/incidents/nope/close", apitest.OperatorToken, "")
	if res.status != http.StatusNotFound || errorOf(t, res).Hint == "" {
		t.Errorf("close unknown: %d %s", res.status, res.body)
	}
	list := decode[api.List[*catalog.Incident]](t, call(t, env.Env, "GET", "/v1/incidents?status=closed", apitest.ViewerToken, ""))
	if len(list.Items) != 1 || list.Items[0].ID != inc.ID {
		t.Errorf("closed incidents: %+v", list)
	}
}

const apiRule = `{"description": "orders to the shop", "pattern": {"source": ["shop.orders"], "detail": {"id": [12345678901234567890]}},
	"targets": [{"webhook": {"url": "https://hooks.example.com/x", "timeout": "5s"}}], "retry": {"max_attempts": 3}}`

func TestRuleRoutes(t *testing.T) {
	env := newEventsEnv(t, false)
	type step struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}
	steps := []step{
		{"operator may not put", "PUT", "/v1/rules/orders", apitest.OperatorToken, apiRule, http.StatusForbidden, ""},
		{"create", "PUT", "/v1/rules/orders", apitest.AdminToken, apiRule, http.StatusCreated, ""},
		{"replace", "PUT", "/v1/rules/orders", apitest.AdminToken, apiRule, http.StatusOK, ""},
		{"config rule", "PUT", "/v1/rules/failed-backups", apitest.AdminToken, apiRule, http.StatusConflict, "configuration"},
		{"bad url", "PUT", "/v1/rules/bad", apitest.AdminToken,
			`{"pattern": {"source": ["a"]}, "targets": [{"webhook": {"url": "ftp://x"}}]}`, http.StatusBadRequest, "targets[0].webhook.url"},
		{"bad pattern", "PUT", "/v1/rules/bad", apitest.AdminToken,
			`{"pattern": {"source": "a"}, "targets": [{"notify": "logger://"}]}`, http.StatusBadRequest, "pattern"},
		{"no targets", "PUT", "/v1/rules/bad", apitest.AdminToken, `{"pattern": {"source": ["a"]}}`, http.StatusBadRequest, "no targets"},
		{"unknown field", "PUT", "/v1/rules/bad", apitest.AdminToken,
			`{"pattern": {"source": ["a"]}, "targets": [{"notify": "logger://"}], "enabled": true}`, http.StatusBadRequest, "unknown field"},
		{"bad duration", "PUT", "/v1/rules/bad", apitest.AdminToken,
			`{"pattern": {"source": ["a"]}, "targets": [{"webhook": {"url": "https://x", "timeout": 5}}]}`, http.StatusBadRequest, "duration"},
		{"bad name", "PUT", "/v1/rules/a%20b", apitest.AdminToken, `{"pattern": {"source": ["a"]}, "targets": [{"notify": "logger://"}]}`, http.StatusBadRequest, "name"},
		{"not JSON", "PUT", "/v1/rules/bad", apitest.AdminToken, `pattern: x`, http.StatusBadRequest, ""},
		{"get unknown", "GET", "/v1/rules/bad", apitest.ViewerToken, "", http.StatusNotFound, "bad"},
		{"delete config rule", "DELETE", "/v1/rules/failed-backups", apitest.AdminToken, "", http.StatusConflict, "configuration"},
		{"delete unknown", "DELETE", "/v1/rules/ghost", apitest.AdminToken, "", http.StatusNotFound, "ghost"},
		{"operator may not delete", "DELETE", "/v1/rules/orders", apitest.OperatorToken, "", http.StatusForbidden, ""},
	}
	for _, s := range steps {
		res := call(t, env.Env, s.method, s.path, s.token, s.body)
		if res.status != s.status {
			t.Errorf("%s: %d %s, want %d", s.name, res.status, res.body, s.status)
			continue
		}
		if res.status >= 400 {
			e := errorOf(t, res)
			if !strings.Contains(e.Message, s.msg) {
				t.Errorf("%s: message %q lacks %q", s.name, e.Message, s.msg)
			}
			if res.status == http.StatusConflict && e.Hint == "" {
				t.Errorf("%s: no hint: %+v", s.name, e)
			}
		}
		if s.name == "create" && res.header.Get("Location") != "/v1/rules/orders" {
			t.Errorf("create: Location %q", res.header.Get("Location"))
		}
	}
	// The refused puts stored nothing.
	var stored []*catalog.EventRule
	if err := env.Store.Tx(context.Background(), func(tx catalog.Tx) (err error) {
		stored, err = tx.ListEventRules(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Name != "orders" {
		t.Fatalf("stored rules: %+v", stored)
	}

	list := decode[[]api.RuleInfo](t, call(t, env.Env, "GET", "/v1/rules", apitest.ViewerToken, ""))
	if len(list) != 2 || list[0].Name != "failed-backups" || list[0].Source != "config" || list[0].UpdatedAt != nil ||
		list[1].Name != "orders" || list[1].Source != "api" || list[1].UpdatedAt == nil || list[1].Spec.Description != "orders to the shop" {
		t.Fatalf("GET /v1/rules: %+v", list)
	}
	one := call(t, env.Env, "GET", "/v1/rules/orders", apitest.ViewerToken, "")
	// The pattern keeps every digit of its numbers.
	if one.status != http.StatusOK || !strings.Contains(string(one.body), "12345678901234567890") {
		t.Fatalf("GET /v1/rules/orders: %d %s", one.status, one.body)
	}
	cfgRule := decode[api.RuleInfo](t, call(t, env.Env, "GET", "/v1/rules/failed-backups", apitest.ViewerToken, ""))
	if cfgRule.Source != "config" || len(cfgRule.Spec.Targets) != 1 {
		t.Errorf("GET config rule: %+v", cfgRule)
	}

	// The dispatcher picks the rule up at its next tick.
	if err := env.dispatcher.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if env.dispatcher.RuleSource("orders") != catalog.RuleSourceAPI {
		t.Errorf("the dispatcher does not have the API rule")
	}

	if res := call(t, env.Env, "DELETE", "/v1/rules/orders", apitest.AdminToken, ""); res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	if res := call(t, env.Env, "GET", "/v1/rules/orders", apitest.ViewerToken, ""); res.status != http.StatusNotFound {
		t.Errorf("GET after delete: %d", res.status)
	}
	if err := env.dispatcher.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := env.dispatcher.RuleSource("orders"); got != "" {
		t.Errorf("the dispatcher still has the deleted rule (%s)", got)
	}
}

func TestAlarmsRoute(t *testing.T) {
	env := newEventsEnv(t, false)
	list := decode[[]alarm.Status](t, call(t, env.Env, "GET", "/v1/alarms", apitest.ViewerToken, ""))
	if len(list) != 1 || list[0].Name != "queue" || list[0].State != alarm.StateOK {
		t.Errorf("alarms: %+v", list)
	}
	bare := newEventsEnv(t, true)
	if res := call(t, bare.Env, "GET", "/v1/alarms", apitest.ViewerToken, ""); res.status != 200 || string(res.body) != "[]\n" && string(res.body) != "[]" {
		t.Errorf("alarms without events: %d %q", res.status, res.body)
	}
}

// FuzzPutEvents sends arbitrary bodies to POST /v1/events: the answer is 200 with one
// response entry per request entry and exactly the accepted ones stored, or 400 with an
// error body and nothing stored; never a server error.
func FuzzPutEvents(f *testing.F) {
	for _, seed := range []string{
		`{"Entries": [{"Source": "a.b", "DetailType": "x", "Detail": "{}"}]}`,
		`{"Entries": [{"Source": "rewind.x", "DetailType": "x", "Detail": "{}"}, {"Source": "a.b", "DetailType": "y", "Detail": "{\"n\": 1}"}]}`,
		`[{"source": "a.b", "detail-type": "x", "detail": {"k": [1, 2]}, "resources": ["r"]}]`,
		`{"version": "0", "id": "x", "source": "a.b", "detail-type": "x", "detail": {}}`,
		`{"Entries": [{"Source": "a.b", "DetailType": "x", "Detail": "not json", "Time": 17}]}`,
		`{"Entries": {}}`, `[]`, `null`, `{`, "\xff",
	} {
		f.Add(seed)
	}
	env := newEventsEnv(f, false)
	h := env.API.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		before := len(env.events(t))
		req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apitest.OperatorToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		stored := len(env.events(t)) - before
		switch rec.Code {
		case http.StatusOK:
			var out intake.Response
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("200 with a body that does not decode: %v: %s", err, rec.Body.Bytes())
			}
			ok := 0
			for _, e := range out.Entries {
				if (e.EventID == "") == (e.ErrorCode == "") {
					t.Fatalf("an entry is neither accepted nor refused, or both: %+v", e)
				}
				if e.EventID != "" {
					ok++
				}
			}
			if len(out.Entries) == 0 || out.FailedEntryCount != len(out.Entries)-ok || stored != ok {
				t.Fatalf("answer %s, %d events stored", rec.Body.Bytes(), stored)
			}
		case http.StatusBadRequest:
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Message == "" {
				t.Fatalf("400 without an error body: %s", rec.Body.Bytes())
			}
			if stored != 0 {
				t.Fatalf("a refused request stored %d events", stored)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}
