package pattern_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rewind-dr/rewind/internal/events/pattern"
)

var (
	benchSources = []string{"rewind.backup", "rewind.restore", "rewind.copy", "rewind.vault",
		"rewind.runbook", "rewind.schedule", "rewind.health", "rewind.catalog", "rewind.alarm", "rewind.site"}
	benchTypes  = []string{"Backup Job State Change", "Restore Job State Change", "Copy Job State Change", "Vault State Change", "Alarm State Change"}
	benchStates = []string{"CREATED", "RUNNING", "COMPLETED", "FAILED", "EXPIRED", "ABORTED"}
)

// benchRules builds n varied, valid rules: most name a source (so a Set can index them),
// some only a detail-type, some neither; their detail conditions use every operator.
func benchRules(n int) []*pattern.Pattern {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]*pattern.Pattern, 0, n)
	for i := 0; i < n; i++ {
		src := benchSources[r.IntN(len(benchSources))]
		typ := benchTypes[r.IntN(len(benchTypes))]
		state := benchStates[r.IntN(len(benchStates))]
		var detail string
		switch i % 10 {
		case 0:
			detail = fmt.Sprintf(`"state": [%q]`, state)
		case 1:
			detail = fmt.Sprintf(`"state": [{"anything-but": [%q, "CREATED"]}], "bytes": [{"numeric": [">", %d]}]`, state, r.IntN(1<<30))
		case 2:
			detail = fmt.Sprintf(`"vault": [{"prefix": "prod-%d"}], "sourceIp": [{"cidr": "10.%d.0.0/16"}]`, r.IntN(10), r.IntN(4))
		case 3:
			detail = fmt.Sprintf(`"path": [{"wildcard": "/srv/*/db%d/*.pack"}]`, r.IntN(5))
		case 4:
			detail = fmt.Sprintf(`"$or": [{"state": [%q]}, {"error": [{"exists": true}]}]`, state)
		case 5:
			detail = fmt.Sprintf(`"vault": [{"equals-ignore-case": "PROD-%d"}], "retries": [{"numeric": [">=", 0, "<", %d]}]`, r.IntN(10), 1+r.IntN(5))
		case 6:
			detail = `"error": [{"exists": false}], "state": ["COMPLETED"]`
		case 7:
			detail = fmt.Sprintf(`"tags": {"env": ["prod", "staging"], "team": [{"suffix": "-%d"}]}`, r.IntN(8))
		case 8:
			detail = fmt.Sprintf(`"resources": {"kind": ["volume"], "size": [{"numeric": ["<=", %d]}]}`, r.IntN(2000))
		case 9:
			detail = fmt.Sprintf(`"state": [{"anything-but": {"prefix": "%c"}}]`, state[0])
		}
		var src2 string
		switch {
		case i%20 == 19: // neither source nor detail-type: always evaluated
			src2 = fmt.Sprintf(`"site": ["site-%d"]`, r.IntN(3))
		case i%20 == 18:
			src2 = fmt.Sprintf(`"detail-type": [%q]`, typ)
		default:
			src2 = fmt.Sprintf(`"source": [%q], "detail-type": [%q]`, src, typ)
		}
		p, err := pattern.Compile([]byte(fmt.Sprintf(`{%s, "detail": {%s}}`, src2, detail)))
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

// benchEvent is a realistic Rewind event envelope of about 800 bytes.
const benchEvent = `{
  "version": "0",
  "id": "6f1c2a9e-3b7d-4c1e-9a8f-0d2e4b6c8a10",
  "source": "rewind.backup",
  "detail-type": "Backup Job State Change",
  "time": "2026-11-25T13:05:00Z",
  "site": "site-1",
  "resources": ["rewind:vault:prod-3", "rewind:job:7f3a"],
  "detail": {
    "jobId": "7f3a0c2e",
    "vault": "prod-3",
    "state": "FAILED",
    "previousState": "RUNNING",
    "bytes": 734003200,
    "retries": 2,
    "sourceIp": "10.1.17.4",
    "path": "/srv/pg/db2/0001.pack",
    "error": {"code": "Unavailable", "message": "storage unreachable"},
    "tags": {"env": "prod", "team": "storage-3", "owner": "ops"},
    "resources": [{"kind": "volume", "size": 500}, {"kind": "file", "size": 12}]
  }
}`

func benchEvents() [][]byte {
	evs := [][]byte{[]byte(benchEvent)}
	for _, src := range benchSources {
		for _, st := range benchStates[:3] {
			evs = append(evs, []byte(fmt.Sprintf(`{"source": %q, "detail-type": "Backup Job State Change", "site": "site-0",
				"detail": {"state": %q, "vault": "PROD-1", "retries": 0, "tags": {"env": "staging", "team": "a-1"}, "resources": {"kind": "volume", "size": 1}}}`, src, st)))
		}
	}
	return evs
}

func BenchmarkSet1000(b *testing.B) {
	s := pattern.NewSet()
	for i, p := range benchRules(1000) {
		s.Add(fmt.Sprintf("rule-%04d", i), p)
	}
	event := []byte(benchEvent)
	names, err := s.MatchAll(event)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(event)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.MatchAll(event); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(names)), "matches/event")
}

