package api_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
)

// TestApprovalPage: the link of a notification opens a page that decides nothing; its
// buttons approve or deny without a bearer token (the task token authorizes), once.
func TestApprovalPage(t *testing.T) {
	env := newRunbookEnv(t)
	putRunbook(t, env, "gate", gateDef)
	page := func(method, tok string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, env.URL+"/approve/"+tok, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, decision := range []string{"approve", "deny"} {
		e := startExecution(t, env, "gate", `{"input": {"site": "recovery"}}`)
		tok := openToken(waitDetail(t, env, e.ID, "the gate's token", func(d api.ExecutionDetail) bool { return openToken(d) != "" }))
		// Opening the link (as a mail scanner would) decides nothing.
		for range 2 {
			if code, body := page("GET", tok, nil); code != 200 || !strings.Contains(body, "Approve") || !strings.Contains(body, "gate") {
				t.Fatalf("GET page: %d %s", code, body)
			}
		}
		if d := waitDetail(t, env, e.ID, "still waiting", func(d api.ExecutionDetail) bool { return true }); d.Status != catalog.ExecutionRunning {
			t.Fatalf("opening the link changed the execution: %+v", d.Execution)
		}
		if decision == "deny" {
			if code, _ := page("POST", tok, url.Values{"decision": {"deny"}}); code != 400 {
				t.Errorf("deny without a reason: %d", code)
			}
		}
		code, body := page("POST", tok, url.Values{"decision": {decision}, "reason": {"the primary came back"}})
		if code != 200 || !strings.Contains(body, "Already decided") {
			t.Fatalf("%s through the page: %d %s", decision, code, body)
		}
		want := catalog.ExecutionSucceeded
		if decision == "deny" {
			want = catalog.ExecutionFailed
		}
		d := waitDetail(t, env, e.ID, "the decision", func(d api.ExecutionDetail) bool { return d.Status != catalog.ExecutionRunning })
		if d.Status != want {
			t.Errorf("%s: execution %s, want %s (%s %s)", decision, d.Status, want, d.Error, d.Cause)
		}
		// A decided token cannot be decided again.
		if code, _ := page("POST", tok, url.Values{"decision": {"approve"}}); code != 409 {
			t.Errorf("second decision: %d, want 409", code)
		}
	}
	if code, _ := page("GET", "0123456789abcdef0123456789abcdef", nil); code != 404 {
		t.Errorf("unknown token: %d", code)
	}
	if code, _ := page("POST", "0123456789abcdef", url.Values{"decision": {"maybe"}}); code != 400 {
		t.Errorf("bad decision: %d", code)
	}
}
