package intake_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/intake"
)

var (
	now    = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestParsePutEvents(t *testing.T) {
	big := `{"Source":"my.app","DetailType":"x","Detail":"{\"a\":\"` + strings.Repeat("x", 256<<10) + `\"}"}`
	tests := []struct {
		name   string
		body   string
		ok     int      // accepted entries
		codes  []string // codes of refused entries, in order
		reqErr string   // request-level error substring
		check  func(t *testing.T, e []intake.Entry)
	}{
		{name: "AWS shape", body: `{"Entries":[{"Source":"my.app","DetailType":"Order Placed","Detail":"{\"id\": 7, \"n\": 1.50}","Resources":["arn:x"],"Time":"2026-03-14T09:00:00Z"}]}`, ok: 1,
			check: func(t *testing.T, e []intake.Entry) {
				env := e[0].Envelope
				if env.Source != "my.app" || env.DetailType != "Order Placed" || string(env.Detail) != `{"id":7,"n":1.50}` ||
					env.Resources[0] != "arn:x" || !env.Time.Equal(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)) || env.Version != "0" {
					t.Errorf("envelope = %+v", env)
				}
			}},
		{name: "Time as Unix seconds", body: `{"Entries":[{"Source":"my.app","DetailType":"x","Detail":"{}","Time":1773478800.5}]}`, ok: 1,
			check: func(t *testing.T, e []intake.Entry) {
				if want := time.Unix(1773478800, 5e8).UTC(); !e[0].Envelope.Time.Equal(want) {
					t.Errorf("time = %v, want %v", e[0].Envelope.Time, want)
				}
			}},
		{name: "no Time means now", body: `{"Entries":[{"Source":"my.app","DetailType":"x","Detail":"{}"}]}`, ok: 1,
			check: func(t *testing.T, e []intake.Entry) {
				if !e[0].Envelope.Time.Equal(now) || e[0].Envelope.Resources == nil {
					t.Errorf("envelope = %+v", e[0].Envelope)
				}
			}},
		{name: "Rewind shape inside Entries", body: `{"Entries":[{"source":"my.app","detail-type":"x","detail":{"a":[1,2]},"site":"eu-1"}]}`, ok: 1,
			check: func(t *testing.T, e []intake.Entry) {
				if string(e[0].Envelope.Detail) != `{"a":[1,2]}` || e[0].Envelope.Site != "eu-1" {
					t.Errorf("envelope = %+v", e[0].Envelope)
				}
			}},
		{name: "bare Rewind envelope, id replaced", body: `{"version":"0","id":"mine","source":"my.app","detail-type":"x","detail":{},"region":"us-1"}`, ok: 1,
			check: func(t *testing.T, e []intake.Entry) {
				if e[0].Envelope.ID == "mine" || e[0].Envelope.Site != "us-1" {
					t.Errorf("envelope = %+v", e[0].Envelope)
				}
			}},
		{name: "array of Rewind envelopes", body: `[{"source":"a.b","detail-type":"x","detail":{}},{"source":"a.c","detail-type":"y","detail":{}}]`, ok: 2},
		{name: "per-entry errors keep the good ones", body: `{"Entries":[
			{"Source":"rewind.backup","DetailType":"x","Detail":"{}"},
			{"Source":"my.app","DetailType":"x","Detail":"[1]"},
			{"Source":"my.app","DetailType":"x","Detail":"{}"},
			{"Source":"","DetailType":"x","Detail":"{}"},
			{"Source":"my.app","Detail":"{}"},
			{"Source":"my.app","DetailType":"x"},
			{"Source":"my.app","DetailType":"x","Detail":"{}","Resources":"arn"},
			{"Source":"my.app","DetailType":"x","Detail":"{}","Time":"yesterday"},
			{"Source":"my.app","DetailType":"x","Detail":"{}","Colour":"red"},
			"not an object"]}`, ok: 1,
			codes: []string{"NotAuthorizedForSourceException", "MalformedDetail", "InvalidArgument", "InvalidArgument", "InvalidArgument", "InvalidArgument", "InvalidArgument", "InvalidArgument", "InvalidArgument"}},
		{name: "both shapes for one field", body: `{"Entries":[{"Source":"a","source":"b","DetailType":"x","Detail":"{}"}]}`, codes: []string{"InvalidArgument"}},
		{name: "wrong version", body: `{"version":"1","source":"a","detail-type":"x","detail":{}}`, codes: []string{"InvalidArgument"}},
		{name: "too large", body: `{"Entries":[` + big + `]}`, codes: []string{"EntryTooLarge"}},
		{name: "not JSON", body: `{"Entries":`, reqErr: "not valid JSON"},
		{name: "no entries", body: `{"Entries":[]}`, reqErr: "no entries"},
		{name: "Entries not an array", body: `{"Entries":{}}`, reqErr: "Entries must be an array"},
		{name: "scalar body", body: `"x"`, reqErr: "must be a JSON object or array"},
		{name: "eleven entries", body: `{"Entries":[` + strings.TrimSuffix(strings.Repeat(`{"Source":"a","DetailType":"x","Detail":"{}"},`, 11), ",") + `]}`, reqErr: "11 entries, at most 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, failed, err := intake.ParsePutEvents([]byte(tt.body), now)
			if tt.reqErr != "" {
				if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tt.reqErr) {
					t.Fatalf("err = %v, want invalid containing %q", err, tt.reqErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != tt.ok {
				t.Errorf("%d entries accepted, want %d (failed: %+v)", len(entries), tt.ok, failed)
			}
			var codes []string
			for _, f := range failed {
				codes = append(codes, f.Code)
				if f.Message == "" {
					t.Errorf("entry %d: no message", f.Index)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tt.codes, ",") {
				t.Errorf("codes = %v, want %v (%+v)", codes, tt.codes, failed)
			}
			for _, e := range entries {
				if !uuidRE.MatchString(e.Envelope.ID) {
					t.Errorf("id %q is not a random UUID", e.Envelope.ID)
				}
			}
			if tt.check != nil && len(entries) > 0 {
				tt.check(t, entries)
			}
			resp := intake.NewResponse(entries, failed)
			if resp.FailedEntryCount != len(failed) || len(resp.Entries) != len(entries)+len(failed) {
				t.Errorf("response = %+v", resp)
			}
			for _, re := range resp.Entries {
				if (re.EventID == "") == (re.ErrorCode == "") {
					t.Errorf("response entry %+v has neither or both of id and error", re)
				}
			}
		})
	}
}

func TestParseAlertmanager(t *testing.T) {
	body, err := os.ReadFile("testdata/alertmanager.json")
	if err != nil {
		t.Fatal(err)
	}
	envs, err := intake.ParseAlertmanager(body, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 {
		t.Fatalf("%d envelopes", len(envs))
	}
	firing, resolved := envs[0], envs[1]
	if firing.Source != "alertmanager" || firing.DetailType != "Alertmanager Alert" || !uuidRE.MatchString(firing.ID) ||
		len(firing.Resources) != 1 || firing.Resources[0] != "db-1.example:9187" ||
		!firing.Time.Equal(time.Date(2026, 3, 14, 9, 20, 31, 402e6, time.UTC)) {
		t.Errorf("firing envelope = %+v", firing)
	}
	var d map[string]any
	if err := json.Unmarshal(firing.Detail, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"status": "firing", "alertname": "PostgresDown", "receiver": "rewind", "fingerprint": "b3b4a2ad8e1c1f15",
		"startsAt": "2026-03-14T09:20:31.402Z", "generatorURL": "http://prometheus.example:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("detail.%s = %v, want %v", k, d[k], v)
		}
	}
	if _, ok := d["endsAt"]; ok {
		t.Errorf("a firing alert's zero endsAt was kept: %v", d["endsAt"])
	}
	if d["labels"].(map[string]any)["severity"] != "critical" || d["annotations"].(map[string]any)["summary"] != "PostgreSQL on db-1 is down" {
		t.Errorf("labels/annotations = %v %v", d["labels"], d["annotations"])
	}
	if len(resolved.Resources) != 0 || !resolved.Time.Equal(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)) ||
		!strings.Contains(string(resolved.Detail), `"status":"resolved"`) || !strings.Contains(string(resolved.Detail), `"endsAt":"2026-03-14T09:00:00Z"`) {
		t.Errorf("resolved envelope = %+v %s", resolved, resolved.Detail)
	}
}

func TestParseAlertmanagerErrors(t *testing.T) {
	alert := `{"status":"firing","labels":{"alertname":"X"},"annotations":{},"startsAt":"2026-03-14T09:00:00Z","endsAt":"0001-01-01T00:00:00Z"}`
	tests := []struct{ name, body, want string }{
		{"not JSON", `{`, "not a webhook notification"},
		{"wrong type", `{"version": 4}`, "not a webhook notification"},
		{"no version", `{"receiver":"r","status":"firing","alerts":[]}`, "version is missing"},
		{"wrong version", `{"version":"3","receiver":"r","status":"firing","alerts":[]}`, `version "3" is not supported`},
		{"no receiver", `{"version":"4","status":"firing","alerts":[]}`, "receiver is missing"},
		{"bad status", `{"version":"4","receiver":"r","status":"pending","alerts":[]}`, `status "pending"`},
		{"no alerts", `{"version":"4","receiver":"r","status":"firing"}`, "alerts is missing"},
		{"alerts not array", `{"version":"4","receiver":"r","status":"firing","alerts":{}}`, "not a webhook notification"},
		{"alert bad status", `{"version":"4","receiver":"r","status":"firing","alerts":[{"status":"x","labels":{},"startsAt":"2026-03-14T09:00:00Z"}]}`, `alerts[0].status "x"`},
		{"alert no labels", `{"version":"4","receiver":"r","status":"firing","alerts":[` + alert + `,{"status":"firing","startsAt":"2026-03-14T09:00:00Z"}]}`, "alerts[1].labels is missing"},
		{"alert bad time", `{"version":"4","receiver":"r","status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"yesterday"}]}`, `alerts[0].startsAt "yesterday"`},
		{"trailing data", `{"version":"4","receiver":"r","status":"firing","alerts":[]} {}`, "data after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := intake.ParseAlertmanager([]byte(tt.body), now)
			if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want invalid containing %q", err, tt.want)
			}
		})
	}
}

