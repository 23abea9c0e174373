package servertasks_test

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
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/orchestrate"
	"github.com/rewind-dr/rewind/internal/orchestrate/servertasks"
	"github.com/rewind-dr/rewind/internal/runbook"
)

var ctx = context.Background()

// fakeControl creates jobs in the catalog and finishes each from a goroutine: FAILED for
// the resource "broken", COMPLETED otherwise (restores with a created resource).
type fakeControl struct {
	store catalog.Store
	mu    sync.Mutex
	reqs  []control.Request
	wg    sync.WaitGroup
}

func (f *fakeControl) submit(ctx context.Context, r control.Request) (*catalog.Job, error) {
	if r.Resource == "unknown" {
		return nil, errs.Errorf("control.Submit", errs.NotFound, "resource %q is not in the config", r.Resource)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	j := &catalog.Job{Kind: r.Kind, State: catalog.StatePending, Resource: r.Resource, Vault: r.Vault, TargetVault: r.Target, Params: r.Params}
	if err := f.store.Tx(ctx, func(tx catalog.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
		return nil, err
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = f.store.Tx(context.Background(), func(tx catalog.Tx) error {
			_, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StateRunning)})
			return err
		})
		time.Sleep(30 * time.Millisecond)
		u := catalog.JobUpdate{State: catalog.Ptr(catalog.StateCompleted), PointID: catalog.Ptr("ab12")}
		if r.Resource == "broken" {
			u = catalog.JobUpdate{State: catalog.Ptr(catalog.StateFailed), Error: catalog.Ptr("disk full")}
		}
		if r.Kind == catalog.JobRestore {
			var p struct{ Target string }
			_ = json.Unmarshal(r.Params, &p)
			u.CreatedResource = &p.Target
		}
		_ = f.store.Tx(context.Background(), func(tx catalog.Tx) error {
			_, err := tx.UpdateJob(ctx, j.ID, u)
			return err
		})
	}()
	return j, nil
}

func setup(t *testing.T) (*orchestrate.Service, catalog.Store, *fakeControl) {
	t.Helper()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	at := time.Date(2031, 3, 4, 5, 0, 0, 0, time.UTC)
	if err := store.Tx(ctx, func(tx catalog.Tx) error {
		if err := tx.UpsertResource(ctx, catalog.Resource{Name: "db", Kind: "files", Tags: map[string]string{"app": "shop"}}); err != nil {
			return err
		}
		for i, id := range []string{"aa01", "aa02"} {
			if err := tx.UpsertPoint(ctx, &catalog.Point{ID: id, Vault: "main", Resource: "db", Kind: "files",
				Time: at.Add(time.Duration(i) * time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f := &fakeControl{store: store}
	t.Cleanup(f.wg.Wait)
	reg := runbook.Registry{}
	servertasks.Register(reg, servertasks.Deps{Store: store, Submit: f.submit, Poll: 10 * time.Millisecond})
	if !reg["rewind:check"].Idempotent || reg["rewind:restore"].Idempotent || reg["rewind:backup"].Idempotent || reg["rewind:copy"].Idempotent {
		t.Fatal("only rewind:check may be idempotent")
	}
	svc, err := orchestrate.New(orchestrate.Options{Store: store, Registry: reg, Owner: "srv", Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc, store, f
}

func run(t *testing.T, svc *orchestrate.Service, store catalog.Store, def string, input string) *catalog.Execution {
	t.Helper()
	x, err := svc.StartDefinition(ctx, []byte(def), json.RawMessage(input), "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var e *catalog.Execution
		if err := store.Tx(ctx, func(tx catalog.Tx) error {
			var err error
			e, err = tx.GetExecution(ctx, x.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if e.Status.Terminal() {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s did not finish", x.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const drill = `StartAt: Backup
States:
  Backup: {Type: Task, Resource: "rewind:backup", Parameters: {resource: db, vault: main}, ResultPath: $.backup, Next: Copy}
  Copy: {Type: Task, Resource: "rewind:copy", Parameters: {resource: db, vault: main, to: offsite}, ResultPath: $.copy, Next: Restore}
  Restore:
    Type: Task
    Resource: "rewind:restore"
    Parameters: {resource: db, vault: main, at: "2031-03-04T05:30:00Z", "target.$": $.target}
    ResultPath: $.restore
    Next: Check
  Check: {Type: Task, Resource: "rewind:check", Parameters: {vault: main, read_data: true}, ResultPath: $.check, End: true}
`

func TestDrill(t *testing.T) {
	svc, store, f := setup(t)
	e := run(t, svc, store, drill, `{"target": "/srv/restore"}`)
	if e.Status != catalog.ExecutionSucceeded {
		t.Fatalf("drill %s: %s: %s", e.Status, e.Error, e.Cause)
	}
	var out struct {
		Backup, Copy, Check map[string]any
		Restore             struct {
			Kind            string            `json:"kind"`
			State           string            `json:"state"`
			CreatedResource string            `json:"createdResource"`
			ResourceTags    map[string]string `json:"resourceTags"`
		}
	}
	if err := json.Unmarshal(e.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Restore.Kind != "RESTORE" || out.Restore.State != "COMPLETED" || out.Restore.CreatedResource != "/srv/restore" ||
		out.Restore.ResourceTags["app"] != "shop" || out.Backup["kind"] != "BACKUP" || out.Check["state"] != "COMPLETED" {
		t.Fatalf("output %s", e.Output)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 4 {
		t.Fatalf("%d jobs submitted, want 4", len(f.reqs))
	}
	// The copy takes the newest point; the restore the newest at or before 05:30.
	if string(f.reqs[1].Params) != `{"point":"aa02"}` || f.reqs[1].Target != "offsite" ||
		string(f.reqs[2].Params) != `{"point":"aa01","target":"/srv/restore"}` || string(f.reqs[3].Params) != `{"read_data":true}` {
		t.Fatalf("requests %+v", f.reqs)
	}
}

func TestJobFailures(t *testing.T) {
	svc, store, _ := setup(t)
	for _, c := range []struct{ def, errName, cause string }{
		{`{"StartAt":"B","States":{"B":{"Type":"Task","Resource":"rewind:backup","Parameters":{"resource":"broken","vault":"main"},"End":true}}}`,
			servertasks.ErrJobFailed, "disk full"},
		{`{"StartAt":"B","States":{"B":{"Type":"Task","Resource":"rewind:backup","Parameters":{"resource":"unknown"},"End":true}}}`,
			servertasks.ErrInvalidParams, "not in the config"},
		{`{"StartAt":"B","States":{"B":{"Type":"Task","Resource":"rewind:restore","Parameters":{"resource":"db","taget":"/x"},"End":true}}}`,
			servertasks.ErrInvalidParams, "taget"},
		{`{"StartAt":"B","States":{"B":{"Type":"Task","Resource":"rewind:restore","Parameters":{"resource":"db","target":"/x","at":"2020-01-01T00:00:00Z"},"End":true}}}`,
			servertasks.ErrNoPoint, "at or before"},
	} {
		e := run(t, svc, store, c.def, "")
		if e.Status != catalog.ExecutionFailed || e.Error != c.errName || !strings.Contains(e.Cause, c.cause) {
			t.Errorf("%s: %s %s: %s; want %s mentioning %q", c.def, e.Status, e.Error, e.Cause, c.errName, c.cause)
		}
	}
}
