package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/apitest"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
)

type result struct {
	status int
	body   []byte
	header http.Header
}

func call(t *testing.T, env *apitest.Env, method, path, token, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, b, resp.Header}
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

func errorOf(t *testing.T, r result) api.ErrorDetail {
	t.Helper()
	b := decode[api.ErrorBody](t, r)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error body lacks code or message: %s", r.body)
	}
	return b.Error
}

const pointA = "aaaaaaaaaaaaaaaa"

func TestReadRoutes(t *testing.T) {
	env := apitest.New(t, true)
	env.AddPoint(t, pointA, "app-files", "main", apitest.Now.Add(-time.Hour), 1000)
	env.AddPoint(t, "bbbbbbbbbbbbbbbb", "app-files", "offsite", apitest.Now.Add(-2*time.Hour), 1000)
	job := env.AddJob(t, &catalog.Job{Kind: catalog.JobBackup, Resource: "app-files", Vault: "main"})
	tok := apitest.ViewerToken

	sites := decode[api.List[catalog.Site]](t, call(t, env, "GET", "/v1/sites", tok, ""))
	if len(sites.Items) != 2 || sites.Items[0].Name != "primary" {
		t.Errorf("sites: %+v", sites)
	}
	vaults := decode[api.List[catalog.Vault]](t, call(t, env, "GET", "/v1/vaults", tok, ""))
	if len(vaults.Items) != 2 || vaults.Items[0].Name != "main" || vaults.Items[0].Site != "primary" {
		t.Errorf("vaults: %+v", vaults)
	}
	res := decode[api.List[catalog.Resource]](t, call(t, env, "GET", "/v1/resources", tok, ""))
	if len(res.Items) != 2 || res.Items[0].Name != "app-db" || res.Items[1].Kind != "files" {
		t.Errorf("resources: %+v", res)
	}
	plans := decode[api.List[api.Plan]](t, call(t, env, "GET", "/v1/plans", tok, ""))
	if len(plans.Items) != 1 {
		t.Fatalf("plans: %+v", plans)
	}
	p := plans.Items[0]
	want := apitest.Now.Add(5 * time.Minute)
	if p.Name != "gold" || len(p.Resources) != 1 || p.Resources[0] != "app-files" || len(p.Rules) != 1 ||
		p.Rules[0].NextRun == nil || !p.Rules[0].NextRun.Equal(want) || p.Rules[0].Vault != "main" ||
		p.Rules[0].StartWindow != "1h0m0s" || len(p.Rules[0].CopyTo) != 1 || p.Rules[0].Retention == "" {
		t.Errorf("plan: %+v", p)
	}
	jobs := decode[api.List[*catalog.Job]](t, call(t, env, "GET", "/v1/jobs?kind=backup&resource=app-files", tok, ""))
	if len(jobs.Items) != 1 || jobs.Items[0].ID != job.ID || jobs.Next != "" {
		t.Errorf("jobs: %+v", jobs)
	}
	got := decode[catalog.Job](t, call(t, env, "GET", "/v1/jobs/"+job.ID, tok, ""))
	if got.ID != job.ID || got.State != catalog.StateCreated {
		t.Errorf("job: %+v", got)
	}
	points := decode[api.List[*catalog.Point]](t, call(t, env, "GET", "/v1/points?resource=app-files&state=available", tok, ""))
	if len(points.Items) != 2 || points.Items[0].ID != pointA {
		t.Errorf("points (newest first): %+v", points)
	}
	points = decode[api.List[*catalog.Point]](t, call(t, env, "GET", "/v1/points?vault=offsite", tok, ""))
	if len(points.Items) != 1 {
		t.Errorf("points in offsite: %+v", points)
	}
	pt := decode[catalog.Point](t, call(t, env, "GET", "/v1/points/"+pointA, tok, ""))
	if pt.ID != pointA || pt.SizeBytes != 1000 {
		t.Errorf("point: %+v", pt)
	}
	if r := call(t, env, "GET", "/v1/points/cccccccccccccccc", tok, ""); r.status != 404 || errorOf(t, r).Code != "not_found" {
		t.Errorf("missing point: %d %s", r.status, r.body)
	}
	if r := call(t, env, "GET", "/v1/jobs/NOPE", tok, ""); r.status != 404 || errorOf(t, r).Hint == "" {
		t.Errorf("missing job: %d %s", r.status, r.body)
	}
	h := decode[api.Health](t, call(t, env, "GET", "/v1/health", "", ""))
	if h.Status != "ok" || h.Version != "test" || !h.Auth {
		t.Errorf("health: %+v", h)
	}
	doc := call(t, env, "GET", "/v1/openapi.yaml", "", "")
	if doc.status != 200 || !bytes.HasPrefix(doc.body, []byte("openapi: 3.1")) {
		t.Errorf("openapi: %d %.40s", doc.status, doc.body)
	}
	m := call(t, env, "GET", "/metrics", tok, "")
	if m.status != 200 || !bytes.Contains(m.body, []byte(`rewind_rpo_exposure_seconds{resource="app-files",site="primary"} 3600`)) ||
		!bytes.Contains(m.body, []byte(`rewind_rpo_exposure_seconds{resource="app-files",site="recovery"} 7200`)) ||
		!bytes.Contains(m.body, []byte("go_goroutines")) {
		t.Errorf("metrics: %d\n%s", m.status, m.body)
	}
}

