package catalogtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// Run runs the conformance suite. newStore must return a fresh, empty store for each call
// (with the real clock or any clock that does not go backwards); Run closes it when the
// subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) catalog.Store) {
	open := func(t *testing.T) catalog.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(*testing.T, catalog.Store)
	}{
		{"Config", testConfig},
		{"ConfigInvalid", testConfigInvalid},
		{"JobRoundTrip", testJobRoundTrip},
		{"JobInvalid", testJobInvalid},
		{"DedupKey", testDedupKey},
		{"DedupKeyConcurrent", testDedupKeyConcurrent},
		{"Transitions", testTransitions},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ListJobs", testListJobs},
		{"Points", testPoints},
		{"ListPoints", testListPoints},
		{"Events", testEvents},
		{"EventsWithStateChange", testEventsWithStateChange},
		{"RollbackLeavesNothing", testRollback},
		{"NowFixedPerTx", testNowFixed},
		{"ConcurrentTx", testConcurrentTx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	runExecutions(t, open)
	runDeliveries(t, open)
	runRulesAlarms(t, open)
}

// tx runs fn in a transaction and fails the test on error.
func tx(t *testing.T, s catalog.Store, fn func(catalog.Tx) error) {
	t.Helper()
	if err := s.Tx(context.Background(), fn); err != nil {
		t.Fatalf("Tx: %v", err)
	}
}

// wantKind fails the test unless err has kind k.
func wantKind(t *testing.T, what string, err error, k errs.Kind) {
	t.Helper()
	if !errs.Is(err, k) {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, errs.KindOf(err), k)
	}
}

// same compares two records through their JSON form, which compares times as instants and
// treats nil and empty alike only where the JSON does (omitempty).
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err1 := json.Marshal(got)
	w, err2 := json.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: marshal: %v %v", what, err1, err2)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

var ctx = context.Background()

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func testConfig(t *testing.T, s catalog.Store) {
	sites := []catalog.Site{{Name: "paris"}, {Name: "berlin"}}
	vaults := []catalog.Vault{
		{Name: "main", Site: "paris", URL: "/srv/vault", Locked: true},
		{Name: "offsite", Site: "berlin", URL: "s3://bucket/rewind"},
		{Name: "scratch", URL: "/tmp/v"},
	}
	resources := []catalog.Resource{
		{Name: "db", Kind: "postgres", Host: "db1", Tags: map[string]string{"tier": "gold"}, Continuous: true},
		{Name: "home", Kind: "files"},
	}
	tx(t, s, func(tx catalog.Tx) error { return tx.SyncConfig(ctx, sites, vaults, resources) })
	tx(t, s, func(tx catalog.Tx) error {
		gs, err := tx.ListSites(ctx)
		if err != nil {
			return err
		}
		same(t, "sites", gs, []catalog.Site{{Name: "berlin"}, {Name: "paris"}})
		gv, err := tx.ListVaults(ctx)
		if err != nil {
			return err
		}
		same(t, "vaults", gv, vaults)
		gr, err := tx.ListResources(ctx)
		if err != nil {
			return err
		}
		same(t, "resources", gr, resources)
		v, err := tx.GetVault(ctx, "main")
		if err != nil {
			return err
		}
		same(t, "vault main", v, vaults[0])
		r, err := tx.GetResource(ctx, "db")
		if err != nil {
			return err
		}
		same(t, "resource db", r, resources[0])
		_, err = tx.GetVault(ctx, "nope")
		wantKind(t, "GetVault(nope)", err, errs.NotFound)
		_, err = tx.GetResource(ctx, "nope")
		wantKind(t, "GetResource(nope)", err, errs.NotFound)
		return nil
	})

	// A second sync replaces the sets.
	tx(t, s, func(tx catalog.Tx) error {
		return tx.SyncConfig(ctx, []catalog.Site{{Name: "paris"}},
			[]catalog.Vault{{Name: "main", Site: "paris", URL: "/srv/vault2"}},
			[]catalog.Resource{{Name: "home", Kind: "files", Host: "laptop"}})
	})
	tx(t, s, func(tx catalog.Tx) error {
		gs, _ := tx.ListSites(ctx)
		same(t, "sites after resync", gs, []catalog.Site{{Name: "paris"}})
		gv, _ := tx.ListVaults(ctx)
		same(t, "vaults after resync", gv, []catalog.Vault{{Name: "main", Site: "paris", URL: "/srv/vault2"}})
		gr, err := tx.ListResources(ctx)
		same(t, "resources after resync", gr, []catalog.Resource{{Name: "home", Kind: "files", Host: "laptop"}})
		return err
	})

	// Upserts insert and update one record.
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.UpsertSite(ctx, catalog.Site{Name: "tokyo"}); err != nil {
			return err
		}
		if err := tx.UpsertSite(ctx, catalog.Site{Name: "tokyo"}); err != nil {
			return err
		}
		if err := tx.UpsertVault(ctx, catalog.Vault{Name: "jp", Site: "tokyo", URL: "/jp"}); err != nil {
			return err
		}
		if err := tx.UpsertVault(ctx, catalog.Vault{Name: "jp", Site: "tokyo", URL: "/jp2", Locked: true}); err != nil {
			return err
		}
		if err := tx.UpsertResource(ctx, catalog.Resource{Name: "home", Kind: "files", Tags: map[string]string{"a": "b"}}); err != nil {
			return err
		}
		v, err := tx.GetVault(ctx, "jp")
		if err != nil {
			return err
		}
		same(t, "upserted vault", v, catalog.Vault{Name: "jp", Site: "tokyo", URL: "/jp2", Locked: true})
		r, err := tx.GetResource(ctx, "home")
		same(t, "upserted resource", r, catalog.Resource{Name: "home", Kind: "files", Tags: map[string]string{"a": "b"}})
		return err
	})
}

