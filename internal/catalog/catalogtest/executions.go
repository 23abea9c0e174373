package catalogtest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// runExecutions runs the tests of runbooks, executions, history and task tokens.
func runExecutions(t *testing.T, open func(*testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, catalog.Store)
	}{
		{"Runbooks", testRunbooks},
		{"ExecutionRoundTrip", testExecutionRoundTrip},
		{"ExecutionUpdate", testExecutionUpdate},
		{"ExecutionEvents", testExecutionEvents},
		{"ListExecutions", testListExecutions},
		{"ClaimExecution", testClaimExecution},
		{"ConcurrentClaimExecution", testConcurrentClaimExecution},
		{"History", testHistory},
		{"TaskTokens", testTaskTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

const aslDef = `{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`

func testRunbooks(t *testing.T, s catalog.Store) {
	rb := &catalog.Runbook{Name: "failover", Definition: json.RawMessage(aslDef), Source: catalog.RunbookFromConfig}
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.UpsertRunbook(ctx, rb); err != nil {
			return err
		}
		if !rb.UpdatedAt.Equal(tx.Now()) {
			t.Fatalf("UpdatedAt %v, want Now %v", rb.UpdatedAt, tx.Now())
		}
		return tx.UpsertRunbook(ctx, &catalog.Runbook{Name: "drill", Definition: json.RawMessage(aslDef), Source: catalog.RunbookFromAPI})
	})
	changed := `{"StartAt":"B","States":{"B":{"Type":"Succeed"}}}`
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.UpsertRunbook(ctx, &catalog.Runbook{Name: "failover", Definition: json.RawMessage(changed), Source: catalog.RunbookFromAPI}); err != nil {
			return err
		}
		got, err := tx.GetRunbook(ctx, "failover")
		if err != nil {
			return err
		}
		var a, b any
		if json.Unmarshal(got.Definition, &a) != nil || json.Unmarshal([]byte(changed), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("definition %s, want %s", got.Definition, changed)
		}
		if got.Source != catalog.RunbookFromAPI {
			t.Fatalf("source %q after the upsert", got.Source)
		}
		all, err := tx.ListRunbooks(ctx)
		if err != nil {
			return err
		}
		if len(all) != 2 || all[0].Name != "drill" || all[1].Name != "failover" {
			t.Fatalf("ListRunbooks: %d runbooks, want drill and failover by name", len(all))
		}
		_, err = tx.GetRunbook(ctx, "nope")
		wantKind(t, "GetRunbook(nope)", err, errs.NotFound)
		wantKind(t, "DeleteRunbook(nope)", tx.DeleteRunbook(ctx, "nope"), errs.NotFound)
		for what, bad := range map[string]*catalog.Runbook{
			"empty name":     {Definition: json.RawMessage(aslDef), Source: catalog.RunbookFromAPI},
			"not an object":  {Name: "x", Definition: json.RawMessage(`[1]`), Source: catalog.RunbookFromAPI},
			"not JSON":       {Name: "x", Definition: json.RawMessage(`{StartAt`), Source: catalog.RunbookFromAPI},
			"unknown source": {Name: "x", Definition: json.RawMessage(aslDef), Source: "disk"},
		} {
			wantKind(t, "UpsertRunbook "+what, tx.UpsertRunbook(ctx, bad), errs.Invalid)
		}
		return tx.DeleteRunbook(ctx, "drill")
	})
	tx(t, s, func(tx catalog.Tx) error {
		all, err := tx.ListRunbooks(ctx)
		if len(all) != 1 {
			t.Fatalf("%d runbooks after the delete, want 1", len(all))
		}
		return err
	})
}

func newExecution(runbook string) *catalog.Execution {
	return &catalog.Execution{Runbook: runbook, Definition: json.RawMessage(aslDef), Input: json.RawMessage(`{"site":"paris"}`)}
}