func TestStartAndCancel(t *testing.T) {
	env := apitest.New(t, true)
	env.AddPoint(t, pointA, "app-files", "main", apitest.Now.Add(-time.Hour), 10)
	op := apitest.OperatorToken

	r := call(t, env, "POST", "/v1/jobs", op, `{"kind": "backup", "resource": "app-files"}`)
	if r.status != 201 {
		t.Fatalf("backup: %d %s", r.status, r.body)
	}
	j := decode[catalog.Job](t, r)
	if j.State != catalog.StatePending || j.Vault != "main" || r.header.Get("Location") != "/v1/jobs/"+j.ID {
		t.Errorf("backup job (vault from the plan): %+v %v", j, r.header)
	}
	r = call(t, env, "POST", "/v1/jobs", op, `{"kind":"restore","resource":"app-files","point":"latest","target":"/tmp/x"}`)
	if r.status != 201 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	reqs := env.Jobs.Requests()
	if last := reqs[len(reqs)-1]; last.Kind != catalog.JobRestore || last.Point != pointA || last.Vault != "main" || last.Target != "/tmp/x" {
		t.Errorf("restore request as resolved: %+v", last)
	}
	r = call(t, env, "POST", "/v1/jobs", op, `{"kind":"restore","resource":"app-db","point":"latest","target":"/tmp/x"}`)
	if r.status != 404 || !strings.Contains(errorOf(t, r).Message, "app-db") {
		t.Errorf("restore of a resource with no point: %d %s", r.status, r.body)
	}
	r = call(t, env, "POST", "/v1/jobs", op, `{"kind":"backup","resource":"nope","vault":"main"}`)
	if r.status != 404 {
		t.Errorf("unknown resource: %d %s", r.status, r.body)
	}
	r = call(t, env, "POST", "/v1/jobs", op, `{"kind":"backup","resource":"app-db"}`)
	if r.status != 400 || !strings.Contains(errorOf(t, r).Message, "vault") {
		t.Errorf("backup of a resource no plan selects, without vault: %d %s", r.status, r.body)
	}
	r = call(t, env, "POST", "/v1/jobs", op, `{"kind":"copy","vault":"main","targetVault":"offsite","point":"`+pointA+`"}`)
	if r.status != 201 {
		t.Errorf("copy: %d %s", r.status, r.body)
	}

	r = call(t, env, "POST", "/v1/jobs/"+j.ID+"/cancel", op, "")
	if r.status != 200 || decode[catalog.Job](t, r).State != catalog.StateAborted {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	r = call(t, env, "POST", "/v1/jobs/"+j.ID+"/cancel", op, "")
	if r.status != 409 || errorOf(t, r).Code != "conflict" {
		t.Errorf("cancel twice: %d %s", r.status, r.body)
	}
	r = call(t, env, "POST", "/v1/jobs/NOPE/cancel", op, "")
	if r.status != 404 {
		t.Errorf("cancel unknown: %d %s", r.status, r.body)
	}
	ev := decode[api.List[*catalog.Event]](t, call(t, env, "GET", "/v1/events?source=rewind.backup", op, ""))
	if len(ev.Items) != 7 { // 3 jobs x CREATED+PENDING, one ABORTED
		t.Errorf("events: %d, want 7", len(ev.Items))
	}
}

func TestPaging(t *testing.T) {
	env := apitest.New(t, false)
	var ids []string
	for range 5 {
		ids = append(ids, env.AddJob(t, &catalog.Job{Kind: catalog.JobVerify, Vault: "main"}).ID)
	}
	var seen []string
	after := ""
	for range 10 {
		path := "/v1/jobs?limit=2"
		if after != "" {
			path += "&after=" + after
		}
		r := call(t, env, "GET", path, "", "")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		page := decode[api.List[*catalog.Job]](t, r)
		for _, j := range page.Items {
			seen = append(seen, j.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Errorf("paged %v, want %v", seen, ids)
	}
}

func TestAuthMatrix(t *testing.T) {
	env := apitest.New(t, true)
	backup := `{"kind":"backup","resource":"app-files","vault":"main"}`
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"health needs no token", "GET", "/v1/health", "", "", 200, ""},
		{"openapi needs no token", "GET", "/v1/openapi.yaml", "", "", 200, ""},
		{"no token", "GET", "/v1/jobs", "", "", 401, "unauthorized"},
		{"wrong token", "GET", "/v1/jobs", "not-a-token-at-all-xx", "", 401, "unauthorized"},
		{"no token on metrics", "GET", "/metrics", "", "", 401, "unauthorized"},
		{"viewer reads", "GET", "/v1/jobs", apitest.ViewerToken, "", 200, ""},
		{"viewer reads metrics", "GET", "/metrics", apitest.ViewerToken, "", 200, ""},
		{"viewer may not start", "POST", "/v1/jobs", apitest.ViewerToken, backup, 403, "forbidden"},
		{"viewer may not cancel", "POST", "/v1/jobs/X/cancel", apitest.ViewerToken, "", 403, "forbidden"},
		{"operator starts", "POST", "/v1/jobs", apitest.OperatorToken, backup, 201, ""},
		{"admin starts", "POST", "/v1/jobs", apitest.AdminToken, backup, 201, ""},
		{"admin reads", "GET", "/v1/plans", apitest.AdminToken, "", 200, ""},
		{"wrong token on POST", "POST", "/v1/jobs", "nope-nope-nope-nope", backup, 401, "unauthorized"},
		{"agent may not read jobs", "GET", "/v1/jobs", apitest.AgentToken, "", 403, "forbidden"},
		{"agent may not start jobs", "POST", "/v1/jobs", apitest.AgentToken, backup, 403, "forbidden"},
		{"operator may not claim", "POST", "/v1/agents/db1/claim", apitest.OperatorToken, "", 403, "forbidden"},
		{"viewer may not report", "POST", "/v1/agents/db1/jobs/job1/heartbeat", apitest.ViewerToken, `{}`, 403, "forbidden"},
		{"no token may not claim", "POST", "/v1/agents/db1/claim", "", "", 401, "unauthorized"},
		{"agent claims", "POST", "/v1/agents/db1/claim", apitest.AgentToken, "", 200, ""},
		{"nothing left to claim", "POST", "/v1/agents/db1/claim", apitest.AgentToken, "", 204, ""},
		{"admin may claim", "POST", "/v1/agents/db2/claim", apitest.AdminToken, "", 204, ""},
		{"agent heartbeat", "POST", "/v1/agents/db1/jobs/job1/heartbeat", apitest.AgentToken, `{"bytesDone":5}`, 204, ""},
		{"agent finish", "POST", "/v1/agents/db1/jobs/job1/finish", apitest.AgentToken, `{"counts":{"files":1}}`, 204, ""},
		{"taken back", "POST", "/v1/agents/db1/jobs/gone/heartbeat", apitest.AgentToken, `{}`, 409, "conflict"},
		{"report not JSON", "POST", "/v1/agents/db1/jobs/job1/finish", apitest.AgentToken, `[1]`, 400, "invalid"},
		{"bad host name", "POST", "/v1/agents/..%2f/claim", apitest.AgentToken, "", 400, "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, env, c.method, c.path, c.token, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.code != "" {
				if e := errorOf(t, r); e.Code != c.code || e.Hint == "" {
					t.Errorf("error %+v, want code %s with a hint", e, c.code)
				}
			}
			if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	req, _ := http.NewRequest("GET", env.URL+"/v1/jobs", nil)
	req.Header.Set("Authorization", "Basic "+apitest.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Basic scheme: %d, want 401", resp.StatusCode)
	}
}

func TestNoTokensAllowsAll(t *testing.T) {
	env := apitest.New(t, false)
	if r := call(t, env, "POST", "/v1/jobs", "", `{"kind":"prune","vault":"main"}`); r.status != 201 {
		t.Errorf("start without tokens: %d %s", r.status, r.body)
	}
	if h := decode[api.Health](t, call(t, env, "GET", "/v1/health", "", "")); h.Auth {
		t.Error("health says auth is required")
	}
}

func TestStartJobValidation(t *testing.T) {
	env := apitest.New(t, true)
	env.AddPoint(t, pointA, "app-files", "main", apitest.Now.Add(-time.Hour), 10)
	env.Store.Tx(context.Background(), func(tx catalog.Tx) error {
		_, err := tx.MarkPointDeleted(context.Background(), pointA)
		return err
	})
	cases := []struct {
		name, body, contentType string
		status                  int
		want                    string
	}{
		{"empty body", "", "", 400, "empty"},
		{"not JSON", "kind=backup", "", 400, "not a JSON object"},
		{"array", `[{"kind":"backup"}]`, "", 400, "not a JSON object"},
		{"syntax", `{"kind": "backup",}`, "", 400, "not valid JSON"},
		{"truncated", `{"kind": "backup"`, "", 400, "truncated"},
		{"unknown field", `{"kind":"backup","resource":"app-files","vault":"main","force":true}`, "", 400, `unknown field "force"`},
		{"wrong type", `{"kind":"backup","resource":7}`, "", 400, `field "resource" must be a string`},
		{"two values", `{"kind":"prune","vault":"main"} {}`, "", 400, "more than one JSON value"},
		{"trailing junk", `{"kind":"prune","vault":"main"} x`, "", 400, "more than one"},
		{"invalid UTF-8", "{\"kind\":\"backup\",\"resource\":\"\xff\"}", "", 400, "UTF-8"},
		{"too big", `{"kind":"backup","resource":"` + strings.Repeat("a", api.MaxBodySize) + `"}`, "", 400, "larger than"},
		{"case-folded field", `{"KIND":"prune","vault":"main"}`, "", 400, "case-sensitive"},
		{"duplicate field", `{"kind":"prune","vault":"main","vault":"offsite"}`, "", 400, "given twice"},
		{"null kind", `{"kind":null}`, "", 400, `"kind" is required`},
		{"no kind", `{"resource":"app-files"}`, "", 400, `"kind" is required`},
		{"bad kind", `{"kind":"explode"}`, "", 400, "not one of backup"},
		{"bad name", `{"kind":"backup","resource":"../etc","vault":"main"}`, "", 400, "not a valid name"},
		{"backup without resource", `{"kind":"backup","vault":"main"}`, "", 400, `needs field "resource"`},
		{"backup with target", `{"kind":"backup","resource":"app-files","vault":"main","target":"/x"}`, "", 400, `takes no field "target"`},
		{"restore without target", `{"kind":"restore","resource":"app-files","point":"latest"}`, "", 400, `needs field "target"`},
		{"restore bad point", `{"kind":"restore","resource":"app-files","point":"LATEST!","target":"/x"}`, "", 400, "neither"},
		{"restore deleted point", `{"kind":"restore","resource":"app-files","point":"` + pointA + `","target":"/x"}`, "", 409, "DELETED"},
		{"copy to itself", `{"kind":"copy","vault":"main","targetVault":"main"}`, "", 400, "both"},
		{"prune without vault", `{"kind":"prune"}`, "", 400, `needs field "vault"`},
		{"unknown vault", `{"kind":"prune","vault":"ghost"}`, "", 404, "ghost"},
		{"target control char", `{"kind":"restore","resource":"app-files","point":"latest","target":"/x\n"}`, "", 400, "control character"},
		{"wrong content type", `{"kind":"prune","vault":"main"}`, "text/plain", 400, "Content-Type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", env.URL+"/v1/jobs", strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+apitest.OperatorToken)
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			r := result{resp.StatusCode, b, resp.Header}
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if e := errorOf(t, r); !strings.Contains(e.Message, c.want) {
				t.Errorf("message %q lacks %q", e.Message, c.want)
			}
		})
	}
	if n := len(env.Jobs.Requests()); n != 0 {
		t.Errorf("%d jobs started by invalid requests", n)
	}
	jobs := decode[api.List[*catalog.Job]](t, call(t, env, "GET", "/v1/jobs", apitest.ViewerToken, ""))
	if len(jobs.Items) != 0 {
		t.Errorf("catalog holds %d jobs after invalid requests", len(jobs.Items))
	}
}

