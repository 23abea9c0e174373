package localtasks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/runbook"
	"github.com/rewind-dr/rewind/internal/runbook/localtasks"
)

func input(v string) runbook.TaskInput {
	return runbook.TaskInput{Resource: "test", State: "S", Execution: "x1", Input: json.RawMessage(v)}
}

func taskErr(t *testing.T, err error) *runbook.TaskError {
	t.Helper()
	var te *runbook.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *runbook.TaskError", err)
	}
	return te
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	tests := []struct {
		name, in, want, errName, causeHas string
	}{
		{name: "json stdout", in: `{"Command": "printf", "Args": ["{\"a\": [1, 2]}\n"]}`, want: `{"a":[1,2]}`},
		{name: "text stdout", in: `{"Command": "echo", "Args": ["hello world"]}`, want: `"hello world"`},
		{name: "env", in: `{"Command": "sh", "Args": ["-c", "printf %s \"$REWIND_X\""], "Env": {"REWIND_X": "42"}}`, want: `42`},
		{name: "dir", in: `{"Command": "pwd", "Dir": "` + dir + `"}`, want: `"` + dir + `"`},
		{name: "stdin", in: `{"Command": "cat", "Stdin": "[true]"}`, want: `[true]`},
		{name: "non-zero exit", in: `{"Command": "sh", "Args": ["-c", "echo broken >&2; exit 3"]}`, errName: "Exec.NonZeroExit", causeHas: "broken"},
		{name: "not found", in: `{"Command": "rewind-no-such-command"}`, errName: "Exec.StartFailed"},
		{name: "timeout", in: `{"Command": "sleep", "Args": ["30"], "TimeoutSeconds": 1}`, errName: "Exec.Timeout"},
		{name: "missing command", in: `{"Args": ["x"]}`, errName: "Task.InvalidInput", causeHas: "Command is required"},
		{name: "unknown field", in: `{"Command": "true", "Cmd": "x"}`, errName: "Task.InvalidInput", causeHas: "Cmd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := localtasks.Exec(ctx, input(tt.in))
			if tt.errName != "" {
				te := taskErr(t, err)
				if te.Name != tt.errName || !strings.Contains(te.Cause, tt.causeHas) {
					t.Fatalf("error %s %q, want %s containing %q", te.Name, te.Cause, tt.errName, tt.causeHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := asJSON(t, out); got != tt.want {
				t.Errorf("output %s, want %s", got, tt.want)
			}
		})
	}
}

func TestExecCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := localtasks.Exec(ctx, input(`{"Command": "sleep", "Args": ["30"]}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Seen", r.Header.Get("X-Token"))
			_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "body": string(body), "ct": r.Header.Get("Content-Type")})
		case "/text":
			_, _ = io.WriteString(w, "plain "+string(body))
		default:
			http.Error(w, "nothing here", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	task := localtasks.HTTP(srv.Client())
	ctx := context.Background()

	out, err := task(ctx, input(`{"Method": "post", "URL": "`+srv.URL+`/json", "Headers": {"X-Token": "t"}, "Body": {"a": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	res := out.(localtasks.HTTPOutput)
	if res.StatusCode != 200 || res.Headers["X-Seen"] != "t" || asJSON(t, res.Body) != `{"body":"{\"a\": 1}","ct":"application/json","method":"POST"}` {
		t.Errorf("json call: %+v %s", res, asJSON(t, res.Body))
	}
	out, err = task(ctx, input(`{"URL": "`+srv.URL+`/text", "Method": "PUT", "Body": "raw"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res := out.(localtasks.HTTPOutput); res.Body != "plain raw" {
		t.Errorf("text call: %+v", res)
	}
	_, err = task(ctx, input(`{"URL": "`+srv.URL+`/missing"}`))
	if te := taskErr(t, err); te.Name != "Http.StatusCode.404" || !strings.Contains(te.Cause, "nothing here") {
		t.Errorf("404: %+v", te)
	}
	_, err = task(ctx, input(`{"URL": "ftp://example"}`))
	if te := taskErr(t, err); te.Name != "Task.InvalidInput" {
		t.Errorf("bad URL: %+v", te)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, err = task(ctx, input(`{"URL": "`+closed.URL+`"}`))
	if te := taskErr(t, err); te.Name != "Http.RequestFailed" {
		t.Errorf("closed server: %+v", te)
	}
}

func TestEvent(t *testing.T) {
	var buf bytes.Buffer
	out, err := localtasks.Event(&buf)(context.Background(), input(`{"DetailType": "restore.done"}`))
	if err != nil {
		t.Fatal(err)
	}
	if asJSON(t, out) != `{"DetailType":"restore.done"}` {
		t.Errorf("output %s", asJSON(t, out))
	}
	if buf.String() != `{"event":{"DetailType":"restore.done"},"execution":"x1","state":"S"}`+"\n" {
		t.Errorf("event line %q", buf.String())
	}
}

func TestRegistryRunsInEngine(t *testing.T) {
	var events bytes.Buffer
	reg := localtasks.Registry(localtasks.Options{Events: &events})
	def, err := runbook.Parse([]byte(`{"StartAt": "Run", "States": {
		"Run": {"Type": "Task", "Resource": "rewind:exec", "Parameters": {"Command": "sh", "Args": ["-c", "exit 2"]},
		        "Catch": [{"ErrorEquals": ["Exec.NonZeroExit"], "ResultPath": "$.err", "Next": "Tell"}], "End": true},
		"Tell": {"Type": "Task", "Resource": "rewind:event", "Parameters": {"failed.$": "$.err.Error"}, "End": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	x, err := runbook.NewEngine(reg, runbook.Options{}).Start(context.Background(), def, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	res, _ := x.Wait(context.Background())
	if res.Status != runbook.Succeeded || string(res.Output) != `{"failed":"Exec.NonZeroExit"}` {
		t.Fatalf("%+v %s", res, res.Output)
	}
	if !strings.Contains(events.String(), `"failed":"Exec.NonZeroExit"`) {
		t.Errorf("event output %q", events.String())
	}
}
