package signaltasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/orchestrate/signaltasks"
	"github.com/rewind-dr/rewind/internal/runbook"
)

var ctx = context.Background()

func setup(t testing.TB) (runbook.Registry, catalog.Store) {
	t.Helper()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := runbook.Registry{}
	signaltasks.Register(reg, signaltasks.Deps{Store: st, Site: "primary"})
	return reg, st
}

func run(reg runbook.Registry, resource, input string) (any, error) {
	return reg[resource].Run(ctx, runbook.TaskInput{Resource: resource, State: "S", Execution: "exec1", Input: json.RawMessage(input)})
}

func taskError(t *testing.T, err error, name, contains string) {
	t.Helper()
	var te *runbook.TaskError
	if !errors.As(err, &te) || te.Name != name || !strings.Contains(te.Cause, contains) {
		t.Errorf("error %v, want %s containing %q", err, name, contains)
	}
}

func TestRegisterMarksEveryTaskIdempotent(t *testing.T) {
	reg, _ := setup(t)
	for _, r := range []string{signaltasks.EventResource, signaltasks.NotifyResource, signaltasks.WaitHealthyResource} {
		if spec, ok := reg[r]; !ok || spec.Run == nil || !spec.Idempotent {
			t.Errorf("%s: registered %v, idempotent %v", r, ok, spec.Idempotent)
		}
	}
}