func testConfigInvalid(t *testing.T, s catalog.Store) {
	cases := []struct {
		name      string
		sites     []catalog.Site
		vaults    []catalog.Vault
		resources []catalog.Resource
	}{
		{"empty site", []catalog.Site{{}}, nil, nil},
		{"duplicate site", []catalog.Site{{Name: "a"}, {Name: "a"}}, nil, nil},
		{"vault without URL", nil, []catalog.Vault{{Name: "v"}}, nil},
		{"duplicate vault", nil, []catalog.Vault{{Name: "v", URL: "/a"}, {Name: "v", URL: "/b"}}, nil},
		{"vault on unknown site", nil, []catalog.Vault{{Name: "v", URL: "/a", Site: "mars"}}, nil},
		{"resource without kind", nil, nil, []catalog.Resource{{Name: "r"}}},
		{"duplicate resource", nil, nil, []catalog.Resource{{Name: "r", Kind: "files"}, {Name: "r", Kind: "files"}}},
	}
	for _, c := range cases {
		err := s.Tx(ctx, func(tx catalog.Tx) error { return tx.SyncConfig(ctx, c.sites, c.vaults, c.resources) })
		wantKind(t, c.name, err, errs.Invalid)
	}
	// A refused upsert leaves the transaction usable.
	tx(t, s, func(tx catalog.Tx) error {
		wantKind(t, "vault on unknown site", tx.UpsertVault(ctx, catalog.Vault{Name: "v", URL: "/a", Site: "mars"}), errs.Invalid)
		wantKind(t, "empty site", tx.UpsertSite(ctx, catalog.Site{}), errs.Invalid)
		wantKind(t, "resource without kind", tx.UpsertResource(ctx, catalog.Resource{Name: "r"}), errs.Invalid)
		return tx.UpsertVault(ctx, catalog.Vault{Name: "v", URL: "/a"})
	})
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetVault(ctx, "v")
		return err
	})
}

// fullJob returns a job with every field set.
func fullJob() *catalog.Job {
	return &catalog.Job{
		ID: catalog.NewID(time.Now()), Kind: catalog.JobCopy, State: catalog.StatePending,
		Resource: "db", Vault: "main", TargetVault: "offsite", Plan: "daily", Rule: "copy", Host: "w1",
		ScheduledFor: catalog.Ptr(ts("2030-01-02T03:04:05.123456Z")),
		StartBy:      catalog.Ptr(ts("2030-01-02T04:04:05Z")),
		CompleteBy:   catalog.Ptr(ts("2030-01-03T04:04:05Z")),
		CreatedAt:    ts("2030-01-02T03:04:05.5Z"),
		Attempt:      2, BytesDone: 10, BytesTotal: 1 << 40, FilesDone: 7,
		PointID: "abcdef", CreatedResource: "db-restored", Error: "previous attempt: disk full",
		Params:   json.RawMessage(`{"z": 1, "a": [true, null],  "nested": {"k": "v"}}`),
		DedupKey: "daily/copy/db/2030-01-02T03:04:05Z",
	}
}

func testJobRoundTrip(t *testing.T, s catalog.Store) {
	var now time.Time
	j := fullJob()
	minimal := &catalog.Job{Kind: catalog.JobBackup, Resource: "home"}
	tx(t, s, func(tx catalog.Tx) error {
		now = tx.Now()
		if err := tx.CreateJob(ctx, j); err != nil {
			return err
		}
		return tx.CreateJob(ctx, minimal)
	})
	if minimal.ID == "" || minimal.State != catalog.StateCreated || !minimal.CreatedAt.Equal(now) {
		t.Fatalf("defaults not filled: %+v (tx time %v)", minimal, now)
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetJob(ctx, j.ID)
		if err != nil {
			return err
		}
		same(t, "full job", got, j)
		if !bytes.Equal(got.Params, j.Params) {
			t.Fatalf("params changed: got %s, want %s", got.Params, j.Params)
		}
		got, err = tx.GetJob(ctx, minimal.ID)
		if err != nil {
			return err
		}
		same(t, "minimal job", got, minimal)
		if got.Params != nil || got.ScheduledFor != nil || got.StartedAt != nil {
			t.Fatalf("unset fields read back set: %+v", got)
		}
		_, err = tx.GetJob(ctx, "nope")
		wantKind(t, "GetJob(nope)", err, errs.NotFound)
		return nil
	})
}

func testJobInvalid(t *testing.T, s catalog.Store) {
	cases := map[string]*catalog.Job{
		"unknown kind":     {Kind: "SNAPSHOT"},
		"running at birth": {Kind: catalog.JobBackup, State: catalog.StateRunning},
		"unknown state":    {Kind: catalog.JobBackup, State: "DONE"},
		"params not JSON":  {Kind: catalog.JobBackup, Params: json.RawMessage(`{"a":`)},
		"params not obj":   {Kind: catalog.JobBackup, Params: json.RawMessage(`[1]`)},
		"negative bytes":   {Kind: catalog.JobBackup, BytesDone: -1},
		"control in ID":    {ID: "a\nb", Kind: catalog.JobBackup},
	}
	tx(t, s, func(tx catalog.Tx) error {
		for name, j := range cases {
			wantKind(t, name, tx.CreateJob(ctx, j), errs.Invalid)
		}
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{})
		if len(jobs) != 0 {
			t.Fatalf("refused jobs were stored: %d", len(jobs))
		}
		return err
	})
}