// BenchmarkSet1000Decoded measures rule evaluation alone, on an already decoded event.
func BenchmarkSet1000Decoded(b *testing.B) {
	s := pattern.NewSet()
	for i, p := range benchRules(1000) {
		s.Add(fmt.Sprintf("rule-%04d", i), p)
	}
	v := decodeForBench(b, benchEvent)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.MatchAllValue(v)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPattern(b *testing.B) {
	benches := []struct{ name, pattern string }{
		{"exact", `{"source": ["rewind.backup"], "detail-type": ["Backup Job State Change"], "detail": {"state": ["FAILED"]}}`},
		{"prefix-ignore-case", `{"detail": {"vault": [{"prefix": {"equals-ignore-case": "PROD-"}}]}}`},
		{"wildcard", `{"detail": {"path": [{"wildcard": "/srv/*/db*/*.pack"}]}}`},
		{"numeric-range", `{"detail": {"bytes": [{"numeric": [">", 0, "<=", 1e9]}]}}`},
		{"cidr", `{"detail": {"sourceIp": [{"cidr": "10.0.0.0/8"}]}}`},
		{"anything-but-list", `{"detail": {"state": [{"anything-but": ["COMPLETED", "RUNNING", "CREATED"]}]}}`},
		{"array-of-objects", `{"detail": {"resources": {"kind": ["volume"], "size": [{"numeric": [">=", 100]}]}}}`},
		{"or", `{"$or": [{"detail": {"state": ["COMPLETED"]}}, {"detail": {"error": {"code": ["Unavailable"]}}}]}`},
	}
	v := decodeForBench(b, benchEvent)
	for _, bb := range benches {
		p := mustCompile(b, bb.pattern)
		if !p.MatchValue(v) {
			b.Fatalf("%s: pattern does not match the benchmark event", bb.name)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.MatchValue(v)
			}
		})
	}
	b.Run("match-with-decode", func(b *testing.B) {
		p := mustCompile(b, benches[0].pattern)
		event := []byte(benchEvent)
		b.ReportAllocs()
		b.SetBytes(int64(len(event)))
		for i := 0; i < b.N; i++ {
			if _, err := p.Match(event); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCompile(b *testing.B) {
	src := []byte(`{"source": ["rewind.backup"], "detail": {"state": [{"anything-but": ["A", "B"]}], "bytes": [{"numeric": [">", 0, "<=", 5]}], "ip": [{"cidr": "10.0.0.0/8"}], "path": [{"wildcard": "/a/*/b"}]}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := pattern.Compile(src); err != nil {
			b.Fatal(err)
		}
	}
}