func testExecutionRoundTrip(t *testing.T, s catalog.Store) {
	lease := ts("2031-05-06T07:08:09.123456Z")
	e := &catalog.Execution{ID: "x1", Name: "failover-1", Runbook: "failover", Definition: json.RawMessage(aslDef),
		Input: json.RawMessage(`{"a":[1,2]}`), StartedAt: ts("2031-05-06T07:00:00.1234567Z"), Owner: "srv-a", LeaseUntil: &lease}
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateExecution(ctx, e) })
	if e.Status != catalog.ExecutionRunning || !e.StartedAt.Equal(ts("2031-05-06T07:00:00.123456Z")) {
		t.Fatalf("prepared execution: status %s, started %v", e.Status, e.StartedAt)
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetExecution(ctx, "x1")
		if err != nil {
			return err
		}
		same(t, "execution", got, e)
		err = tx.CreateExecution(ctx, &catalog.Execution{ID: "x1", Definition: json.RawMessage(aslDef)})
		wantKind(t, "duplicate execution", err, errs.Exists)
		_, err = tx.GetExecution(ctx, "nope")
		wantKind(t, "GetExecution(nope)", err, errs.NotFound)
		for what, bad := range map[string]*catalog.Execution{
			"no definition":   {},
			"array def":       {Definition: json.RawMessage(`[]`)},
			"bad input":       {Definition: json.RawMessage(aslDef), Input: json.RawMessage(`{`)},
			"born succeeded":  {Definition: json.RawMessage(aslDef), Status: catalog.ExecutionSucceeded},
			"control in name": {Definition: json.RawMessage(aslDef), Name: "a\nb"},
		} {
			wantKind(t, "CreateExecution "+what, tx.CreateExecution(ctx, bad), errs.Invalid)
		}
		// The transaction is still usable after the failures.
		d := newExecution("")
		if err := tx.CreateExecution(ctx, d); err != nil {
			return err
		}
		if d.Name != d.ID || string(d.Input) == "" || !d.StartedAt.Equal(tx.Now()) {
			t.Fatalf("defaults: name %q id %q input %s started %v", d.Name, d.ID, d.Input, d.StartedAt)
		}
		return nil
	})
}

func testExecutionUpdate(t *testing.T, s catalog.Store) {
	e := newExecution("failover")
	e.Owner = "srv-a"
	lease := time.Now().Add(time.Hour)
	e.LeaseUntil = &lease
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateExecution(ctx, e) })
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.UpdateExecution(ctx, e.ID, catalog.ExecutionUpdate{IfOwner: catalog.Ptr("srv-b"), Status: catalog.Ptr(catalog.ExecutionFailed)})
		wantKind(t, "update by another owner", err, errs.Conflict)
		_, err = tx.UpdateExecution(ctx, e.ID, catalog.ExecutionUpdate{Status: catalog.Ptr(catalog.ExecutionStatus("DONE"))})
		wantKind(t, "unknown status", err, errs.Invalid)
		_, err = tx.UpdateExecution(ctx, e.ID, catalog.ExecutionUpdate{Output: json.RawMessage(`{x`)})
		wantKind(t, "bad output", err, errs.Invalid)
		_, err = tx.UpdateExecution(ctx, "nope", catalog.ExecutionUpdate{})
		wantKind(t, "update unknown", err, errs.NotFound)
		got, err := tx.UpdateExecution(ctx, e.ID, catalog.ExecutionUpdate{IfOwner: catalog.Ptr("srv-a"),
			Status: catalog.Ptr(catalog.ExecutionSucceeded), Output: json.RawMessage(`{"restored":"db-copy"}`)})
		if err != nil {
			return err
		}
		if got.StoppedAt == nil || !got.StoppedAt.Equal(tx.Now()) || got.LeaseUntil != nil || got.Owner != "srv-a" {
			t.Fatalf("ended execution: stopped %v lease %v owner %q", got.StoppedAt, got.LeaseUntil, got.Owner)
		}
		return nil
	})
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetExecution(ctx, e.ID)
		if err != nil {
			return err
		}
		if got.Status != catalog.ExecutionSucceeded || string(got.Output) != `{"restored":"db-copy"}` {
			t.Fatalf("stored: %s %s", got.Status, got.Output)
		}
		for _, u := range []catalog.ExecutionUpdate{
			{Status: catalog.Ptr(catalog.ExecutionFailed)},
			{Status: catalog.Ptr(catalog.ExecutionRunning)},
			{Cause: catalog.Ptr("late")},
		} {
			_, err := tx.UpdateExecution(ctx, e.ID, u)
			wantKind(t, "update of a finished execution", err, errs.Conflict)
		}
		return nil
	})
}