func testDedupKey(t *testing.T, s catalog.Store) {
	key := "plan/rule/db/2030-01-01T00:00:00Z"
	first := &catalog.Job{Kind: catalog.JobBackup, DedupKey: key}
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateJob(ctx, first); err != nil {
			return err
		}
		// Same transaction: refused, and the transaction goes on.
		wantKind(t, "same key, same Tx", tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobBackup, DedupKey: key}), errs.Exists)
		wantKind(t, "same ID", tx.CreateJob(ctx, &catalog.Job{ID: first.ID, Kind: catalog.JobBackup}), errs.Exists)
		// Jobs without a key never collide.
		if err := tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobBackup}); err != nil {
			return err
		}
		return tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobBackup})
	})
	err := s.Tx(ctx, func(tx catalog.Tx) error {
		return tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobBackup, DedupKey: key})
	})
	wantKind(t, "same key, later Tx", err, errs.Exists)
	tx(t, s, func(tx catalog.Tx) error {
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{DedupKey: &key})
		if err != nil {
			return err
		}
		if len(jobs) != 1 || jobs[0].ID != first.ID {
			t.Fatalf("jobs with key %q: %+v", key, jobs)
		}
		all, err := tx.ListJobs(ctx, catalog.JobFilter{})
		if len(all) != 3 {
			t.Fatalf("%d jobs, want 3", len(all))
		}
		return err
	})
}

func testDedupKeyConcurrent(t *testing.T, s catalog.Store) {
	const n = 8
	for round := 0; round < 3; round++ {
		key := fmt.Sprintf("plan/rule/db/round-%d", round)
		var wg sync.WaitGroup
		results := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				results[i] = s.Tx(ctx, func(tx catalog.Tx) error {
					return tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobBackup, DedupKey: key, Host: fmt.Sprint(i)})
				})
			}(i)
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range results {
			switch {
			case err == nil:
				won++
			case errs.Is(err, errs.Exists):
			default:
				t.Fatalf("round %d, creator %d: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d creators won, want exactly 1", round, won)
		}
	}
}

func testTransitions(t *testing.T, s catalog.Store) {
	j := &catalog.Job{Kind: catalog.JobBackup, Resource: "db"}
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateJob(ctx, j) })
	step := func(u catalog.JobUpdate) (*catalog.Job, time.Time, error) {
		var got *catalog.Job
		var now time.Time
		err := s.Tx(ctx, func(tx catalog.Tx) error {
			now = tx.Now()
			var err error
			got, err = tx.UpdateJob(ctx, j.ID, u)
			return err
		})
		return got, now, err
	}
	_, _, err := step(catalog.JobUpdate{State: catalog.Ptr(catalog.StateRunning)})
	wantKind(t, "CREATED -> RUNNING", err, errs.Conflict)
	_, _, err = step(catalog.JobUpdate{State: catalog.Ptr(catalog.State("DONE"))})
	wantKind(t, "unknown state", err, errs.Invalid)
	_, _, err = step(catalog.JobUpdate{BytesDone: catalog.Ptr(int64(-1))})
	wantKind(t, "negative bytes", err, errs.Invalid)
	got, _, err := step(catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)})
	if err != nil || got.State != catalog.StatePending {
		t.Fatalf("CREATED -> PENDING: %v %+v", err, got)
	}
	_, _, err = step(catalog.JobUpdate{IfState: catalog.Ptr(catalog.StateCreated), State: catalog.Ptr(catalog.StateRunning)})
	wantKind(t, "IfState CREATED on a PENDING job", err, errs.Conflict)
	got, now, err := step(catalog.JobUpdate{IfState: catalog.Ptr(catalog.StatePending), State: catalog.Ptr(catalog.StateRunning), Host: catalog.Ptr("w1")})
	if err != nil || got.State != catalog.StateRunning || got.StartedAt == nil || !got.StartedAt.Equal(now) || got.Host != "w1" {
		t.Fatalf("PENDING -> RUNNING: %v %+v (tx time %v)", err, got, now)
	}
	started := *got.StartedAt
	// The completion deadline is set once the job started (a rule's window counts from there).
	deadline := started.Add(8 * time.Hour)
	if got, _, err = step(catalog.JobUpdate{CompleteBy: &deadline}); err != nil || got.CompleteBy == nil || !got.CompleteBy.Equal(deadline) {
		t.Fatalf("set CompleteBy: %v %+v", err, got)
	}
	beat := started.Add(time.Minute)
	if got, _, err = step(catalog.JobUpdate{HeartbeatAt: &beat}); err != nil || got.HeartbeatAt == nil || !got.HeartbeatAt.Equal(beat) {
		t.Fatalf("set HeartbeatAt: %v %+v", err, got)
	}
	// Progress without a state change, then the same state again: no transition, allowed.
	if _, _, err = step(catalog.JobUpdate{BytesDone: catalog.Ptr(int64(100)), FilesDone: catalog.Ptr(int64(3))}); err != nil {
		t.Fatalf("progress: %v", err)
	}
	if _, _, err = step(catalog.JobUpdate{State: catalog.Ptr(catalog.StateRunning), BytesTotal: catalog.Ptr(int64(1000))}); err != nil {
		t.Fatalf("RUNNING -> RUNNING: %v", err)
	}
	// A retry goes back to PENDING and keeps the first start.
	if _, _, err = step(catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending), Attempt: catalog.Ptr(1), Error: catalog.Ptr("timeout")}); err != nil {
		t.Fatalf("RUNNING -> PENDING: %v", err)
	}
	if _, _, err = step(catalog.JobUpdate{State: catalog.Ptr(catalog.StateRunning)}); err != nil {
		t.Fatalf("PENDING -> RUNNING again: %v", err)
	}
	got, now, err = step(catalog.JobUpdate{State: catalog.Ptr(catalog.StateCompleted), PointID: catalog.Ptr("abc123"), Error: catalog.Ptr("")})
	if err != nil || got.FinishedAt == nil || !got.FinishedAt.Equal(now) || !got.StartedAt.Equal(started) {
		t.Fatalf("RUNNING -> COMPLETED: %v %+v", err, got)
	}
	want := *got
	tx(t, s, func(tx catalog.Tx) error {
		stored, err := tx.GetJob(ctx, j.ID)
		if err != nil {
			return err
		}
		same(t, "stored job", stored, &want)
		if stored.BytesDone != 100 || stored.FilesDone != 3 || stored.BytesTotal != 1000 || stored.Attempt != 1 ||
			stored.PointID != "abc123" || stored.Error != "" || stored.State != catalog.StateCompleted ||
			stored.CompleteBy == nil || !stored.CompleteBy.Equal(deadline) || stored.HeartbeatAt == nil || !stored.HeartbeatAt.Equal(beat) {
			t.Fatalf("updates not stored: %+v", stored)
		}
		return nil
	})
	// Terminal states are final, even for a field that is not the state.
	for _, u := range []catalog.JobUpdate{
		{State: catalog.Ptr(catalog.StateRunning)},
		{State: catalog.Ptr(catalog.StateFailed)},
		{BytesDone: catalog.Ptr(int64(5))},
	} {
		_, _, err = step(u)
		wantKind(t, "update of a COMPLETED job", err, errs.Conflict)
	}
	err = s.Tx(ctx, func(tx catalog.Tx) error {
		_, err := tx.UpdateJob(ctx, "nope", catalog.JobUpdate{})
		return err
	})
	wantKind(t, "UpdateJob(nope)", err, errs.NotFound)

	// The other ways out.
	for _, path := range [][]catalog.State{
		{catalog.StateExpired},
		{catalog.StateAborted},
		{catalog.StatePending, catalog.StateExpired},
		{catalog.StatePending, catalog.StateAborted},
		{catalog.StatePending, catalog.StateRunning, catalog.StatePartial},
		{catalog.StatePending, catalog.StateRunning, catalog.StateFailed},
		{catalog.StatePending, catalog.StateRunning, catalog.StateAborted},
	} {
		j := &catalog.Job{Kind: catalog.JobRestore}
		tx(t, s, func(tx catalog.Tx) error {
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
			for _, st := range path {
				if _, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: catalog.Ptr(st)}); err != nil {
					return fmt.Errorf("path %v: %w", path, err)
				}
			}
			return nil
		})
	}
}

