package intake_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/events/intake"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// checkEnvelope holds for every envelope intake produces.
func checkEnvelope(t *testing.T, env rules.Envelope) {
	t.Helper()
	if env.Source == "" || env.DetailType == "" || env.ID == "" || env.Resources == nil {
		t.Fatalf("incomplete envelope %+v", env)
	}
	if strings.HasPrefix(env.Source, intake.ReservedPrefix) {
		t.Fatalf("reserved source accepted: %q", env.Source)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatalf("envelope does not encode: %v (%s)", err, env.Detail)
	}
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %s", b)
	}
}

func FuzzParsePutEvents(f *testing.F) {
	f.Add(`{"Entries":[{"Source":"my.app","DetailType":"x","Detail":"{\"a\":1}","Resources":["r"],"Time":1.5}]}`)
	f.Add(`[{"source":"a","detail-type":"b","detail":{"x":[null]}}]`)
	f.Add(`{"source":"rewind.x","detail-type":"b","detail":"{}"}`)
	f.Fuzz(func(t *testing.T, body string) {
		entries, failed, err := intake.ParsePutEvents([]byte(body), now)
		if err != nil {
			return
		}
		if len(entries)+len(failed) == 0 || len(entries)+len(failed) > intake.MaxEntries {
			t.Fatalf("%d entries and %d failures", len(entries), len(failed))
		}
		for _, e := range entries {
			checkEnvelope(t, e.Envelope)
		}
	})
}

func FuzzParseAlertmanager(f *testing.F) {
	body, err := os.ReadFile("testdata/alertmanager.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(body))
	f.Add(`{"version":"4","receiver":"r","status":"resolved","alerts":[{"status":"resolved","labels":{},"startsAt":"2026-03-14T09:00:00Z"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		envs, err := intake.ParseAlertmanager([]byte(body), now)
		if err != nil {
			return
		}
		for _, env := range envs {
			checkEnvelope(t, env)
		}
	})
}

func FuzzMapping(f *testing.F) {
	f.Add(`{"check":{"hosts":["a"]},"at":"2026-03-14T08:00:00Z"}`, "$.check", "$.check.hosts", "$.at")
	f.Add(`{"a":1}`, "$", "", "$.a")
	f.Add(`[1,{"b":{}}]`, "$[1].b", "$..b", "")
	f.Fuzz(func(t *testing.T, body, detail, resources, at string) {
		m := intake.Mapping{Source: "fuzz", DetailType: "Fuzz", Detail: detail, Resources: resources, Time: at}
		env, err := m.Map([]byte(body), now)
		if err != nil {
			return
		}
		checkEnvelope(t, env)
	})
}