func testExecutionEvents(t *testing.T, s catalog.Store) {
	e := newExecution("failover")
	tx(t, s, func(tx catalog.Tx) error { return catalog.CreateExecutionWithEvent(ctx, tx, e, "paris") })
	tx(t, s, func(tx catalog.Tx) error {
		// No status change, no event.
		if _, err := catalog.UpdateExecutionWithEvent(ctx, tx, e.ID, catalog.ExecutionUpdate{Owner: catalog.Ptr("srv")}, "paris"); err != nil {
			return err
		}
		_, err := catalog.UpdateExecutionWithEvent(ctx, tx, e.ID, catalog.ExecutionUpdate{Status: catalog.Ptr(catalog.ExecutionFailed),
			Error: catalog.Ptr("Rewind.JobFailed"), Cause: catalog.Ptr("disk full")}, "paris")
		return err
	})
	// A rolled-back change announces nothing.
	f := newExecution("failover")
	err := s.Tx(ctx, func(tx catalog.Tx) error {
		if err := catalog.CreateExecutionWithEvent(ctx, tx, f, "paris"); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("Tx: %v", err)
	}
	tx(t, s, func(tx catalog.Tx) error {
		es, err := tx.ListEvents(ctx, catalog.EventFilter{Source: catalog.Ptr(catalog.RunbookEventSource)})
		if err != nil {
			return err
		}
		if len(es) != 2 {
			t.Fatalf("%d execution events, want 2", len(es))
		}
		var d0, d1 catalog.ExecutionDetail
		if err := json.Unmarshal(es[0].Detail, &d0); err != nil {
			return err
		}
		if err := json.Unmarshal(es[1].Detail, &d1); err != nil {
			return err
		}
		if es[1].DetailType != catalog.DetailExecution || es[1].Site != "paris" || d0.Status != catalog.ExecutionRunning ||
			d1.Status != catalog.ExecutionFailed || d1.ExecutionID != e.ID || d1.Runbook != "failover" ||
			d1.Error != "Rewind.JobFailed" || d1.Cause != "disk full" || string(d1.Input) != `{"site":"paris"}` || d1.StopDate == nil {
			t.Fatalf("events %+v %+v: details %+v %+v", es[0], es[1], d0, d1)
		}
		if len(es[1].Resources) != 2 || es[1].Resources[0] != "failover" || es[1].Resources[1] != e.ID {
			t.Fatalf("resources %v", es[1].Resources)
		}
		return nil
	})
}

func testListExecutions(t *testing.T, s catalog.Store) {
	var xs []*catalog.Execution
	tx(t, s, func(tx catalog.Tx) error {
		for i := 0; i < 5; i++ {
			e := newExecution([]string{"a", "b"}[i%2])
			if i == 3 {
				e.Owner = "srv"
			}
			if err := tx.CreateExecution(ctx, e); err != nil {
				return err
			}
			xs = append(xs, e)
		}
		_, err := tx.UpdateExecution(ctx, xs[1].ID, catalog.ExecutionUpdate{Status: catalog.Ptr(catalog.ExecutionAborted)})
		return err
	})
	ids := func(es []*catalog.Execution) string {
		var out []string
		for _, e := range es {
			for i, x := range xs {
				if x.ID == e.ID {
					out = append(out, fmt.Sprint(i))
				}
			}
		}
		return fmt.Sprint(out)
	}
	for _, c := range []struct {
		name string
		f    catalog.ExecutionFilter
		want string
	}{
		{"all", catalog.ExecutionFilter{}, "[0 1 2 3 4]"},
		{"running", catalog.ExecutionFilter{Status: catalog.Ptr(catalog.ExecutionRunning)}, "[0 2 3 4]"},
		{"runbook b", catalog.ExecutionFilter{Runbook: catalog.Ptr("b")}, "[1 3]"},
		{"owner", catalog.ExecutionFilter{Owner: catalog.Ptr("srv")}, "[3]"},
		{"newest 2", catalog.ExecutionFilter{Newest: true, Limit: 2}, "[4 3]"},
		{"newest after", catalog.ExecutionFilter{Newest: true, Limit: 2, After: xs[3].ID}, "[2 1]"},
		{"after", catalog.ExecutionFilter{After: xs[2].ID}, "[3 4]"},
	} {
		tx(t, s, func(tx catalog.Tx) error {
			got, err := tx.ListExecutions(ctx, c.f)
			if err == nil && ids(got) != c.want {
				t.Fatalf("%s: got %s, want %s", c.name, ids(got), c.want)
			}
			return err
		})
	}
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.ListExecutions(ctx, catalog.ExecutionFilter{Limit: -1})
		wantKind(t, "negative limit", err, errs.Invalid)
		return nil
	})
}