func testConcurrentClaim(t *testing.T, s catalog.Store) {
	j := &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending}
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateJob(ctx, j) })
	const n = 8
	results := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			results[i] = s.Tx(ctx, func(tx catalog.Tx) error {
				_, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{
					IfState: catalog.Ptr(catalog.StatePending), State: catalog.Ptr(catalog.StateRunning),
					Host: catalog.Ptr(fmt.Sprintf("worker-%d", i)),
				})
				return err
			})
		}(i)
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("workers %d and %d both claimed the job", winner, i)
			}
			winner = i
		case errs.Is(err, errs.Conflict):
		default:
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no worker claimed the job")
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetJob(ctx, j.ID)
		if err == nil && got.Host != fmt.Sprintf("worker-%d", winner) {
			t.Fatalf("job host %q, winner was worker-%d", got.Host, winner)
		}
		return err
	})
}

func ids(jobs []*catalog.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func testListJobs(t *testing.T, s catalog.Store) {
	base := ts("2031-05-01T00:00:00Z")
	type spec struct {
		kind                  catalog.JobKind
		state                 catalog.State
		resource, vault, plan string
		target                string
	}
	specs := []spec{
		{catalog.JobBackup, catalog.StateCreated, "db", "main", "daily", ""},
		{catalog.JobBackup, catalog.StatePending, "db", "main", "daily", ""},
		{catalog.JobBackup, catalog.StatePending, "home", "main", "hourly", ""},
		{catalog.JobCopy, catalog.StateCreated, "db", "main", "daily", "offsite"},
		{catalog.JobRestore, catalog.StatePending, "db", "offsite", "", ""},
		{catalog.JobVerify, catalog.StateCreated, "home", "offsite", "", ""},
		{catalog.JobPrune, catalog.StateCreated, "", "main", "", ""},
		{catalog.JobBackup, catalog.StateCreated, "home", "main", "hourly", ""},
	}
	var all []*catalog.Job
	tx(t, s, func(tx catalog.Tx) error {
		for i, sp := range specs {
			j := &catalog.Job{Kind: sp.kind, State: sp.state, Resource: sp.resource, Vault: sp.vault,
				Plan: sp.plan, TargetVault: sp.target, CreatedAt: base.Add(time.Duration(i) * time.Hour),
				DedupKey: fmt.Sprintf("k%d", i)}
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
			all = append(all, j)
		}
		return nil
	})
	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i].ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    catalog.JobFilter
		want []string
	}{
		{"all", catalog.JobFilter{}, pick(0, 1, 2, 3, 4, 5, 6, 7)},
		{"kind", catalog.JobFilter{Kind: catalog.Ptr(catalog.JobBackup)}, pick(0, 1, 2, 7)},
		{"state", catalog.JobFilter{State: catalog.Ptr(catalog.StatePending)}, pick(1, 2, 4)},
		{"states", catalog.JobFilter{States: []catalog.State{catalog.StatePending, catalog.StateRunning}}, pick(1, 2, 4)},
		{"resource", catalog.JobFilter{Resource: catalog.Ptr("home")}, pick(2, 5, 7)},
		{"vault or target", catalog.JobFilter{Vault: catalog.Ptr("offsite")}, pick(3, 4, 5)},
		{"plan", catalog.JobFilter{Plan: catalog.Ptr("hourly")}, pick(2, 7)},
		{"dedup key", catalog.JobFilter{DedupKey: catalog.Ptr("k3")}, pick(3)},
		{"since", catalog.JobFilter{Since: catalog.Ptr(base.Add(5 * time.Hour))}, pick(5, 6, 7)},
		{"until", catalog.JobFilter{Until: catalog.Ptr(base.Add(2 * time.Hour))}, pick(0, 1)},
		{"window", catalog.JobFilter{Since: catalog.Ptr(base.Add(time.Hour)), Until: catalog.Ptr(base.Add(3 * time.Hour))}, pick(1, 2)},
		{"combined", catalog.JobFilter{Kind: catalog.Ptr(catalog.JobBackup), Resource: catalog.Ptr("db"), State: catalog.Ptr(catalog.StateCreated)}, pick(0)},
		{"limit", catalog.JobFilter{Limit: 3}, pick(0, 1, 2)},
		{"after", catalog.JobFilter{After: all[5].ID}, pick(6, 7)},
		{"newest", catalog.JobFilter{Newest: true, Limit: 2}, pick(7, 6)},
		{"newest after", catalog.JobFilter{Newest: true, After: all[2].ID}, pick(1, 0)},
		{"none", catalog.JobFilter{Resource: catalog.Ptr("nothing")}, []string{}},
	}
	tx(t, s, func(tx catalog.Tx) error {
		for _, c := range cases {
			got, err := tx.ListJobs(ctx, c.f)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			same(t, c.name, ids(got), c.want)
		}
		// Paging with the cursor visits every job once, in both directions.
		for _, newest := range []bool{false, true} {
			var seen []string
			f := catalog.JobFilter{Limit: 3, Newest: newest}
			for {
				page, err := tx.ListJobs(ctx, f)
				if err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				seen = append(seen, ids(page)...)
				f.After = page[len(page)-1].ID
			}
			want := pick(0, 1, 2, 3, 4, 5, 6, 7)
			if newest {
				want = pick(7, 6, 5, 4, 3, 2, 1, 0)
			}
			same(t, fmt.Sprintf("paging newest=%v", newest), seen, want)
		}
		_, err := tx.ListJobs(ctx, catalog.JobFilter{Limit: -1})
		wantKind(t, "negative limit", err, errs.Invalid)
		_, err = tx.ListJobs(ctx, catalog.JobFilter{Since: catalog.Ptr(base), Until: catalog.Ptr(base)})
		wantKind(t, "empty window", err, errs.Invalid)
		return nil
	})
}