func TestEventGoesToTheOutbox(t *testing.T) {
	reg, st := setup(t)
	if _, err := run(reg, signaltasks.EventResource, `{"DetailType": "Failover Started", "Detail": {"site": "recovery"}, "Resources": ["orders-db"]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := run(reg, signaltasks.EventResource, `{"Source": "shop.drills", "DetailType": "Drill"}`); err != nil {
		t.Fatal(err)
	}
	var evs []*catalog.Event
	err := st.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		evs, err = tx.ListEvents(ctx, catalog.EventFilter{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	e := evs[0]
	if e.Source != catalog.RunbookEventSource || e.DetailType != "Failover Started" || e.Site != "primary" ||
		strings.Join(e.Resources, ",") != "exec1,orders-db" || string(e.Detail) != `{"site":"recovery"}` && string(e.Detail) != `{"site": "recovery"}` {
		t.Errorf("event: %+v detail %s", e, e.Detail)
	}
	if evs[1].Source != "shop.drills" || string(evs[1].Detail) != "{}" {
		t.Errorf("second event: %+v detail %s", evs[1], evs[1].Detail)
	}
}

func TestEventRefusesBadParameters(t *testing.T) {
	reg, _ := setup(t)
	for _, c := range []struct{ in, contains string }{
		{`{}`, "DetailType is required"},
		{`{"DetailType": "x", "Source": "rewind.backup"}`, "reserved"},
		{`{"DetailType": "x", "Detail": [1]}`, "JSON object"},
		{`{"DetailType": "x", "detail": {}}`, "unknown field"},
		{`{"DetailType": "` + strings.Repeat("x", 129) + `"}`, "128"},
		{`"text"`, "Parameters"},
	} {
		_, err := run(reg, signaltasks.EventResource, c.in)
		taskError(t, err, signaltasks.ErrInvalidParams, c.contains)
	}
}

func TestNotify(t *testing.T) {
	reg, _ := setup(t)
	var (
		mu   sync.Mutex
		got  []string
		fail atomic.Bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	url := "generic+" + srv.URL + "/hook"
	out, err := run(reg, signaltasks.NotifyResource, `{"URL": "`+url+`", "Message": "failover approved", "Title": "Rewind"}`)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := out.(map[string]any); !ok || m["Sent"] != true {
		t.Errorf("output %v", out)
	}
	file := filepath.Join(t.TempDir(), "notify.url")
	if err := os.WriteFile(file, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(reg, signaltasks.NotifyResource, `{"URLFile": "`+file+`", "Message": "from a file"}`); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 2 || !strings.Contains(got[0], "failover approved") || !strings.Contains(got[1], "from a file") {
		t.Errorf("received %q", got)
	}
	mu.Unlock()

	fail.Store(true)
	_, err = run(reg, signaltasks.NotifyResource, `{"URL": "`+url+`", "Message": "m"}`)
	taskError(t, err, signaltasks.ErrNotifyFailed, "generic")
	if err != nil && strings.Contains(err.Error(), srv.URL) {
		t.Errorf("the error shows the notification URL: %v", err)
	}

	for _, c := range []struct{ in, contains string }{
		{`{"Message": "m"}`, "exactly one of URL and URLFile"},
		{`{"URL": "` + url + `", "URLFile": "/x", "Message": "m"}`, "exactly one of URL and URLFile"},
		{`{"URL": "` + url + `"}`, "Message is required"},
		{`{"URL": "nosuchservice://x", "Message": "m"}`, "not valid"},
		{`{"URLFile": "/no/such/file", "Message": "m"}`, "URLFile"},
		{`{"URL": "` + url + `", "Message": "m", "TimeoutSeconds": -1}`, "negative"},
	} {
		_, err := run(reg, signaltasks.NotifyResource, c.in)
		taskError(t, err, signaltasks.ErrInvalidParams, c.contains)
	}
}

func TestWaitHealthy(t *testing.T) {
	reg, _ := setup(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready")
	}))
	defer srv.Close()
	out, err := run(reg, signaltasks.WaitHealthyResource, `{"URL": "`+srv.URL+`", "ExpectBody": "ready", "IntervalSeconds": 0.1, "TimeoutSeconds": 20, "HealthyThreshold": 2}`)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := out.(signaltasks.WaitHealthyOutput)
	if !ok || !o.Healthy || o.Probes != 4 {
		t.Errorf("output %+v, want healthy after 4 probes (2 failing, 2 healthy in a row)", out)
	}

	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	if _, err := run(reg, signaltasks.WaitHealthyResource, `{"Address": "`+addr+`", "IntervalSeconds": 0.1, "TimeoutSeconds": 5}`); err != nil {
		t.Errorf("tcp probe: %v", err)
	}
	ln.Close()
	_, err = run(reg, signaltasks.WaitHealthyResource, `{"Address": "`+addr+`", "IntervalSeconds": 0.1, "TimeoutSeconds": 0.5}`)
	taskError(t, err, signaltasks.ErrUnhealthy, "not healthy after")

	_, err = run(reg, signaltasks.WaitHealthyResource, `{"Probe": {"command": {"command": ["false"]}}, "IntervalSeconds": 0.1, "TimeoutSeconds": 0.4}`)
	taskError(t, err, signaltasks.ErrUnhealthy, "probes")

	for _, c := range []struct{ in, contains string }{
		{`{}`, "exactly one of URL, Address and Probe"},
		{`{"URL": "http://x", "Address": "x:1"}`, "exactly one"},
		{`{"Address": "x:1", "ExpectStatus": 200}`, "go with URL"},
		{`{"URL": "ftp://x"}`, "http"},
		{`{"Address": "nohostport"}`, "host:port"},
		{`{"Address": "x:1", "IntervalSeconds": 0.01}`, "IntervalSeconds"},
		{`{"Address": "x:1", "TimeoutSeconds": 0}`, "TimeoutSeconds"},
		{`{"Address": "x:1", "HealthyThreshold": -1}`, "HealthyThreshold"},
		{`{"Probe": {"http": {"url": "http://x"}, "tcp": {"address": "x:1"}}}`, "exactly one"},
		{`{"Probe": {"every": 5}}`, "unknown field"},
	} {
		_, err := run(reg, signaltasks.WaitHealthyResource, c.in)
		taskError(t, err, signaltasks.ErrInvalidParams, c.contains)
	}
}

// FuzzEventParameters: any Parameters either append one event or fail with
// Rewind.InvalidParameters; nothing else, and no panic.
func FuzzEventParameters(f *testing.F) {
	for _, s := range []string{`{"DetailType": "x"}`, `{}`, `{"DetailType": "x", "Detail": {"a": [1]}, "Resources": ["r"]}`,
		`{"DetailType": "x", "Source": "rewind.runbook"}`, `null`, `{"DetailType": "x", "Detail": null}`, "\xff"} {
		f.Add(s)
	}
	reg, _ := setup(f)
	f.Fuzz(func(t *testing.T, in string) {
		_, err := run(reg, signaltasks.EventResource, in)
		var te *runbook.TaskError
		if err != nil && (!errors.As(err, &te) || te.Name != signaltasks.ErrInvalidParams) {
			t.Fatalf("%q: %v", in, err)
		}
	})
}