func testClaimExecution(t *testing.T, s catalog.Store) {
	e := newExecution("")
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateExecution(ctx, e) })
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.ClaimExecution(ctx, e.ID, "", tx.Now().Add(time.Minute))
		wantKind(t, "empty owner", err, errs.Invalid)
		_, err = tx.ClaimExecution(ctx, "nope", "a", tx.Now().Add(time.Minute))
		wantKind(t, "unknown execution", err, errs.NotFound)
		got, err := tx.ClaimExecution(ctx, e.ID, "a", tx.Now().Add(time.Minute))
		if err != nil {
			return err
		}
		if got.Owner != "a" || got.LeaseUntil == nil || !got.LeaseUntil.Equal(tx.Now().Add(time.Minute)) {
			t.Fatalf("claimed: owner %q lease %v", got.Owner, got.LeaseUntil)
		}
		_, err = tx.ClaimExecution(ctx, e.ID, "b", tx.Now().Add(time.Minute))
		wantKind(t, "claim of a live lease", err, errs.Conflict)
		// The owner renews; an expired lease is free for anyone.
		if _, err := tx.ClaimExecution(ctx, e.ID, "a", tx.Now().Add(-time.Second)); err != nil {
			return err
		}
		got, err = tx.ClaimExecution(ctx, e.ID, "b", tx.Now().Add(time.Minute))
		if err != nil {
			return err
		}
		if got.Owner != "b" {
			t.Fatalf("owner %q after taking over an expired lease", got.Owner)
		}
		stored, err := tx.GetExecution(ctx, e.ID)
		if err == nil && stored.Owner != "b" {
			t.Fatalf("stored owner %q", stored.Owner)
		}
		if _, err := tx.UpdateExecution(ctx, e.ID, catalog.ExecutionUpdate{Status: catalog.Ptr(catalog.ExecutionSucceeded)}); err != nil {
			return err
		}
		_, err = tx.ClaimExecution(ctx, e.ID, "b", tx.Now().Add(time.Minute))
		wantKind(t, "claim of a finished execution", err, errs.Conflict)
		return nil
	})
}

func testConcurrentClaimExecution(t *testing.T, s catalog.Store) {
	e := newExecution("")
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateExecution(ctx, e) })
	const n = 8
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results <- s.Tx(ctx, func(tx catalog.Tx) error {
				_, err := tx.ClaimExecution(ctx, e.ID, fmt.Sprintf("srv-%d", i), tx.Now().Add(time.Minute))
				return err
			})
		}(i)
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errs.Is(err, errs.Conflict):
			t.Fatalf("claim: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d servers claimed one execution, want exactly 1", won)
	}
}