func testPoints(t *testing.T, s catalog.Store) {
	p := &catalog.Point{
		ID: "00ff", Vault: "main", Resource: "db", Kind: "postgres", Time: ts("2031-01-01T10:00:00.123456789Z"),
		Host: "db1", Paths: []string{"/var/lib/pg", "/etc/pg"}, Tags: map[string]string{"plan": "daily"},
		Parent: "00aa", SizeBytes: 12345, RangeFrom: catalog.Ptr(ts("2031-01-01T09:00:00Z")),
		RangeTo: catalog.Ptr(ts("2031-01-01T10:00:00Z")),
	}
	var created time.Time
	tx(t, s, func(tx catalog.Tx) error {
		created = tx.Now()
		return tx.UpsertPoint(ctx, p)
	})
	if p.State != catalog.PointAvailable || !p.CreatedAt.Equal(created) || p.Time.Nanosecond() != 123456000 {
		t.Fatalf("defaults or truncation not applied: %+v", p)
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetPoint(ctx, p.ID)
		if err != nil {
			return err
		}
		same(t, "point", got, p)
		_, err = tx.GetPoint(ctx, "0bad")
		wantKind(t, "GetPoint(unknown)", err, errs.NotFound)
		return nil
	})
	// Upserting again updates the point and keeps when it was first indexed.
	q := *p
	q.SizeBytes, q.State, q.CreatedAt, q.Tags = 999, catalog.PointMissing, time.Time{}, nil
	tx(t, s, func(tx catalog.Tx) error { return tx.UpsertPoint(ctx, &q) })
	if !q.CreatedAt.Equal(created) {
		t.Fatalf("upsert moved CreatedAt from %v to %v", created, q.CreatedAt)
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetPoint(ctx, p.ID)
		if err == nil {
			same(t, "upserted point", got, &q)
		}
		return err
	})
	// Deleting marks it, once.
	var deleted *catalog.Point
	var delAt time.Time
	tx(t, s, func(tx catalog.Tx) error {
		delAt = tx.Now()
		var err error
		deleted, err = tx.MarkPointDeleted(ctx, p.ID)
		return err
	})
	if deleted.State != catalog.PointDeleted || deleted.DeletedAt == nil || !deleted.DeletedAt.Equal(delAt) {
		t.Fatalf("MarkPointDeleted: %+v (tx time %v)", deleted, delAt)
	}
	tx(t, s, func(tx catalog.Tx) error {
		again, err := tx.MarkPointDeleted(ctx, p.ID)
		if err == nil {
			same(t, "deleted twice", again, deleted)
		}
		_, err2 := tx.MarkPointDeleted(ctx, "0bad")
		wantKind(t, "MarkPointDeleted(unknown)", err2, errs.NotFound)
		return err
	})
	bad := map[string]*catalog.Point{
		"no ID":          {Vault: "v", Resource: "r", Kind: "files", Time: time.Now()},
		"ID not hex":     {ID: "xyz", Vault: "v", Resource: "r", Kind: "files", Time: time.Now()},
		"ID upper case":  {ID: "ABCD", Vault: "v", Resource: "r", Kind: "files", Time: time.Now()},
		"no vault":       {ID: "01", Resource: "r", Kind: "files", Time: time.Now()},
		"no time":        {ID: "01", Vault: "v", Resource: "r", Kind: "files"},
		"unknown state":  {ID: "01", Vault: "v", Resource: "r", Kind: "files", Time: time.Now(), State: "GONE"},
		"half a range":   {ID: "01", Vault: "v", Resource: "r", Kind: "files", Time: time.Now(), RangeFrom: catalog.Ptr(time.Now())},
		"negative size":  {ID: "01", Vault: "v", Resource: "r", Kind: "files", Time: time.Now(), SizeBytes: -1},
		"range reversed": {ID: "01", Vault: "v", Resource: "r", Kind: "files", Time: time.Now(), RangeFrom: catalog.Ptr(time.Now()), RangeTo: catalog.Ptr(time.Now().Add(-time.Hour))},
	}
	tx(t, s, func(tx catalog.Tx) error {
		for name, p := range bad {
			wantKind(t, name, tx.UpsertPoint(ctx, p), errs.Invalid)
		}
		// A point stored as DELETED gets its deletion time.
		d := &catalog.Point{ID: "0d", Vault: "v", Resource: "r", Kind: "files", Time: time.Now(), State: catalog.PointDeleted}
		if err := tx.UpsertPoint(ctx, d); err != nil {
			return err
		}
		if d.DeletedAt == nil || !d.DeletedAt.Equal(tx.Now()) {
			t.Fatalf("DELETED point without deletion time: %+v", d)
		}
		return nil
	})
}

