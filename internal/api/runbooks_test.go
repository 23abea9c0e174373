package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/apitest"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/orchestrate"
	"github.com/rewind-dr/rewind/internal/runbook/localtasks"
)

// Definitions the runbook tests use: a gate waiting for a decision, a long Wait, a Pass.
const (
	gateDef = `{"StartAt": "Gate", "States": {
		"Gate": {"Type": "Task", "Resource": "rewind:event.waitForTaskToken", "Parameters": {"token.$": "$$.Task.Token"},
			"Catch": [{"ErrorEquals": ["Rewind.Denied"], "ResultPath": "$.denial", "Next": "Denied"}], "End": true},
		"Denied": {"Type": "Fail", "Error": "Gate.Denied", "Cause": "denied"}}}`
	waitDef = `{"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 3600, "End": true}}}`
	passDef = `{"Comment": "pass", "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}`
)

// newRunbookEnv is an API server with a real execution service over a temporary catalog,
// with the viewer, operator, admin and agent tokens of apitest, and one runbook from the
// configuration directory ("from-config").
func newRunbookEnv(t testing.TB) *apitest.Env {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Parse("rewind.yaml", []byte(apitest.ConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := control.SyncConfig(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	svc, err := orchestrate.New(orchestrate.Options{Store: st, Registry: localtasks.Registry(localtasks.Options{Events: io.Discard}),
		Owner: "test", Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.SyncRunbooks(ctx, map[string][]byte{"from-config": []byte(passDef)}); err != nil {
		t.Fatal(err)
	}
	tokens := []api.Token{
		{Name: "grafana", Role: config.RoleViewer, Value: apitest.ViewerToken},
		{Name: "ci", Role: config.RoleOperator, Value: apitest.OperatorToken},
		{Name: "root", Role: config.RoleAdmin, Value: apitest.AdminToken},
		{Name: "db1-agent", Role: config.RoleAgent, Value: apitest.AgentToken},
	}
	jobs := &apitest.FakeJobs{Store: st}
	srv, err := api.New(api.Options{Store: st, Config: cfg, Jobs: jobs, Runbooks: svc, Tokens: tokens, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &apitest.Env{Store: st, Config: cfg, Jobs: jobs, API: srv, HTTP: hs, URL: hs.URL}
}

func putRunbook(t *testing.T, env *apitest.Env, name, def string) {
	t.Helper()
	if r := call(t, env, "PUT", "/v1/runbooks/"+name, apitest.AdminToken, def); r.status != 201 && r.status != 200 {
		t.Fatalf("PUT runbook %s: %d %s", name, r.status, r.body)
	}
}

func startExecution(t *testing.T, env *apitest.Env, runbook, body string) *catalog.Execution {
	t.Helper()
	r := call(t, env, "POST", "/v1/runbooks/"+runbook+"/executions", apitest.OperatorToken, body)
	if r.status != 201 {
		t.Fatalf("start %s: %d %s", runbook, r.status, r.body)
	}
	e := decode[catalog.Execution](t, r)
	if r.header.Get("Location") != "/v1/executions/"+e.ID || e.Status != catalog.ExecutionRunning {
		t.Fatalf("start %s: Location %q, execution %+v", runbook, r.header.Get("Location"), e)
	}
	return &e
}

// waitDetail polls GET /v1/executions/{id} until cond holds.
func waitDetail(t *testing.T, env *apitest.Env, id, what string, cond func(api.ExecutionDetail) bool) api.ExecutionDetail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := call(t, env, "GET", "/v1/executions/"+id, apitest.ViewerToken, "")
		if r.status != 200 {
			t.Fatalf("GET execution: %d %s", r.status, r.body)
		}
		d := decode[api.ExecutionDetail](t, r)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openToken(d api.ExecutionDetail) string {
	for _, tk := range d.Tokens {
		if tk.Resolution == catalog.TokenUnresolved {
			return tk.Token
		}
	}
	return ""
}

func TestRunbookRoutes(t *testing.T) {
	env := newRunbookEnv(t)
	if r := call(t, env, "PUT", "/v1/runbooks/gate", apitest.AdminToken, gateDef); r.status != 201 || r.header.Get("Location") != "/v1/runbooks/gate" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := call(t, env, "PUT", "/v1/runbooks/gate", apitest.AdminToken, gateDef); r.status != 200 {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	putRunbook(t, env, "sleep", waitDef)

	list := decode[api.List[*catalog.Runbook]](t, call(t, env, "GET", "/v1/runbooks", apitest.ViewerToken, ""))
	if len(list.Items) != 3 || list.Items[0].Name != "from-config" || list.Items[0].Source != catalog.RunbookFromConfig ||
		list.Items[1].Name != "gate" || list.Items[1].Source != catalog.RunbookFromAPI {
		t.Errorf("runbooks: %+v", list.Items)
	}
	rb := decode[catalog.Runbook](t, call(t, env, "GET", "/v1/runbooks/gate", apitest.ViewerToken, ""))
	if !strings.Contains(string(rb.Definition), "waitForTaskToken") {
		t.Errorf("runbook definition: %s", rb.Definition)
	}

	// Approved: the execution succeeds with the approval's output.
	e := startExecution(t, env, "gate", `{"input": {"site": "recovery"}, "name": "drill-1"}`)
	if e.Name != "drill-1" || e.Runbook != "gate" {
		t.Errorf("started: %+v", e)
	}
	d := waitDetail(t, env, e.ID, "the gate's token", func(d api.ExecutionDetail) bool { return openToken(d) != "" })
	tok := openToken(d)
	if len(d.History) == 0 || d.History[0].Type != "ExecutionStarted" || d.History[len(d.History)-1].State != "Gate" {
		t.Errorf("history: %+v", d.History)
	}
	td := decode[api.TokenDetail](t, call(t, env, "GET", "/v1/tokens/"+tok, apitest.ViewerToken, ""))
	if td.TaskToken == nil || td.Execution != e.ID || td.State != "Gate" || td.Runbook != "gate" || td.ExecutionName != "drill-1" ||
		td.ExecutionStatus != catalog.ExecutionRunning {
		t.Errorf("token detail: %+v", td)
	}
	r := call(t, env, "POST", "/v1/tokens/"+tok+"/approve", apitest.OperatorToken, `{"output": {"approved": true}}`)
	if r.status != 200 || decode[catalog.TaskToken](t, r).Resolution != catalog.TokenSuccess {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	d = waitDetail(t, env, e.ID, "success", func(d api.ExecutionDetail) bool { return d.Status.Terminal() })
	var out struct{ Approved bool }
	if err := json.Unmarshal(d.Output, &out); err != nil || d.Status != catalog.ExecutionSucceeded || !out.Approved {
		t.Errorf("after approval: %s %s", d.Status, d.Output)
	}
	if r := call(t, env, "POST", "/v1/tokens/"+tok+"/deny", apitest.OperatorToken, `{"cause": "late"}`); r.status != 409 {
		t.Errorf("deny after the end: %d %s", r.status, r.body)
	}

	// Denied: the task fails with Rewind.Denied, which the Catch routes.
	e = startExecution(t, env, "gate", "")
	tok = openToken(waitDetail(t, env, e.ID, "the gate's token", func(d api.ExecutionDetail) bool { return openToken(d) != "" }))
	r = call(t, env, "POST", "/v1/tokens/"+tok+"/deny", apitest.OperatorToken, `{"cause": "the primary recovered"}`)
	if tk := decode[catalog.TaskToken](t, r); r.status != 200 || tk.Error != orchestrate.ErrDenied || tk.Cause != "the primary recovered" {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	d = waitDetail(t, env, e.ID, "failure", func(d api.ExecutionDetail) bool { return d.Status.Terminal() })
	if d.Status != catalog.ExecutionFailed || d.Error != "Gate.Denied" {
		t.Errorf("after denial: %s %s", d.Status, d.Error)
	}
	found := false
	for _, h := range d.History {
		found = found || (h.Type == "TaskFailed" && h.State == "Gate" && h.Error == orchestrate.ErrDenied && h.Cause == "the primary recovered")
	}
	if !found {
		t.Errorf("the denial is not in the history: %+v", d.History)
	}

	// Stopped: a running execution ends ABORTED with the cause; stopping again conflicts.
	e = startExecution(t, env, "sleep", `{}`)
	waitDetail(t, env, e.ID, "the Wait state", func(d api.ExecutionDetail) bool {
		return len(d.History) > 0 && d.History[len(d.History)-1].Type == "WaitStateEntered"
	})
	r = call(t, env, "POST", "/v1/executions/"+e.ID+"/stop", apitest.OperatorToken, `{"cause": "drill over"}`)
	if st := decode[catalog.Execution](t, r); r.status != 200 || st.Status != catalog.ExecutionAborted || st.Cause != "drill over" {
		t.Fatalf("stop: %d %s", r.status, r.body)
	}
	if r := call(t, env, "POST", "/v1/executions/"+e.ID+"/stop", apitest.OperatorToken, ""); r.status != 409 || errorOf(t, r).Code != "conflict" {
		t.Errorf("stop twice: %d %s", r.status, r.body)
	}

	// Listing: filtered and paged. (The order is the catalog's, by ID.)
	all := decode[api.List[*catalog.Execution]](t, call(t, env, "GET", "/v1/executions", apitest.ViewerToken, ""))
	if len(all.Items) != 3 || all.Next != "" {
		t.Errorf("executions: %d items, next %q", len(all.Items), all.Next)
	}
	failed := decode[api.List[*catalog.Execution]](t, call(t, env, "GET", "/v1/executions?status=failed&runbook=gate", apitest.ViewerToken, ""))
	if len(failed.Items) != 1 || failed.Items[0].Status != catalog.ExecutionFailed {
		t.Errorf("failed executions of gate: %+v", failed.Items)
	}
	page := decode[api.List[*catalog.Execution]](t, call(t, env, "GET", "/v1/executions?limit=2", apitest.ViewerToken, ""))
	if len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("page 1: %+v", page)
	}
	page = decode[api.List[*catalog.Execution]](t, call(t, env, "GET", "/v1/executions?limit=2&after="+page.Next, apitest.ViewerToken, ""))
	if len(page.Items) != 1 || page.Next != "" || page.Items[0].ID != all.Items[2].ID {
		t.Errorf("page 2: %+v", page)
	}
}

func TestRunbookRoles(t *testing.T) {
	env := newRunbookEnv(t)
	putRunbook(t, env, "gate", gateDef)
	cases := []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"viewer lists runbooks", "GET", "/v1/runbooks", apitest.ViewerToken, "", 200},
		{"viewer reads a runbook", "GET", "/v1/runbooks/gate", apitest.ViewerToken, "", 200},
		{"viewer lists executions", "GET", "/v1/executions", apitest.ViewerToken, "", 200},
		{"no token", "GET", "/v1/executions", "", "", 401},
		{"agent may not read", "GET", "/v1/runbooks", apitest.AgentToken, "", 403},
		{"viewer may not put", "PUT", "/v1/runbooks/x", apitest.ViewerToken, passDef, 403},
		{"operator may not put", "PUT", "/v1/runbooks/x", apitest.OperatorToken, passDef, 403},
		{"admin puts", "PUT", "/v1/runbooks/x", apitest.AdminToken, passDef, 201},
		{"viewer may not start", "POST", "/v1/runbooks/gate/executions", apitest.ViewerToken, "", 403},
		{"operator starts", "POST", "/v1/runbooks/x/executions", apitest.OperatorToken, "", 201},
		{"viewer may not stop", "POST", "/v1/executions/abc/stop", apitest.ViewerToken, "", 403},
		{"viewer may not approve", "POST", "/v1/tokens/abc/approve", apitest.ViewerToken, "", 403},
		{"viewer may not deny", "POST", "/v1/tokens/abc/deny", apitest.ViewerToken, `{"cause": "x"}`, 403},
		{"operator approves (unknown token)", "POST", "/v1/tokens/abc/approve", apitest.OperatorToken, "", 404},
		{"operator denies (unknown token)", "POST", "/v1/tokens/abc/deny", apitest.OperatorToken, `{"cause": "x"}`, 404},
		{"operator stops (unknown execution)", "POST", "/v1/executions/abc/stop", apitest.OperatorToken, "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, env, c.method, c.path, c.token, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.status >= 400 {
				if e := errorOf(t, r); e.Hint == "" {
					t.Errorf("error without a hint: %+v", e)
				}
			}
		})
	}
}

func TestRunbookValidation(t *testing.T) {
	env := newRunbookEnv(t)
	putRunbook(t, env, "gate", gateDef)
	big := `{"Comment": "` + strings.Repeat("x", api.MaxDefinitionSize) + `", "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code, contains           string
	}{
		{"bad runbook name", "GET", "/v1/runbooks/..bad", "", 400, "invalid", "not a valid name"},
		{"unknown runbook", "GET", "/v1/runbooks/nope", "", 404, "not_found", ""},
		{"put empty", "PUT", "/v1/runbooks/x", "", 400, "invalid", "JSON object"},
		{"put YAML", "PUT", "/v1/runbooks/x", "StartAt: P", 400, "invalid", "JSON object"},
		{"put array", "PUT", "/v1/runbooks/x", `[1]`, 400, "invalid", "JSON object"},
		{"put broken JSON", "PUT", "/v1/runbooks/x", `{"StartAt": `, 400, "invalid", "JSON object"},
		{"put too large", "PUT", "/v1/runbooks/x", big, 400, "invalid", "larger than"},
		{"put invalid definition lists every problem", "PUT", "/v1/runbooks/x",
			`{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}, "B": {"Type": "Bogus", "End": true}}}`, 400, "invalid", "Nowhere"},
		{"put unknown resource", "PUT", "/v1/runbooks/x",
			`{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "rewind:teleport", "End": true}}}`, 400, "invalid", "rewind:teleport"},
		{"put over a config runbook", "PUT", "/v1/runbooks/from-config", passDef, 409, "conflict", "runbooks directory"},
		{"start unknown runbook", "POST", "/v1/runbooks/nope/executions", "", 404, "not_found", ""},
		{"start unknown field", "POST", "/v1/runbooks/gate/executions", `{"inputs": {}}`, 400, "invalid", "unknown field"},
		{"start field case", "POST", "/v1/runbooks/gate/executions", `{"Input": {}}`, 400, "invalid", "case-sensitive"},
		{"start bad name", "POST", "/v1/runbooks/gate/executions", `{"name": "has space"}`, 400, "invalid", "execution name"},
		{"start name too long", "POST", "/v1/runbooks/gate/executions", `{"name": "` + strings.Repeat("a", 81) + `"}`, 400, "invalid", "execution name"},
		{"start not an object", "POST", "/v1/runbooks/gate/executions", `"go"`, 400, "invalid", "JSON object"},
		{"start trailing data", "POST", "/v1/runbooks/gate/executions", `{} {}`, 400, "invalid", "more than one"},
		{"executions bad status", "GET", "/v1/executions?status=done", "", 400, "invalid", "status"},
		{"executions unknown parameter", "GET", "/v1/executions?state=RUNNING", "", 400, "invalid", "unknown query parameter"},
		{"executions bad limit", "GET", "/v1/executions?limit=0", "", 400, "invalid", "limit"},
		{"unknown execution", "GET", "/v1/executions/0123abcd", "", 404, "not_found", ""},
		{"bad execution ID", "GET", "/v1/executions/-x", "", 400, "invalid", "execution ID"},
		{"unknown token", "GET", "/v1/tokens/0123abcd", "", 404, "not_found", ""},
		{"stop unknown field", "POST", "/v1/executions/0123abcd/stop", `{"reason": "x"}`, 400, "invalid", "unknown field"},
		{"approve unknown field", "POST", "/v1/tokens/0123abcd/approve", `{"result": {}}`, 400, "invalid", "unknown field"},
		{"deny without cause", "POST", "/v1/tokens/0123abcd/deny", `{}`, 400, "invalid", "cause"},
		{"deny empty body", "POST", "/v1/tokens/0123abcd/deny", ``, 400, "invalid", "empty"},
		{"deny with a States error", "POST", "/v1/tokens/0123abcd/deny", `{"error": "States.Timeout", "cause": "x"}`, 400, "invalid", "error name"},
		{"deny cause too long", "POST", "/v1/tokens/0123abcd/deny", `{"cause": "` + strings.Repeat("x", api.MaxCauseLength+1) + `"}`, 400, "invalid", "longer than"},
		{"query on a detail route", "GET", "/v1/runbooks/gate?x=1", "", 400, "invalid", "unknown query parameter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, env, c.method, c.path, apitest.AdminToken, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			e := errorOf(t, r)
			if e.Code != c.code || !strings.Contains(e.Message, c.contains) {
				t.Errorf("error %+v, want code %s and a message containing %q", e, c.code, c.contains)
			}
		})
	}
}

func TestRunbookRoutesWithoutService(t *testing.T) {
	env := apitest.New(t, false)
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/v1/runbooks/x", passDef},
		{"POST", "/v1/runbooks/x/executions", ""},
		{"POST", "/v1/executions/abc/stop", ""},
		{"POST", "/v1/tokens/abc/approve", ""},
		{"POST", "/v1/tokens/abc/deny", `{"cause": "x"}`},
	} {
		if r := call(t, env, c.method, c.path, "", c.body); r.status != 503 || errorOf(t, r).Code != "unavailable" {
			t.Errorf("%s %s without a runbook service: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	// Reads come from the catalog and work without the service.
	if r := call(t, env, "GET", "/v1/executions", "", ""); r.status != 200 {
		t.Errorf("GET /v1/executions: %d %s", r.status, r.body)
	}
}

// FuzzRunbookBodies: whatever the body of a start, stop, approve or deny, the server
// answers with a status from the documented set, never a 500, and every error is JSON.
func FuzzRunbookBodies(f *testing.F) {
	for _, s := range []string{"", `{}`, `{"input": {"a": 1}, "name": "n"}`, `{"input": null}`, `{"cause": "x"}`,
		`{"output": [1, 2]}`, `{"error": "E", "cause": "c"}`, `{"name": 7}`, "\xff", `{"input": {}}{`} {
		f.Add(s)
	}
	env := newRunbookEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/runbooks/from-config/executions", "/v1/executions/abc/stop",
			"/v1/tokens/abc/approve", "/v1/tokens/abc/deny"} {
			r := call(t, env, "POST", path, apitest.AdminToken, body)
			switch r.status {
			case 200, 201:
				var v map[string]any
				if err := json.Unmarshal(r.body, &v); err != nil {
					t.Fatalf("%s: %d but not JSON: %s", path, r.status, r.body)
				}
			case 400, 404, 409:
				errorOf(t, r)
			default:
				t.Fatalf("%s with %q: status %d: %s", path, body, r.status, r.body)
			}
		}
	})
}