func TestQueryValidation(t *testing.T) {
	env := apitest.New(t, false)
	cases := []struct{ path, want string }{
		{"/v1/jobs?color=red", `unknown query parameter "color"`},
		{"/v1/jobs?limit=0", "limit"},
		{"/v1/jobs?limit=5000", "limit"},
		{"/v1/jobs?limit=1&limit=2", "2 times"},
		{"/v1/jobs?state=DONE", "not a job state"},
		{"/v1/jobs?kind=nap", "not one of"},
		{"/v1/jobs?since=yesterday", "RFC 3339"},
		{"/v1/jobs?resource=", "empty"},
		{"/v1/jobs?resource=a%20b", "not a valid name"},
		{"/v1/points?state=GONE", "AVAILABLE"},
		{"/v1/points?after=garbage", "cursor"},
		{"/v1/sites?x=1", "unknown query parameter"},
		{"/v1/events?until=1", "RFC 3339"},
		{"/v1/events?source=%ff", "UTF-8"},
	}
	for _, c := range cases {
		r := call(t, env, "GET", c.path, "", "")
		if r.status != 400 {
			t.Errorf("%s: status %d: %s", c.path, r.status, r.body)
			continue
		}
		if e := errorOf(t, r); !strings.Contains(e.Message+" "+e.Hint, c.want) {
			t.Errorf("%s: %+v lacks %q", c.path, e, c.want)
		}
	}
	if r := call(t, env, "DELETE", "/v1/jobs", "", ""); r.status != 405 || r.header.Get("Allow") != "GET, POST" ||
		errorOf(t, r).Code != "method_not_allowed" {
		t.Errorf("DELETE /v1/jobs: %d %v %s", r.status, r.header, r.body)
	}
	if r := call(t, env, "GET", "/v2/nothing", "", ""); r.status != 404 || errorOf(t, r).Code != "not_found" {
		t.Errorf("unknown route: %d %s", r.status, r.body)
	}
}

