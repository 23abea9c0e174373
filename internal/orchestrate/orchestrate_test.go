package orchestrate_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/orchestrate"
	"github.com/rewind-dr/rewind/internal/runbook"
)

var ctx = context.Background()

// tasks is a registry whose tasks count their calls.
type tasks struct {
	mu      sync.Mutex
	calls   map[string]int // state name -> calls
	tokens  chan string    // tokens handed out by test:notify
	blocked chan struct{}  // test:block and test:blockonce signal they started
	release bool           // test:block returns at once
}

func newTasks() *tasks {
	return &tasks{calls: map[string]int{}, tokens: make(chan string, 8), blocked: make(chan struct{}, 8)}
}

func (k *tasks) count(state string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[state]
}

func (k *tasks) registry() runbook.Registry {
	hit := func(in runbook.TaskInput) {
		k.mu.Lock()
		k.calls[in.State]++
		k.mu.Unlock()
	}
	block := func(ctx context.Context, in runbook.TaskInput) (any, error) {
		hit(in)
		k.mu.Lock()
		rel := k.release
		k.mu.Unlock()
		if rel {
			return map[string]any{"slow": "done"}, nil
		}
		k.blocked <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return runbook.Registry{
		"test:count": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			hit(in)
			return map[string]any{"state": in.State}, nil
		}},
		"test:block":     {Run: block, Idempotent: true},
		"test:blockonce": {Run: block},
		"test:notify": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			hit(in)
			k.tokens <- in.Token
			return nil, nil
		}},
	}
}

