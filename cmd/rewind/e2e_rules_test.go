package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerRulesThroughTheAPI runs the binary: a rule put from a YAML file is listed with
// its source, a bad one is refused with the field named, and a deleted one is gone.
func TestServerRulesThroughTheAPI(t *testing.T) {
	s := newServerEnv(t)
	s.start()
	defer s.stop()

	good := filepath.Join(s.dir, "orders.yaml")
	writeTestFile(t, good, `description: Orders to the shop's hook
pattern:
  source: [shop.orders]
  detail: {id: [12345678901234567890]}
targets:
  - webhook: {url: "https://hooks.example.com/orders", timeout: 5s}
    retry: {max_attempts: 3}
`)
	out := s.client("rule", "put", "orders", "--file", good)
	if !strings.Contains(out, "rule orders stored") {
		t.Fatalf("rule put: %q", out)
	}
	var list []struct {
		Name   string `json:"name"`
		Source string `json:"source"`
		Spec   struct {
			Pattern json.RawMessage `json:"pattern"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(s.client("rules", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "orders" || list[0].Source != "api" ||
		!strings.Contains(string(list[0].Spec.Pattern), "12345678901234567890") {
		t.Fatalf("rules: %+v", list)
	}
	if table := s.client("rules"); !strings.Contains(table, "orders") || !strings.Contains(table, "webhook") {
		t.Errorf("rules table:\n%s", table)
	}

	bad := filepath.Join(s.dir, "bad.yaml")
	writeTestFile(t, bad, "pattern: {source: [a]}\ntargets:\n  - webhook: {url: \"ftp://x\"}\n")
	e := &env{t: t, extra: []string{"REWIND_SERVER=" + s.url}}
	r := e.run("rule", "put", "bad", "--file", bad)
	if r.code == 0 || !strings.Contains(r.stderr, "targets[0].webhook.url") {
		t.Fatalf("bad rule: exit %d, stderr %q", r.code, r.stderr)
	}
	typo := filepath.Join(s.dir, "typo.yaml")
	writeTestFile(t, typo, "pattern: {source: [a]}\ntarget: []\n")
	if r := e.run("rule", "put", "typo", "--file", typo); r.code == 0 || !strings.Contains(r.stderr, "line 2") {
		t.Fatalf("rule file with an unknown field: exit %d, stderr %q", r.code, r.stderr)
	}

	if out := s.client("rule", "delete", "orders"); !strings.Contains(out, "rule orders deleted") {
		t.Fatalf("rule delete: %q", out)
	}
	if r := e.run("rule", "delete", "orders"); r.code == 0 || !strings.Contains(r.stderr, "orders") {
		t.Fatalf("second delete: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := strings.TrimSpace(s.client("rules", "--json")); out != "[]" {
		t.Fatalf("rules after delete: %s", out)
	}
}