func TestErrorStatusPerKind(t *testing.T) {
	env := apitest.New(t, false)
	cases := []struct {
		kind   errs.Kind
		status int
		code   string
	}{
		{errs.Invalid, 400, "invalid"},
		{errs.NotFound, 404, "not_found"},
		{errs.Exists, 409, "already_exists"},
		{errs.Conflict, 409, "conflict"},
		{errs.Unauthorized, 401, "unauthorized"},
		{errs.Locked, 423, "locked"},
		{errs.Corrupt, 500, "corrupt"},
		{errs.Unavailable, 503, "unavailable"},
		{errs.Canceled, 503, "canceled"},
		{errs.Internal, 500, "internal"},
		{errs.Other, 500, "error"},
	}
	for _, c := range cases {
		env.Jobs.SetErr(errs.Errorf("jobs.Cancel", c.kind, "it went %s", c.kind).WithHint("do the thing"))
		r := call(t, env, "POST", "/v1/jobs/X/cancel", "", "")
		if r.status != c.status {
			t.Errorf("%v: status %d, want %d", c.kind, r.status, c.status)
		}
		e := errorOf(t, r)
		if e.Code != c.code || e.Message != "it went "+c.kind.String() || e.Hint != "do the thing" {
			t.Errorf("%v: %+v", c.kind, e)
		}
		if api.KindOfCode(e.Code) != c.kind {
			t.Errorf("KindOfCode(%q) = %v, want %v", e.Code, api.KindOfCode(e.Code), c.kind)
		}
	}
}