func openStore(t *testing.T, path string, shift time.Duration) catalog.Store {
	t.Helper()
	s, err := sqlstore.Open(ctx, path, sqlstore.Options{Now: func() time.Time { return time.Now().Add(shift) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newService(t *testing.T, store catalog.Store, reg runbook.Registry, owner string) *orchestrate.Service {
	t.Helper()
	s, err := orchestrate.New(orchestrate.Options{Store: store, Registry: reg, Owner: owner, Lease: 30 * time.Second,
		Poll: 20 * time.Millisecond, Site: "paris"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempCatalog(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }

func getExec(t *testing.T, s catalog.Store, id string) *catalog.Execution {
	t.Helper()
	var e *catalog.Execution
	if err := s.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		e, err = tx.GetExecution(ctx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

func history(t *testing.T, s catalog.Store, id string) []string {
	t.Helper()
	var types []string
	if err := s.Tx(ctx, func(tx catalog.Tx) error {
		hs, err := tx.ListHistory(ctx, id)
		for _, h := range hs {
			types = append(types, h.Type)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return types
}

// waitFor polls until cond holds; the deadline only bounds a failing test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitStatus(t *testing.T, s catalog.Store, id string, want catalog.ExecutionStatus) *catalog.Execution {
	t.Helper()
	var e *catalog.Execution
	waitFor(t, "execution "+string(want), func() bool {
		e = getExec(t, s, id)
		return e.Status.Terminal()
	})
	if e.Status != want {
		t.Fatalf("execution %s: status %s (%s: %s), want %s", id, e.Status, e.Error, e.Cause, want)
	}
	return e
}

func hasEvent(t *testing.T, s catalog.Store, id, typ string) bool {
	for _, h := range history(t, s, id) {
		if h == typ {
			return true
		}
	}
	return false
}

func TestRunAndStatusEvents(t *testing.T) {
	store := openStore(t, tempCatalog(t), 0)
	k := newTasks()
	svc := newService(t, store, k.registry(), "srv-a")
	def := `StartAt: Count
States:
  Count: {Type: Task, Resource: "test:count", ResultPath: $.count, Next: Done}
  Done: {Type: Succeed}
`
	if _, err := svc.PutRunbook(ctx, "hello", []byte(def), catalog.RunbookFromAPI); err != nil {
		t.Fatal(err)
	}
	x, err := svc.Start(ctx, "hello", json.RawMessage(`{"site":"paris"}`), "first")
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != catalog.ExecutionRunning || x.Runbook != "hello" || x.Name != "first" || x.Owner != "srv-a" {
		t.Fatalf("started %+v", x)
	}
	e := waitStatus(t, store, x.ID, catalog.ExecutionSucceeded)
	if !strings.Contains(string(e.Output), `"count":{"state":"Count"}`) || e.LeaseUntil != nil {
		t.Fatalf("output %s lease %v", e.Output, e.LeaseUntil)
	}
	types := history(t, store, x.ID)
	if types[0] != "ExecutionStarted" || types[len(types)-1] != "ExecutionSucceeded" {
		t.Fatalf("history %v", types)
	}
	var details []catalog.ExecutionDetail
	if err := store.Tx(ctx, func(tx catalog.Tx) error {
		es, err := tx.ListEvents(ctx, catalog.EventFilter{Source: catalog.Ptr(catalog.RunbookEventSource)})
		for _, ev := range es {
			var d catalog.ExecutionDetail
			if err := json.Unmarshal(ev.Detail, &d); err != nil {
				return err
			}
			if ev.Site != "paris" || ev.DetailType != catalog.DetailExecution {
				t.Fatalf("event %+v", ev)
			}
			details = append(details, d)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(details) != 2 || details[0].Status != catalog.ExecutionRunning || details[1].Status != catalog.ExecutionSucceeded ||
		details[1].ExecutionID != x.ID || details[1].Runbook != "hello" || string(details[1].Input) != `{"site":"paris"}` {
		t.Fatalf("status events %+v", details)
	}
}

func TestStartErrors(t *testing.T) {
	store := openStore(t, tempCatalog(t), 0)
	svc := newService(t, store, newTasks().registry(), "srv-a")
	_, err := svc.Start(ctx, "nope", nil, "")
	if !errs.Is(err, errs.NotFound) {
		t.Fatalf("unknown runbook: %v", err)
	}
	for what, c := range map[string]struct{ def, input, want string }{
		"problems listed":  {`{"StartAt":"X","States":{"A":{"Type":"Pass","Next":"B"}}}`, ``, "problem"},
		"unknown resource": {`{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"rewind:nope","End":true}}}`, ``, "rewind:nope"},
		"bad input":        {`{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`, `{"a":`, "input"},
		"not ASL":          {`[1, 2]`, ``, "object"},
	} {
		_, err := svc.StartDefinition(ctx, []byte(c.def), json.RawMessage(c.input), "")
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (kind %v), want invalid mentioning %q", what, err, errs.KindOf(err), c.want)
		}
	}
	_, err = svc.PutRunbook(ctx, "bad", []byte(`{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"x:y","End":true}}}`), catalog.RunbookFromAPI)
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "x:y") {
		t.Fatalf("PutRunbook with an unknown resource: %v", err)
	}
}

const waitDef = `{"StartAt":"First","States":{
  "First":{"Type":"Task","Resource":"test:count","ResultPath":"$.first","Next":"Pause"},
  "Pause":{"Type":"Wait","Seconds":1,"Next":"Second"},
  "Second":{"Type":"Task","Resource":"test:count","ResultPath":"$.second","End":true}}}`

// TestResumeMidWait closes the service while the execution waits; a new service on the
// same catalog resumes it, and the task completed before is not run again.
func TestResumeMidWait(t *testing.T) {
	path := tempCatalog(t)
	store := openStore(t, path, 0)
	k := newTasks()
	a := newService(t, store, k.registry(), "srv-a")
	x, err := a.StartDefinition(ctx, []byte(waitDef), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Wait state", func() bool { return hasEvent(t, store, x.ID, "WaitStateEntered") })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	e := getExec(t, store, x.ID)
	if e.Status != catalog.ExecutionRunning || e.Owner != "" {
		t.Fatalf("after Close: %s owned by %q, want RUNNING and released", e.Status, e.Owner)
	}
	b := newService(t, openStore(t, path, 0), k.registry(), "srv-b")
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	e = waitStatus(t, store, x.ID, catalog.ExecutionSucceeded)
	if k.count("First") != 1 || k.count("Second") != 1 {
		t.Fatalf("calls: First %d, Second %d; want 1 each", k.count("First"), k.count("Second"))
	}
	if e.Owner != "srv-b" || !strings.Contains(string(e.Output), `"second"`) {
		t.Fatalf("finished by %q with output %s", e.Owner, e.Output)
	}
}

const slowDef = `{"StartAt":"First","States":{
  "First":{"Type":"Task","Resource":"test:count","ResultPath":"$.first","Next":"Slow"},
  "Slow":{"Type":"Task","Resource":"RESOURCE","ResultPath":"$.slow","Next":"Third"},
  "Third":{"Type":"Task","Resource":"test:count","ResultPath":"$.third","End":true}}}`

// TestResumeMidTask closes the service while a task runs: an idempotent task runs again
// on resume, a non-idempotent one fails the execution with States.Runtime.
func TestResumeMidTask(t *testing.T) {
	for _, c := range []struct {
		resource string
		want     catalog.ExecutionStatus
		slow     int
	}{
		{"test:block", catalog.ExecutionSucceeded, 2},
		{"test:blockonce", catalog.ExecutionFailed, 1},
	} {
		t.Run(c.resource, func(t *testing.T) {
			path := tempCatalog(t)
			store := openStore(t, path, 0)
			k := newTasks()
			a := newService(t, store, k.registry(), "srv-a")
			x, err := a.StartDefinition(ctx, []byte(strings.Replace(slowDef, "RESOURCE", c.resource, 1)), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			<-k.blocked
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			k.mu.Lock()
			k.release = true
			k.mu.Unlock()
			b := newService(t, openStore(t, path, 0), k.registry(), "srv-b")
			if err := b.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			e := waitStatus(t, store, x.ID, c.want)
			if k.count("First") != 1 || k.count("Slow") != c.slow {
				t.Fatalf("calls: First %d, Slow %d; want 1 and %d", k.count("First"), k.count("Slow"), c.slow)
			}
			if c.want == catalog.ExecutionFailed && (e.Error != runbook.ErrRuntime || !strings.Contains(e.Cause, "idempotent")) {
				t.Fatalf("failure %s: %s", e.Error, e.Cause)
			}
		})
	}
}

const approvalDef = `{"StartAt":"Decide","States":{
  "Decide":{"Type":"Task","Resource":"test:notify.waitForTaskToken","TimeoutSeconds":TIMEOUT,"ResultPath":"$.decision","End":true}}}`

func startApproval(t *testing.T, svc *orchestrate.Service, k *tasks, timeout string) (*catalog.Execution, string) {
	t.Helper()
	x, err := svc.StartDefinition(ctx, []byte(strings.Replace(approvalDef, "TIMEOUT", timeout, 1)), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return x, <-k.tokens
}

func TestApproval(t *testing.T) {
	store := openStore(t, tempCatalog(t), 0)
	k := newTasks()
	svc := newService(t, store, k.registry(), "srv-a")

	t.Run("approved", func(t *testing.T) {
		x, tok := startApproval(t, svc, k, "3600")
		waitFor(t, "the token row", func() bool { return hasEvent(t, store, x.ID, "TaskSubmitted") })
		tk, err := svc.Approve(ctx, tok, json.RawMessage(`{"failover":true}`))
		if err != nil || tk.Execution != x.ID || tk.State != "Decide" {
			t.Fatalf("Approve: %+v %v", tk, err)
		}
		e := waitStatus(t, store, x.ID, catalog.ExecutionSucceeded)
		if !strings.Contains(string(e.Output), `"decision":{"failover":true}`) {
			t.Fatalf("output %s", e.Output)
		}
		_, err = svc.Approve(ctx, tok, nil)
		if !errs.Is(err, errs.Conflict) {
			t.Fatalf("second approval: %v", err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		x, tok := startApproval(t, svc, k, "3600")
		waitFor(t, "the token row", func() bool { return hasEvent(t, store, x.ID, "TaskSubmitted") })
		if _, err := svc.Deny(ctx, tok, "", "primary is healthy"); err != nil {
			t.Fatal(err)
		}
		e := waitStatus(t, store, x.ID, catalog.ExecutionFailed)
		if e.Error != orchestrate.ErrDenied || e.Cause != "primary is healthy" {
			t.Fatalf("failure %s: %s", e.Error, e.Cause)
		}
	})
	t.Run("timed out", func(t *testing.T) {
		x, tok := startApproval(t, svc, k, "1")
		e := waitStatus(t, store, x.ID, catalog.ExecutionFailed)
		if e.Error != runbook.ErrTimeout {
			t.Fatalf("failure %s: %s", e.Error, e.Cause)
		}
		_, err := svc.Approve(ctx, tok, nil)
		if !errs.Is(err, errs.Conflict) {
			t.Fatalf("approval after the timeout: %v", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		if _, err := svc.Approve(ctx, "nope", nil); !errs.Is(err, errs.NotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if _, err := svc.Approve(ctx, "nope", json.RawMessage(`{`)); !errs.Is(err, errs.Invalid) {
			t.Fatalf("bad output: %v", err)
		}
	})
}

// TestDecisionWhileDown approves a token while no service runs the execution: the
// decision is delivered once a service resumes it.
func TestDecisionWhileDown(t *testing.T) {
	path := tempCatalog(t)
	store := openStore(t, path, 0)
	k := newTasks()
	a := newService(t, store, k.registry(), "srv-a")
	x, tok := startApproval(t, a, k, "3600")
	waitFor(t, "the token row", func() bool { return hasEvent(t, store, x.ID, "TaskSubmitted") })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := orchestrate.New(orchestrate.Options{Store: openStore(t, path, 0), Registry: k.registry(), Owner: "srv-b", Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Approve(ctx, tok, json.RawMessage(`{"go":1}`)); err != nil {
		t.Fatal(err)
	}
	if e := getExec(t, store, x.ID); e.Status != catalog.ExecutionRunning {
		t.Fatalf("status %s before any service resumed it", e.Status)
	}
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool {
		if err := b.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		return getExec(t, store, x.ID).Status.Terminal()
	})
	e := waitStatus(t, store, x.ID, catalog.ExecutionSucceeded)
	if !strings.Contains(string(e.Output), `"go":1`) || k.count("Decide") != 1 {
		t.Fatalf("output %s, %d calls of the notifying task", e.Output, k.count("Decide"))
	}
}

// TestTwoServices runs two services on one catalog: only the owner runs an execution, a
// decision taken on the other reaches it, and once the owner's lease expired the other
// takes the execution over and the old owner writes nothing more.
func TestTwoServices(t *testing.T) {
	path := tempCatalog(t)
	store := openStore(t, path, 0)
	k := newTasks()
	a := newService(t, store, k.registry(), "srv-a")
	b := newService(t, openStore(t, path, 0), k.registry(), "srv-b")
	if err := a.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	x, tok := startApproval(t, a, k, "3600")
	waitFor(t, "the token row", func() bool { return hasEvent(t, store, x.ID, "TaskSubmitted") })
	for i := 0; i < 3; i++ {
		if err := b.Resume(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if e := getExec(t, store, x.ID); e.Owner != "srv-a" || k.count("Decide") != 1 {
		t.Fatalf("owner %q, %d calls: the second service took a live execution", e.Owner, k.count("Decide"))
	}
	if _, err := b.Approve(ctx, tok, json.RawMessage(`{"by":"b"}`)); err != nil {
		t.Fatal(err)
	}
	e := waitStatus(t, store, x.ID, catalog.ExecutionSucceeded)
	if e.Owner != "srv-a" {
		t.Fatalf("finished by %q", e.Owner)
	}

	// Takeover: c's catalog clock is an hour ahead, so a's leases look expired to it.
	y, tok2 := startApproval(t, a, k, "3600")
	waitFor(t, "the token row", func() bool { return hasEvent(t, store, y.ID, "TaskSubmitted") })
	c := newService(t, openStore(t, path, time.Hour), k.registry(), "srv-c")
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if e := getExec(t, store, y.ID); e.Owner != "srv-c" {
		t.Fatalf("owner %q after the lease expired, want srv-c", e.Owner)
	}
	if _, err := a.Approve(ctx, tok2, json.RawMessage(`{"by":"a"}`)); err != nil {
		t.Fatal(err)
	}
	e = waitStatus(t, store, y.ID, catalog.ExecutionSucceeded)
	if e.Owner != "srv-c" || hasEvent(t, store, y.ID, "ExecutionAborted") {
		t.Fatalf("owner %q, history %v", e.Owner, history(t, store, y.ID))
	}
}

func TestStop(t *testing.T) {
	path := tempCatalog(t)
	store := openStore(t, path, 0)
	k := newTasks()
	a := newService(t, store, k.registry(), "srv-a")
	b := newService(t, openStore(t, path, 0), k.registry(), "srv-b")
	for _, by := range []*orchestrate.Service{a, b} {
		x, _ := startApproval(t, a, k, "3600")
		e, err := by.Stop(ctx, x.ID, "drill cancelled")
		if err != nil {
			t.Fatal(err)
		}
		if e.Status != catalog.ExecutionAborted || e.Cause != "drill cancelled" {
			t.Fatalf("stopped: %s %q", e.Status, e.Cause)
		}
		types := history(t, store, x.ID)
		if types[len(types)-1] != "ExecutionAborted" {
			t.Fatalf("history %v", types)
		}
		if _, err := by.Stop(ctx, x.ID, ""); !errs.Is(err, errs.Conflict) {
			t.Fatalf("second stop: %v", err)
		}
	}
	if _, err := a.Stop(ctx, "nope", ""); !errs.Is(err, errs.NotFound) {
		t.Fatalf("unknown execution: %v", err)
	}
}

func TestNormalizeAndSync(t *testing.T) {
	yamlDef := "StartAt: A\nStates:\n  A: {Type: Wait, Timestamp: 2031-01-02T03:04:05Z, Next: B}\n  B: {Type: Pass, Result: {n: 1.50, big: 12345678901234}, End: true}\n"
	got, err := orchestrate.Normalize([]byte(yamlDef))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"StartAt":"A","States":{"A":{"Next":"B","Timestamp":"2031-01-02T03:04:05Z","Type":"Wait"},"B":{"End":true,"Result":{"big":12345678901234,"n":1.5},"Type":"Pass"}}}`
	if string(got) != want {
		t.Fatalf("Normalize:\n got %s\nwant %s", got, want)
	}
	if _, err := orchestrate.Normalize([]byte("- a\n- b\n")); !errs.Is(err, errs.Invalid) {
		t.Fatalf("a YAML list: %v", err)
	}
	store := openStore(t, tempCatalog(t), 0)
	svc := newService(t, store, newTasks().registry(), "srv-a")
	pass := []byte(`{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`)
	if _, err := svc.PutRunbook(ctx, "from-api", pass, catalog.RunbookFromAPI); err != nil {
		t.Fatal(err)
	}
	if err := svc.SyncRunbooks(ctx, map[string][]byte{"old": pass}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SyncRunbooks(ctx, map[string][]byte{"new": []byte(yamlDef)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SyncRunbooks(ctx, map[string][]byte{"broken": []byte(`{"StartAt":"Z","States":{}}`)}); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("invalid config runbook: %v", err)
	}
	var names []string
	if err := store.Tx(ctx, func(tx catalog.Tx) error {
		rbs, err := tx.ListRunbooks(ctx)
		for _, rb := range rbs {
			names = append(names, rb.Name+"/"+rb.Source)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "from-api/api new/config" {
		t.Fatalf("runbooks %v", names)
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add([]byte(`{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`))
	f.Add([]byte("StartAt: A\nStates:\n  A: {Type: Pass, End: true, Result: &x {a: [1, 2.5, null, true]}}\n"))
	f.Add([]byte("a: &a {b: *a}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		norm, err := orchestrate.Normalize(src)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error of kind %v: %v", errs.KindOf(err), err)
			}
			return
		}
		again, err := orchestrate.Normalize(norm)
		if err != nil || string(again) != string(norm) {
			t.Fatalf("normalized form does not normalize to itself: %s -> %s (%v)", norm, again, err)
		}
	})
}