func TestMapping(t *testing.T) {
	body := `{"check": {"name": "api", "state": "down", "hosts": ["a", "b"]}, "at": "2026-03-14T08:00:00Z", "ts": 1773475200, "host": "web-1", "n": 3}`
	tests := []struct {
		name    string
		m       intake.Mapping
		body    string
		want    string // detail JSON
		res     []string
		at      time.Time
		wantErr string
	}{
		{name: "whole body", m: intake.Mapping{Source: "uptime", DetailType: "Check"}, body: `{"a": 1.50}`, want: `{"a":1.50}`, res: []string{}, at: now},
		{name: "paths", m: intake.Mapping{Source: "uptime", DetailType: "Check", Detail: "$.check", Resources: "$.check.hosts", Time: "$.at"}, body: body,
			want: `{"hosts":["a","b"],"name":"api","state":"down"}`, res: []string{"a", "b"}, at: time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)},
		{name: "string resource, numeric time", m: intake.Mapping{Source: "uptime", DetailType: "Check", Resources: "$.host", Time: "$.ts"}, body: body,
			res: []string{"web-1"}, at: time.Unix(1773475200, 0).UTC()},
		{name: "time path selects nothing", m: intake.Mapping{Source: "uptime", DetailType: "Check", Time: "$.nope"}, body: `{}`, want: `{}`, res: []string{}, at: now},
		{name: "no source", m: intake.Mapping{DetailType: "Check"}, body: `{}`, wantErr: "source: is empty"},
		{name: "reserved source", m: intake.Mapping{Source: "rewind.x", DetailType: "Check"}, body: `{}`, wantErr: "reserved"},
		{name: "no detail type", m: intake.Mapping{Source: "u"}, body: `{}`, wantErr: "detail_type: is empty"},
		{name: "bad path", m: intake.Mapping{Source: "u", DetailType: "c", Detail: "$.["}, body: `{}`, wantErr: "detail: \"$.[\" is not a valid JSONPath"},
		{name: "relative path", m: intake.Mapping{Source: "u", DetailType: "c", Resources: "host"}, body: `{}`, wantErr: "resources: \"host\" is not a JSONPath"},
		{name: "body not JSON", m: intake.Mapping{Source: "u", DetailType: "c"}, body: `nope`, wantErr: "not JSON"},
		{name: "detail not an object", m: intake.Mapping{Source: "u", DetailType: "c", Detail: "$.n"}, body: body, wantErr: "selects a number; the detail must be a JSON object"},
		{name: "detail missing", m: intake.Mapping{Source: "u", DetailType: "c", Detail: "$.zzz"}, body: body, wantErr: "selects nothing"},
		{name: "resources not strings", m: intake.Mapping{Source: "u", DetailType: "c", Resources: "$.n"}, body: body, wantErr: "selects a number"},
		{name: "bad time", m: intake.Mapping{Source: "u", DetailType: "c", Time: "$.host"}, body: body, wantErr: "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tt.m.Map([]byte(tt.body), now)
			if tt.wantErr != "" {
				if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want invalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && string(env.Detail) != tt.want {
				t.Errorf("detail = %s, want %s", env.Detail, tt.want)
			}
			if strings.Join(env.Resources, ",") != strings.Join(tt.res, ",") || env.Resources == nil {
				t.Errorf("resources = %#v, want %v", env.Resources, tt.res)
			}
			if !env.Time.Equal(tt.at) {
				t.Errorf("time = %v, want %v", env.Time, tt.at)
			}
			if env.Source != tt.m.Source || env.DetailType != tt.m.DetailType || !uuidRE.MatchString(env.ID) {
				t.Errorf("envelope = %+v", env)
			}
		})
	}
}