// TestOpenAPIMatchesRoutes checks that api/openapi.yaml documents every route the server
// registers, and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	env := apitest.New(t, false)
	data, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	served := call(t, env, "GET", "/v1/openapi.yaml", "", "")
	if !bytes.Equal(served.body, data) {
		t.Error("the served document differs from api/openapi.yaml")
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "patch", "delete", "head", "options":
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range env.API.Routes() {
		registered[r.Method+" "+r.Path] = true
		if !documented[r.Method+" "+r.Path] {
			t.Errorf("route %s %s is not in api/openapi.yaml", r.Method, r.Path)
		}
		ops := doc.Paths[r.Path][strings.ToLower(r.Method)]
		sec, hasSec := ops.(map[string]any)["security"]
		if open := hasSec && len(sec.([]any)) == 0; open != (r.Role == "") {
			t.Errorf("%s %s: document says unauthenticated=%v, server role %q", r.Method, r.Path, open, r.Role)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("api/openapi.yaml documents %s, which the server does not register", k)
		}
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr   string
		tokens int
		ok     bool
	}{
		{"127.0.0.1:8420", 0, true},
		{"127.0.0.2:8420", 0, true},
		{"[::1]:8420", 0, true},
		{"localhost:8420", 0, true},
		{":8420", 0, false},
		{"0.0.0.0:8420", 0, false},
		{"[::]:8420", 0, false},
		{"192.0.2.10:8420", 0, false},
		{"backup.example.com:8420", 0, false},
		{"0.0.0.0:8420", 1, true},
		{":8420", 2, true},
		{"8420", 1, false},
		{"", 0, false},
	}
	for _, c := range cases {
		err := api.CheckListen(c.addr, c.tokens)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %d) = %v, want ok=%v", c.addr, c.tokens, err, c.ok)
		}
		if err != nil && (!errs.Is(err, errs.Invalid) || errs.HintOf(err) == "") {
			t.Errorf("CheckListen(%q, %d): %v is not Invalid with a hint", c.addr, c.tokens, err)
		}
	}
}

