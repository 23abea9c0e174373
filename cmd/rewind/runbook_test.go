package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runRunbook runs "rewind runbook ARGS…" and returns stdout, stderr and the exit code.
func runRunbook(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRunbookCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("error %v is not an *exitError", err)
		}
		code = ee.code
		if ee.err != nil {
			stderr.WriteString(ee.err.Error())
		}
	}
	return stdout.String(), stderr.String(), code
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunbookRunHelloExample(t *testing.T) {
	def := filepath.Join("..", "..", "examples", "runbooks", "hello.asl.yaml")
	stdout, stderr, code := runRunbook(t, "run", "--definition", def)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out struct {
		Greeting  string   `json:"greeting"`
		Checked   int      `json:"checked"`
		AnyFailed bool     `json:"anyFailed"`
		Hosts     []string `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if out.Greeting != "Hello, world!" || out.Checked != 3 || out.AnyFailed || strings.Join(out.Hosts, ",") != "alpha,beta,gamma" {
		t.Errorf("output %+v", out)
	}

	in := writeFile(t, "in.json", `{"name": "ops", "hosts": ["db1"]}`)
	stdout, stderr, code = runRunbook(t, "run", "--definition", def, "--input-file", in)
	if code != 0 || !strings.Contains(stdout, `"Hello, ops!"`) || !strings.Contains(stdout, `"db1"`) {
		t.Fatalf("with --input-file: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, _, code = runRunbook(t, "run", "--definition", def, "--input", `{"name": "n", "hosts": []}`)
	if code != 0 || !strings.Contains(stdout, `"checked": 0`) {
		t.Fatalf("with --input: exit %d\n%s", code, stdout)
	}
}

func TestRunbookRunFailure(t *testing.T) {
	def := writeFile(t, "fail.asl.json", `{"StartAt": "Run", "States": {
		"Run": {"Type": "Task", "Resource": "rewind:exec", "Parameters": {"Command": "sh", "Args": ["-c", "echo disk on fire >&2; exit 4"]}, "End": true}}}`)
	stdout, _, code := runRunbook(t, "run", "--definition", def)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stdout)
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if out["Error"] != "Exec.NonZeroExit" || !strings.Contains(out["Cause"], "disk on fire") {
		t.Errorf("output %v", out)
	}
}

func TestRunbookRunEventGoesToStderr(t *testing.T) {
	def := writeFile(t, "event.asl.yaml", "StartAt: Tell\nStates:\n  Tell:\n    Type: Task\n    Resource: rewind:event\n    Parameters:\n      DetailType: drill.done\n    End: true\n")
	stdout, stderr, code := runRunbook(t, "run", "--definition", def)
	if code != 0 || !strings.Contains(stderr, `"DetailType":"drill.done"`) || !strings.Contains(stdout, `"drill.done"`) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

func TestRunbookRunUsageErrors(t *testing.T) {
	invalid := writeFile(t, "bad.asl.yaml", "StartAt: A\nStates:\n  A:\n    Type: Pass\n    Next: Nowhere\n  B:\n    Type: Wait\n    End: true\n")
	unknown := writeFile(t, "unknown.asl.json", `{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "rewind:teleport", "End": true}}}`)
	good := writeFile(t, "good.asl.json", `{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}`)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"invalid definition lists all problems", []string{"run", "--definition", invalid},
			[]string{`States.A.Next: "Nowhere" is not a state`, "States.B: a Wait state needs exactly one", `state "B" is unreachable`}},
		{"unknown resource", []string{"run", "--definition", unknown}, []string{"rewind:teleport"}},
		{"missing definition flag", []string{"run"}, []string{"--definition is required"}},
		{"missing file", []string{"run", "--definition", filepath.Join(t.TempDir(), "nope.yaml")}, []string{"reading the definition"}},
		{"not json or yaml", []string{"run", "--definition", writeFile(t, "x.json", "{nope")}, []string{"not valid JSON"}},
		{"bad input", []string{"run", "--definition", good, "--input", "{"}, []string{"not valid JSON"}},
		{"both inputs", []string{"run", "--definition", good, "--input", "{}", "--input-file", good}, []string{"mutually exclusive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runRunbook(t, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestRunbookHelpEndsWithExamples(t *testing.T) {
	for _, c := range []*struct{ long string }{{newRunbookCmd().Long}, {newRunbookRunCmd().Long}} {
		i := strings.LastIndex(c.long, "Examples:")
		if i < 0 || !strings.Contains(c.long[i:], "rewind runbook run --definition") {
			t.Errorf("help does not end with runnable examples:\n%s", c.long)
		}
	}
}