func hev(seq int64, typ string) catalog.HistoryEvent {
	return catalog.HistoryEvent{Seq: seq, Type: typ, Time: ts("2031-01-02T03:04:05.678901Z").Add(time.Duration(seq) * time.Second),
		Event: json.RawMessage(fmt.Sprintf(`{"id":%d,"type":%q}`, seq, typ))}
}

func testHistory(t *testing.T, s catalog.Store) {
	e := newExecution("")
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateExecution(ctx, e) })
	tx(t, s, func(tx catalog.Tx) error {
		return tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{hev(1, "ExecutionStarted"), hev(2, "PassStateEntered")})
	})
	tx(t, s, func(tx catalog.Tx) error {
		wantKind(t, "duplicate seq", tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{hev(2, "PassStateExited")}), errs.Conflict)
		wantKind(t, "seq going back in a batch", tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{hev(4, "A"), hev(3, "B")}), errs.Conflict)
		wantKind(t, "unknown execution", tx.AppendHistory(ctx, "nope", []catalog.HistoryEvent{hev(1, "A")}), errs.NotFound)
		bad := hev(3, "A")
		bad.Event = json.RawMessage(`"x"`)
		wantKind(t, "event not an object", tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{bad}), errs.Invalid)
		wantKind(t, "zero seq", tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{hev(0, "A")}), errs.Invalid)
		// Usable after the failures; gaps are allowed.
		if err := tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{hev(3, "PassStateExited"), hev(5, "ExecutionSucceeded")}); err != nil {
			return err
		}
		_, err := tx.UpdateExecution(ctx, e.ID, catalog.ExecutionUpdate{Status: catalog.Ptr(catalog.ExecutionSucceeded)})
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		wantKind(t, "append to a finished execution", tx.AppendHistory(ctx, e.ID, []catalog.HistoryEvent{hev(6, "A")}), errs.Conflict)
		got, err := tx.ListHistory(ctx, e.ID)
		if err != nil {
			return err
		}
		want := []catalog.HistoryEvent{hev(1, "ExecutionStarted"), hev(2, "PassStateEntered"), hev(3, "PassStateExited"), hev(5, "ExecutionSucceeded")}
		for i := range want {
			want[i].Execution = e.ID
		}
		same(t, "history", got, want)
		_, err = tx.ListHistory(ctx, "nope")
		wantKind(t, "history of unknown execution", err, errs.NotFound)
		return nil
	})
}