func pointIDs(ps []*catalog.Point) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func testListPoints(t *testing.T, s catalog.Store) {
	base := ts("2031-06-01T00:00:00Z")
	type spec struct {
		id, vault, resource, kind, host string
		hour                            int
		copiedFrom, parent              string
	}
	// Two points share an hour, so the cursor must break the tie by ID.
	specs := []spec{
		{"01", "main", "db", "postgres", "db1", 0, "", ""},
		{"02", "main", "home", "files", "laptop", 1, "", ""},
		{"0a", "offsite", "db", "postgres", "db1", 2, "01", ""},
		{"03", "main", "db", "postgres", "db1", 2, "", "01"},
		{"04", "main", "home", "files", "laptop", 3, "", "02"},
		{"05", "offsite", "home", "files", "laptop", 4, "02", ""},
	}
	tx(t, s, func(tx catalog.Tx) error {
		for _, sp := range specs {
			if err := tx.UpsertPoint(ctx, &catalog.Point{ID: sp.id, Vault: sp.vault, Resource: sp.resource,
				Kind: sp.kind, Host: sp.host, Time: base.Add(time.Duration(sp.hour) * time.Hour),
				CopiedFrom: sp.copiedFrom, Parent: sp.parent}); err != nil {
				return err
			}
		}
		_, err := tx.MarkPointDeleted(ctx, "04")
		return err
	})
	cases := []struct {
		name string
		f    catalog.PointFilter
		want []string
	}{
		{"all by time then ID", catalog.PointFilter{}, []string{"01", "02", "03", "0a", "04", "05"}},
		{"vault", catalog.PointFilter{Vault: catalog.Ptr("offsite")}, []string{"0a", "05"}},
		{"resource", catalog.PointFilter{Resource: catalog.Ptr("db")}, []string{"01", "03", "0a"}},
		{"kind", catalog.PointFilter{Kind: catalog.Ptr("files")}, []string{"02", "04", "05"}},
		{"host", catalog.PointFilter{Host: catalog.Ptr("laptop")}, []string{"02", "04", "05"}},
		{"state", catalog.PointFilter{State: catalog.Ptr(catalog.PointDeleted)}, []string{"04"}},
		{"parent", catalog.PointFilter{Parent: catalog.Ptr("01")}, []string{"03"}},
		{"copied from", catalog.PointFilter{CopiedFrom: catalog.Ptr("02")}, []string{"05"}},
		{"since", catalog.PointFilter{Since: catalog.Ptr(base.Add(2 * time.Hour))}, []string{"03", "0a", "04", "05"}},
		{"until", catalog.PointFilter{Until: catalog.Ptr(base.Add(2 * time.Hour))}, []string{"01", "02"}},
		{"newest", catalog.PointFilter{Newest: true, Limit: 3}, []string{"05", "04", "0a"}},
		{"vault and resource", catalog.PointFilter{Vault: catalog.Ptr("main"), Resource: catalog.Ptr("home")}, []string{"02", "04"}},
	}
	tx(t, s, func(tx catalog.Tx) error {
		for _, c := range cases {
			got, err := tx.ListPoints(ctx, c.f)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			same(t, c.name, pointIDs(got), c.want)
		}
		for _, newest := range []bool{false, true} {
			for _, limit := range []int{1, 2, 4} {
				var seen []string
				f := catalog.PointFilter{Limit: limit, Newest: newest}
				for {
					page, err := tx.ListPoints(ctx, f)
					if err != nil {
						return err
					}
					if len(page) == 0 {
						break
					}
					seen = append(seen, pointIDs(page)...)
					f.After = page[len(page)-1].Cursor()
				}
				want := []string{"01", "02", "03", "0a", "04", "05"}
				if newest {
					want = []string{"05", "04", "0a", "03", "02", "01"}
				}
				same(t, fmt.Sprintf("paging by %d newest=%v", limit, newest), seen, want)
			}
		}
		for _, c := range []string{"garbage", "12.", ".01", "x.01", "12.XYZ"} {
			_, err := tx.ListPoints(ctx, catalog.PointFilter{After: c})
			wantKind(t, "cursor "+c, err, errs.Invalid)
		}
		_, err := tx.ListPoints(ctx, catalog.PointFilter{Limit: -2})
		wantKind(t, "negative limit", err, errs.Invalid)
		return nil
	})
}

