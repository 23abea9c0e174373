package catalog_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

var allStates = []catalog.State{
	catalog.StateCreated, catalog.StatePending, catalog.StateRunning, catalog.StateCompleted,
	catalog.StatePartial, catalog.StateFailed, catalog.StateAborted, catalog.StateExpired,
}

func TestCanTransition(t *testing.T) {
	allowed := map[[2]catalog.State]bool{
		{catalog.StateCreated, catalog.StatePending}:   true,
		{catalog.StateCreated, catalog.StateExpired}:   true,
		{catalog.StateCreated, catalog.StateAborted}:   true,
		{catalog.StatePending, catalog.StateRunning}:   true,
		{catalog.StatePending, catalog.StateExpired}:   true,
		{catalog.StatePending, catalog.StateAborted}:   true,
		{catalog.StateRunning, catalog.StateCompleted}: true,
		{catalog.StateRunning, catalog.StatePartial}:   true,
		{catalog.StateRunning, catalog.StateFailed}:    true,
		{catalog.StateRunning, catalog.StateAborted}:   true,
		{catalog.StateRunning, catalog.StatePending}:   true, // retry
	}
	// Every pair of states, the unknown one included: exactly the pairs above are allowed.
	states := append(allStates, "UNKNOWN")
	for _, from := range states {
		for _, to := range states {
			want := allowed[[2]catalog.State{from, to}]
			if got := catalog.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range allStates {
		terminal := s != catalog.StateCreated && s != catalog.StatePending && s != catalog.StateRunning
		if s.Terminal() != terminal || !s.Valid() {
			t.Errorf("%s: Terminal %v Valid %v", s, s.Terminal(), s.Valid())
		}
	}
}

func TestApply(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	j := catalog.Job{ID: "j", Kind: catalog.JobBackup, State: catalog.StatePending}
	before := j
	err := catalog.JobUpdate{State: catalog.Ptr(catalog.StateCompleted), BytesDone: catalog.Ptr(int64(5))}.Apply(&j, now)
	if !errs.Is(err, errs.Conflict) || j.BytesDone != 0 || j.State != before.State {
		t.Fatalf("forbidden transition: %v, job changed to %+v", err, j)
	}
	started := now.Add(-time.Hour)
	err = catalog.JobUpdate{State: catalog.Ptr(catalog.StateRunning), StartedAt: &started}.Apply(&j, now)
	if err != nil || !j.StartedAt.Equal(started) {
		t.Fatalf("explicit start: %v %+v", err, j)
	}
	err = catalog.JobUpdate{State: catalog.Ptr(catalog.StateFailed), Error: catalog.Ptr("disk full")}.Apply(&j, now)
	if err != nil || !j.FinishedAt.Equal(now) || j.Error != "disk full" {
		t.Fatalf("fail: %v %+v", err, j)
	}
	err = catalog.JobUpdate{Error: catalog.Ptr("x")}.Apply(&j, now)
	if !errs.Is(err, errs.Conflict) || errs.HintOf(err) == "" {
		t.Fatalf("update of a failed job: %v", err)
	}
}

func TestNewIDSorts(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	// Same millisecond, later milliseconds and a clock going back: always increasing.
	for _, d := range []time.Duration{0, 0, 0, time.Millisecond, time.Second, 0, -time.Hour, 2 * time.Second} {
		ids = append(ids, catalog.NewID(base.Add(d)))
	}
	for i, id := range ids {
		if len(id) != 26 || strings.Trim(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("ID %q is not a ULID", id)
		}
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("ID %d %s is not after %s", i, id, ids[i-1])
		}
	}
	// The first 10 characters are the milliseconds.
	a, b := catalog.NewID(base.Add(10*time.Second)), catalog.NewID(base.Add(10*time.Second+time.Millisecond))
	if a[:10] == b[:10] || !sort.StringsAreSorted([]string{a, b}) {
		t.Fatalf("time part: %s %s", a, b)
	}
	// Later than every time above, so the ID takes this millisecond rather than following
	// the last one: 10 characters of 5 bits each, most significant first.
	ms := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var want []byte
	for i := 9; i >= 0; i-- {
		want = append(want, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[ms>>(5*i)&31])
	}
	if got := catalog.NewID(time.UnixMilli(ms))[:10]; got != string(want) {
		t.Fatalf("time %d encodes as %s, want %s", ms, got, want)
	}
}

func TestJobStateEvent(t *testing.T) {
	created := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	for kind, dt := range map[catalog.JobKind]string{
		catalog.JobBackup: "Backup Job State Change", catalog.JobCopy: "Copy Job State Change",
		catalog.JobRestore: "Restore Job State Change", catalog.JobVerify: "Verify Job State Change",
		catalog.JobPrune: "Prune Job State Change",
	} {
		j := &catalog.Job{ID: "01J", Kind: kind, State: catalog.StateCompleted, Resource: "db", Vault: "main",
			PointID: "00ff", BytesDone: 42, CreatedResource: "db2", Error: "", CreatedAt: created}
		e := catalog.JobStateEvent(j, "paris")
		if e.Source != "rewind.backup" || e.DetailType != dt || e.Site != "paris" ||
			strings.Join(e.Resources, ",") != "db,00ff" {
			t.Fatalf("%s: %+v", kind, e)
		}
		var d map[string]any
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if d["jobId"] != "01J" || d["state"] != "COMPLETED" || d["resource"] != "db" || d["vault"] != "main" ||
			d["pointId"] != "00ff" || d["bytes"] != 42.0 || d["createdResource"] != "db2" ||
			d["creationDate"] != "2030-05-06T07:08:09Z" {
			t.Fatalf("%s detail: %s", kind, e.Detail)
		}
		if _, ok := d["error"]; ok {
			t.Fatalf("%s: empty error in detail: %s", kind, e.Detail)
		}
	}
}

func TestPointStateEvent(t *testing.T) {
	p := &catalog.Point{ID: "00ff", Vault: "main", Resource: "db", Kind: "postgres", SizeBytes: 36048,
		Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := catalog.PointStateEvent(p, catalog.PointDeleted, "")
	if e.DetailType != "Recovery Point State Change" || strings.Join(e.Resources, ",") != "main,00ff" {
		t.Fatalf("%+v", e)
	}
	var d map[string]any
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if d["status"] != "DELETED" || d["backupSizeInBytes"] != "36048" || d["pointId"] != "00ff" {
		t.Fatalf("detail %s", e.Detail)
	}
}

func TestEventEnvelopeJSON(t *testing.T) {
	e := catalog.Event{Version: "0", ID: "01J", Source: "rewind.backup", DetailType: "Backup Job State Change",
		Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Site: "paris", Resources: []string{"db"},
		Detail: json.RawMessage(`{"state":"RUNNING"}`), DispatchedAt: catalog.Ptr(time.Now())}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"0","id":"01J","source":"rewind.backup","detail-type":"Backup Job State Change",` +
		`"time":"2030-01-01T00:00:00Z","site":"paris","resources":["db"],"detail":{"state":"RUNNING"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestPointCursor(t *testing.T) {
	p := &catalog.Point{ID: "00ff", Time: time.Date(1960, 1, 1, 0, 0, 0, 1500, time.UTC)}
	at, id, err := catalog.ParsePointCursor(p.Cursor())
	if err != nil || id != "00ff" || !at.Equal(catalog.Micro(p.Time)) {
		t.Fatalf("round trip of %s: %v %s %v", p.Cursor(), at, id, err)
	}
	for _, c := range []string{"", "1", "1.", ".ab", "1.AB", "1.xyz", "a.ab", "1.ab.cd", "99999999999999999999.ab"} {
		if _, _, err := catalog.ParsePointCursor(c); !errs.Is(err, errs.Invalid) {
			t.Errorf("ParsePointCursor(%q): %v, want invalid", c, err)
		}
	}
}

// FuzzParsePointCursor checks that cursors from API requests never panic and that the ones
// accepted round-trip.
func FuzzParsePointCursor(f *testing.F) {
	f.Add("1700000000000000.00ff")
	f.Add("-5.ab")
	f.Add("x")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := catalog.ParsePointCursor(c)
		if err != nil {
			return
		}
		p := &catalog.Point{ID: id, Time: at}
		at2, id2, err := catalog.ParsePointCursor(p.Cursor())
		if err != nil || id2 != id || !at2.Equal(at) {
			t.Fatalf("%q: re-encoded %q does not round-trip: %v", c, p.Cursor(), err)
		}
	})
}

func TestPrepareDefaults(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 123456789, time.FixedZone("X", 7200))
	j := &catalog.Job{Kind: catalog.JobPrune}
	if err := j.Prepare(now); err != nil {
		t.Fatal(err)
	}
	if j.ID == "" || j.State != catalog.StateCreated || !j.CreatedAt.Equal(catalog.Micro(now)) ||
		j.CreatedAt.Location() != time.UTC || j.CreatedAt.Nanosecond() != 123456000 {
		t.Fatalf("job defaults: %+v", j)
	}
	e := &catalog.Event{Source: "s", DetailType: "d"}
	if err := e.Prepare(now); err != nil || e.Version != "0" || string(e.Detail) != "{}" || e.Resources == nil {
		t.Fatalf("event defaults: %v %+v", err, e)
	}
	for name, raw := range map[string]string{"empty object ok": "{}", "spaces": "  {\"a\":1}"} {
		e := &catalog.Event{Source: "s", DetailType: "d", Detail: json.RawMessage(raw)}
		if err := e.Prepare(now); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, raw := range map[string]string{"whitespace": "  ", "array": "[]", "truncated": `{"a"`} {
		e := &catalog.Event{Source: "s", DetailType: "d", Detail: json.RawMessage(raw)}
		if err := e.Prepare(now); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}