func testTaskTokens(t *testing.T, s catalog.Store) {
	e, f := newExecution(""), newExecution("")
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateExecution(ctx, e); err != nil {
			return err
		}
		return tx.CreateExecution(ctx, f)
	})
	tx(t, s, func(tx catalog.Tx) error {
		for _, tk := range []*catalog.TaskToken{
			{Token: "tok-1", Execution: e.ID, State: "Approve"},
			{Token: "tok-2", Execution: e.ID, State: "Confirm"},
			{Token: "tok-3", Execution: f.ID, State: "Approve"},
		} {
			if err := tx.CreateTaskToken(ctx, tk); err != nil {
				return err
			}
			if !tk.CreatedAt.Equal(tx.Now()) {
				t.Fatalf("CreatedAt %v", tk.CreatedAt)
			}
		}
		wantKind(t, "duplicate token", tx.CreateTaskToken(ctx, &catalog.TaskToken{Token: "tok-1", Execution: f.ID}), errs.Exists)
		wantKind(t, "unknown execution", tx.CreateTaskToken(ctx, &catalog.TaskToken{Token: "tok-9", Execution: "nope"}), errs.NotFound)
		wantKind(t, "empty token", tx.CreateTaskToken(ctx, &catalog.TaskToken{Execution: e.ID}), errs.Invalid)
		wantKind(t, "born resolved", tx.CreateTaskToken(ctx, &catalog.TaskToken{Token: "tok-8", Execution: e.ID,
			Resolution: catalog.TokenSuccess}), errs.Invalid)
		return nil
	})
	var resolvedAt time.Time
	tx(t, s, func(tx catalog.Tx) error {
		for what, d := range map[string]catalog.TokenDecision{
			"no resolution":         {},
			"bad output":            {Resolution: catalog.TokenSuccess, Output: json.RawMessage(`{`)},
			"failure without error": {Resolution: catalog.TokenFailure, Cause: "no"},
		} {
			_, err := tx.ResolveTaskToken(ctx, "tok-1", d)
			wantKind(t, "ResolveTaskToken "+what, err, errs.Invalid)
		}
		_, err := tx.ResolveTaskToken(ctx, "nope", catalog.TokenDecision{Resolution: catalog.TokenSuccess})
		wantKind(t, "unknown token", err, errs.NotFound)
		got, err := tx.ResolveTaskToken(ctx, "tok-1", catalog.TokenDecision{Resolution: catalog.TokenSuccess, Output: json.RawMessage(`{"go":true}`)})
		if err != nil {
			return err
		}
		resolvedAt = tx.Now()
		if got.Resolution != catalog.TokenSuccess || got.ResolvedAt == nil || !got.ResolvedAt.Equal(resolvedAt) {
			t.Fatalf("resolved token %+v", got)
		}
		_, err = tx.ResolveTaskToken(ctx, "tok-1", catalog.TokenDecision{Resolution: catalog.TokenFailure, Error: "Denied"})
		wantKind(t, "second decision", err, errs.Conflict)
		_, err = tx.ResolveTaskToken(ctx, "tok-2", catalog.TokenDecision{Resolution: catalog.TokenFailure, Error: "Rewind.Denied", Cause: "not now"})
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		tk, err := tx.GetTaskToken(ctx, "tok-1")
		if err != nil {
			return err
		}
		same(t, "token", tk, &catalog.TaskToken{Token: "tok-1", Execution: e.ID, State: "Approve", CreatedAt: tk.CreatedAt,
			Resolution: catalog.TokenSuccess, Output: json.RawMessage(`{"go":true}`), ResolvedAt: &resolvedAt})
		tk, err = tx.GetTaskToken(ctx, "tok-2")
		if err != nil {
			return err
		}
		if tk.Resolution != catalog.TokenFailure || tk.Error != "Rewind.Denied" || tk.Cause != "not now" || tk.Output != nil {
			t.Fatalf("denied token %+v", tk)
		}
		_, err = tx.GetTaskToken(ctx, "nope")
		wantKind(t, "GetTaskToken(nope)", err, errs.NotFound)
		toks := func(f catalog.TaskTokenFilter) string {
			got, err := tx.ListTaskTokens(ctx, f)
			if err != nil {
				t.Fatalf("ListTaskTokens: %v", err)
			}
			var out []string
			for _, tk := range got {
				out = append(out, tk.Token)
			}
			return fmt.Sprint(out)
		}
		for _, c := range []struct {
			f    catalog.TaskTokenFilter
			want string
		}{
			{catalog.TaskTokenFilter{}, "[tok-1 tok-2 tok-3]"},
			{catalog.TaskTokenFilter{Execution: &e.ID}, "[tok-1 tok-2]"},
			{catalog.TaskTokenFilter{Unresolved: true}, "[tok-3]"},
			{catalog.TaskTokenFilter{Execution: &e.ID, Unresolved: true}, "[]"},
			{catalog.TaskTokenFilter{Limit: 1}, "[tok-1]"},
		} {
			if got := toks(c.f); got != c.want {
				t.Fatalf("ListTaskTokens(%+v) = %s, want %s", c.f, got, c.want)
			}
		}
		_, err = tx.ListTaskTokens(ctx, catalog.TaskTokenFilter{Limit: -1})
		wantKind(t, "negative limit", err, errs.Invalid)
		return nil
	})
}