func testEvents(t *testing.T, s catalog.Store) {
	base := ts("2031-07-01T00:00:00Z")
	detail := json.RawMessage(`{"b": 2,  "a": [1, 2, 3], "s": "é"}`)
	var evs []*catalog.Event
	var now time.Time
	tx(t, s, func(tx catalog.Tx) error {
		now = tx.Now()
		first := &catalog.Event{Source: "rewind.backup", DetailType: "Backup Job State Change", Site: "paris",
			Resources: []string{"db", "00ff"}, Detail: detail}
		if err := tx.AppendEvent(ctx, first); err != nil {
			return err
		}
		evs = append(evs, first)
		for i := 1; i < 6; i++ {
			src := "rewind.backup"
			if i%2 == 0 {
				src = "rewind.runbook"
			}
			e := &catalog.Event{Source: src, DetailType: "Test", Time: base.Add(time.Duration(i) * time.Hour)}
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
			evs = append(evs, e)
		}
		wantKind(t, "duplicate event ID", tx.AppendEvent(ctx, &catalog.Event{ID: first.ID, Source: "x", DetailType: "y"}), errs.Exists)
		wantKind(t, "no source", tx.AppendEvent(ctx, &catalog.Event{DetailType: "y"}), errs.Invalid)
		wantKind(t, "detail not an object", tx.AppendEvent(ctx, &catalog.Event{Source: "x", DetailType: "y", Detail: json.RawMessage(`"s"`)}), errs.Invalid)
		return nil
	})
	if e := evs[0]; e.ID == "" || e.Version != "0" || !e.Time.Equal(now) {
		t.Fatalf("event defaults not filled: %+v", e)
	}
	if string(evs[1].Detail) != "{}" || evs[1].Resources == nil {
		t.Fatalf("empty detail and resources not filled: %+v", evs[1])
	}
	eventIDs := func(es []*catalog.Event) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.ID
		}
		return out
	}
	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, evs[i].ID)
		}
		return out
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.ListEvents(ctx, catalog.EventFilter{})
		if err != nil {
			return err
		}
		same(t, "all events", got, evs)
		if !bytes.Equal(got[0].Detail, detail) {
			t.Fatalf("detail changed: got %s, want %s", got[0].Detail, detail)
		}
		for _, c := range []struct {
			name string
			f    catalog.EventFilter
			want []string
		}{
			{"source", catalog.EventFilter{Source: catalog.Ptr("rewind.runbook")}, pick(2, 4)},
			{"detail type", catalog.EventFilter{DetailType: catalog.Ptr("Test")}, pick(1, 2, 3, 4, 5)},
			{"window", catalog.EventFilter{Since: catalog.Ptr(base.Add(2 * time.Hour)), Until: catalog.Ptr(base.Add(4 * time.Hour))}, pick(2, 3)},
			{"limit", catalog.EventFilter{Limit: 2}, pick(0, 1)},
			{"after", catalog.EventFilter{After: evs[3].ID}, pick(4, 5)},
		} {
			got, err := tx.ListEvents(ctx, c.f)
			if err != nil {
				return err
			}
			same(t, c.name, eventIDs(got), c.want)
		}
		return nil
	})
	// Dispatching.
	var dispatchedAt time.Time
	tx(t, s, func(tx catalog.Tx) error {
		dispatchedAt = tx.Now()
		return tx.MarkDispatched(ctx, []string{evs[1].ID, evs[3].ID, evs[1].ID})
	})
	err := s.Tx(ctx, func(tx catalog.Tx) error {
		return tx.MarkDispatched(ctx, []string{evs[0].ID, "no-such-event"})
	})
	wantKind(t, "MarkDispatched with an unknown ID", err, errs.NotFound)
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.MarkDispatched(ctx, nil); err != nil {
			return err
		}
		// Marking again keeps the first time.
		if err := tx.MarkDispatched(ctx, []string{evs[1].ID}); err != nil {
			return err
		}
		got, err := tx.ListEvents(ctx, catalog.EventFilter{Undispatched: true})
		if err != nil {
			return err
		}
		same(t, "undispatched", eventIDs(got), pick(0, 2, 4, 5))
		all, err := tx.ListEvents(ctx, catalog.EventFilter{})
		if err != nil {
			return err
		}
		for i, e := range all {
			switch i {
			case 1, 3:
				if e.DispatchedAt == nil || !e.DispatchedAt.Equal(dispatchedAt) {
					t.Fatalf("event %d dispatched at %v, want %v", i, e.DispatchedAt, dispatchedAt)
				}
			default:
				if e.DispatchedAt != nil {
					t.Fatalf("event %d dispatched at %v, want never", i, e.DispatchedAt)
				}
			}
		}
		return nil
	})
}