func TestListenNotice(t *testing.T) {
	if n := api.ListenNotice("127.0.0.1:8420", 0); !strings.Contains(n, "NO authentication") || !strings.Contains(n, "127.0.0.1:8420") {
		t.Errorf("no tokens: %q", n)
	}
	if n := api.ListenNotice("0.0.0.0:8420", 3); strings.Contains(n, "NO authentication") || !strings.Contains(n, "3 API token") {
		t.Errorf("tokens: %q", n)
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  s3cr3t-value-0123456789\n")
	other := write("other", "another-value-0123456789")
	short := write("short", "abc")
	empty := write("empty", "\n")
	toks, err := api.LoadTokens(config.Auth{Tokens: []config.Token{
		{Name: "a", Role: config.RoleViewer, TokenFile: good},
		{Name: "b", Role: config.RoleAdmin, TokenFile: other},
	}})
	if err != nil || len(toks) != 2 || toks[0].Value != "s3cr3t-value-0123456789" || toks[1].Role != config.RoleAdmin {
		t.Fatalf("LoadTokens: %+v %v", toks, err)
	}
	bad := []struct {
		tok  config.Token
		kind errs.Kind
		want string
	}{
		{config.Token{Name: "m", Role: config.RoleViewer, TokenFile: filepath.Join(dir, "missing")}, errs.NotFound, `token "m"`},
		{config.Token{Name: "s", Role: config.RoleViewer, TokenFile: short}, errs.Invalid, "at least"},
		{config.Token{Name: "e", Role: config.RoleViewer, TokenFile: empty}, errs.Invalid, "holds 0 bytes"},
		{config.Token{Name: "r", Role: "root", TokenFile: good}, errs.Invalid, "role"},
		{config.Token{Name: "dup", Role: config.RoleViewer, TokenFile: good}, errs.Invalid, "same value"},
	}
	for _, b := range bad {
		_, err := api.LoadTokens(config.Auth{Tokens: []config.Token{{Name: "a", Role: config.RoleViewer, TokenFile: good}, b.tok}})
		if !errs.Is(err, b.kind) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want %v containing %q", b.tok.Name, err, b.kind, b.want)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	env := apitest.New(t, false)
	if _, err := api.New(api.Options{Store: env.Store, Config: env.Config}); !errs.Is(err, errs.Invalid) {
		t.Errorf("no Jobs: %v", err)
	}
	_, err := api.New(api.Options{Store: env.Store, Config: env.Config, Jobs: env.Jobs,
		Tokens: []api.Token{{Name: "x", Role: config.RoleViewer}}})
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("token without value: %v", err)
	}
}

// FuzzStartJob checks that the request decoder never panics, that what it accepts passes
// Check, and that an accepted request survives a round trip through JSON.
func FuzzStartJob(f *testing.F) {
	for _, s := range []string{
		`{"kind":"backup","resource":"app-files","vault":"main"}`,
		`{"kind":"restore","resource":"r","point":"latest","target":"/x"}`,
		`{"kind":"copy","vault":"a","targetVault":"b","point":"0123abcd"}`,
		`{"kind":"prune","vault":"v"}`, `{}`, `[]`, `{"kind":1}`, "\xff", `{"kind":"verify","vault":"v"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := api.DecodeJobRequest(bytes.NewReader(data))
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error of kind %v: %v", errs.KindOf(err), err)
			}
			return
		}
		if err := req.Check(); err != nil {
			t.Fatalf("accepted request fails Check: %v", err)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := api.DecodeJobRequest(bytes.NewReader(b))
		if err != nil || again != req {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", req, b, again, err)
		}
	})
}