func testEventsWithStateChange(t *testing.T, s catalog.Store) {
	j := &catalog.Job{Kind: catalog.JobRestore, Resource: "db", Vault: "main"}
	mk := func(j *catalog.Job) *catalog.Event { return catalog.JobStateEvent(j, "paris") }
	tx(t, s, func(tx catalog.Tx) error { return catalog.CreateJobWithEvent(ctx, tx, j, mk) })
	tx(t, s, func(tx catalog.Tx) error {
		if _, err := catalog.UpdateJobWithEvent(ctx, tx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)}, mk); err != nil {
			return err
		}
		// No state change, no event.
		_, err := catalog.UpdateJobWithEvent(ctx, tx, j.ID, catalog.JobUpdate{BytesTotal: catalog.Ptr(int64(9))}, mk)
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		es, err := tx.ListEvents(ctx, catalog.EventFilter{DetailType: catalog.Ptr(catalog.DetailRestoreJob)})
		if err != nil {
			return err
		}
		if len(es) != 2 {
			t.Fatalf("%d restore job events, want 2", len(es))
		}
		var d catalog.JobDetail
		if err := json.Unmarshal(es[1].Detail, &d); err != nil {
			return err
		}
		if d.JobID != j.ID || d.State != catalog.StatePending || es[1].Source != catalog.EventSource || es[1].Site != "paris" {
			t.Fatalf("event %+v detail %+v", es[1], d)
		}
		return nil
	})
}

var errBoom = errors.New("boom")

func testRollback(t *testing.T, s catalog.Store) {
	j := &catalog.Job{Kind: catalog.JobBackup}
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateJob(ctx, j) })
	mk := func(j *catalog.Job) *catalog.Event { return catalog.JobStateEvent(j, "") }
	err := s.Tx(ctx, func(tx catalog.Tx) error {
		if _, err := catalog.UpdateJobWithEvent(ctx, tx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)}, mk); err != nil {
			return err
		}
		if err := tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobVerify}); err != nil {
			return err
		}
		if err := tx.UpsertPoint(ctx, &catalog.Point{ID: "0e", Vault: "v", Resource: "r", Kind: "files", Time: time.Now()}); err != nil {
			return err
		}
		return fmt.Errorf("the worker failed: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Tx returned %v, want fn's error", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "panic in fn" {
				t.Fatalf("recovered %v, want the panic re-raised", p)
			}
		}()
		_ = s.Tx(ctx, func(tx catalog.Tx) error {
			if _, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StateAborted)}); err != nil {
				return err
			}
			if err := tx.AppendEvent(ctx, mk(j)); err != nil {
				return err
			}
			panic("panic in fn")
		})
	}()
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetJob(ctx, j.ID)
		if err != nil {
			return err
		}
		if got.State != catalog.StateCreated {
			t.Fatalf("rolled-back state change stored: %s", got.State)
		}
		es, err := tx.ListEvents(ctx, catalog.EventFilter{})
		if err != nil {
			return err
		}
		if len(es) != 0 {
			t.Fatalf("rolled-back events stored: %d", len(es))
		}
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{})
		if len(jobs) != 1 {
			t.Fatalf("rolled-back job stored: %d jobs", len(jobs))
		}
		_, err2 := tx.GetPoint(ctx, "0e")
		wantKind(t, "rolled-back point", err2, errs.NotFound)
		return err
	})
}

func testNowFixed(t *testing.T, s catalog.Store) {
	var prev time.Time
	for i := 0; i < 3; i++ {
		tx(t, s, func(tx catalog.Tx) error {
			now := tx.Now()
			if now.Location() != time.UTC || now.Nanosecond()%1000 != 0 {
				t.Fatalf("Now %v is not UTC microseconds", now)
			}
			if now.Before(prev) {
				t.Fatalf("Now went back from %v to %v", prev, now)
			}
			prev = now
			j := &catalog.Job{Kind: catalog.JobBackup}
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond) // the clock moves on; the transaction's time must not
			e := &catalog.Event{Source: "s", DetailType: "d"}
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
			u, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StateAborted)})
			if err != nil {
				return err
			}
			if !tx.Now().Equal(now) || !j.CreatedAt.Equal(now) || !e.Time.Equal(now) || !u.FinishedAt.Equal(now) {
				t.Fatalf("times differ within one Tx: now %v, then %v, job %v, event %v, finished %v",
					now, tx.Now(), j.CreatedAt, e.Time, u.FinishedAt)
			}
			return nil
		})
	}
}

func testConcurrentTx(t *testing.T, s catalog.Store) {
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := s.Tx(ctx, func(tx catalog.Tx) error {
					j := &catalog.Job{Kind: catalog.JobBackup, Resource: fmt.Sprintf("r%d", w)}
					if err := tx.CreateJob(ctx, j); err != nil {
						return err
					}
					if err := tx.AppendEvent(ctx, catalog.JobStateEvent(j, "")); err != nil {
						return err
					}
					_, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)})
					return err
				})
				if err != nil {
					errc <- fmt.Errorf("worker %d, job %d: %w", w, i, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	tx(t, s, func(tx catalog.Tx) error {
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{State: catalog.Ptr(catalog.StatePending)})
		if err != nil {
			return err
		}
		es, err := tx.ListEvents(ctx, catalog.EventFilter{})
		if len(jobs) != workers*each || len(es) != workers*each {
			t.Fatalf("%d jobs and %d events, want %d of each", len(jobs), len(es), workers*each)
		}
		seen := map[string]bool{}
		for _, j := range jobs {
			if seen[j.ID] {
				t.Fatalf("job ID %s twice", j.ID)
			}
			seen[j.ID] = true
		}
		return err
	})
}
