package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
)

// runEvents executes the events command group with args and returns the exit status run
// would return, standard output and the error.
func runEvents(t *testing.T, stdin string, args ...string) (int, string, error) {
	t.Helper()
	cmd := newEventsCmd()
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err == nil {
		return 0, out.String(), nil
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v is not an *exitError", err)
	}
	return ee.code, out.String(), ee.err
}

func writeEventsFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEventsTestPattern(t *testing.T) {
	dir := t.TempDir()
	rule := writeEventsFile(t, dir, "rule.json", `{"source": ["rewind.backup"], "detail": {"state": ["FAILED"], "bytes": [{"numeric": [">", 0]}]}}`)
	failed := writeEventsFile(t, dir, "failed.json", `{"version": "0", "source": "rewind.backup", "detail-type": "Backup Job State Change", "detail": {"state": "FAILED", "bytes": 10}}`)
	ok := writeEventsFile(t, dir, "ok.json", `{"source": "rewind.backup", "detail": {"state": "COMPLETED", "bytes": 10}}`)
	badRule := writeEventsFile(t, dir, "bad-rule.json", `{"source": ["rewind.backup"], "detail": {"bytes": [{"numeric": [">", "zero"]}]}}`)
	notJSON := writeEventsFile(t, dir, "not.json", `{"source": "rewind.backup",`)
	missing := filepath.Join(dir, "missing.json")

	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		out     string
		errWant string // substring of the error; "" for none
	}{
		{"match", "", []string{"test-pattern", "--pattern", rule, "--event", failed}, 0, "match\n", ""},
		{"no match", "", []string{"test-pattern", "--pattern", rule, "--event", ok}, 1, "no match\n", ""},
		{"event from stdin", `{"source": "rewind.backup", "detail": {"state": "FAILED", "bytes": 1}}`,
			[]string{"test-pattern", "--pattern", rule, "--event", "-"}, 0, "match\n", ""},
		{"pattern from stdin", `{"source": ["rewind.restore"]}`,
			[]string{"test-pattern", "--pattern", "-", "--event", failed}, 1, "no match\n", ""},
		{"invalid pattern", "", []string{"test-pattern", "--pattern", badRule, "--event", failed}, 2, "",
			"$.detail.bytes[0].numeric[1]: expected a number, got a string"},
		{"pattern is not JSON", "", []string{"test-pattern", "--pattern", notJSON, "--event", failed}, 2, "", "not valid JSON"},
		{"event is not JSON", "", []string{"test-pattern", "--pattern", rule, "--event", notJSON}, 2, "", "event " + notJSON + ": pattern.Match: event is not valid JSON"},
		{"missing pattern file", "", []string{"test-pattern", "--pattern", missing, "--event", failed}, 2, "", "missing.json: no such file"},
		{"missing event file", "", []string{"test-pattern", "--pattern", rule, "--event", missing}, 2, "", "missing.json: no such file"},
		{"missing flag", "", []string{"test-pattern", "--pattern", rule}, 2, "", "both --pattern and --event are required"},
		{"both stdin", "", []string{"test-pattern", "--pattern", "-", "--event", "-"}, 2, "", "cannot both read standard input"},
		{"unknown flag", "", []string{"test-pattern", "--patern", rule}, 2, "", "unknown flag: --patern"},
		{"extra argument", "", []string{"test-pattern", "--pattern", rule, "--event", failed, "extra"}, 2, "", "unknown command \"extra\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, err := runEvents(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit status = %d, want %d (err %v)", code, tt.code, err)
			}
			if out != tt.out {
				t.Errorf("stdout = %q, want %q", out, tt.out)
			}
			if tt.errWant == "" {
				if err != nil {
					t.Errorf("error = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errWant) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.errWant)
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("error kind = %v, want invalid", errs.KindOf(err))
			}
		})
	}
}

func TestEventsTestPatternHintReachesUser(t *testing.T) {
	dir := t.TempDir()
	rule := writeEventsFile(t, dir, "rule.json", `{"source": "rewind.backup"}`)
	event := writeEventsFile(t, dir, "event.json", `{"source": "rewind.backup"}`)
	code, _, err := runEvents(t, "", "test-pattern", "--pattern", rule, "--event", event)
	if code != 2 || err == nil {
		t.Fatalf("exit %d, err %v; want 2 and an error", code, err)
	}
	var buf bytes.Buffer
	printError(&buf, err)
	for _, want := range []string{"$.source: must be an array", `hint: wrap the value in an array: "source": ["rewind.backup"]`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("printed error %q does not contain %q", buf.String(), want)
		}
	}
}

func TestEventsHelpEndsWithExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"test-pattern", "--help"}} {
		code, out, err := runEvents(t, "", args...)
		if code != 0 || err != nil {
			t.Fatalf("%v: exit %d, err %v", args, code, err)
		}
		if !strings.Contains(out, "Examples:\n  ") || !strings.Contains(out, "rewind events test-pattern --pattern rule.json --event event.json") {
			t.Errorf("%v: help has no runnable example:\n%s", args, out)
		}
	}
}

// TestRunEventsExitStatus goes through run, as the rewind binary does, to check the exit
// statuses the command line promises: 0 match, 1 no match, 2 invalid input.
func TestRunEventsExitStatus(t *testing.T) {
	dir := t.TempDir()
	rule := writeEventsFile(t, dir, "rule.json", `{"detail-type": [{"prefix": "Backup"}]}`)
	match := writeEventsFile(t, dir, "match.json", `{"detail-type": "Backup Job State Change"}`)
	other := writeEventsFile(t, dir, "other.json", `{"detail-type": "Restore Job State Change"}`)
	bad := writeEventsFile(t, dir, "bad.json", `{"detail-type": [{"prefix": "Backup", "suffix": "x"}]}`)
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"events", "test-pattern", "--pattern", rule, "--event", match}, 0},
		{[]string{"events", "test-pattern", "--pattern", rule, "--event", other}, 1},
		{[]string{"events", "test-pattern", "--pattern", bad, "--event", match}, 2},
		{[]string{"events", "test-pattern", "--pattern", rule}, 2},
	}
	for _, tt := range tests {
		if got := run(context.Background(), tt.args); got != tt.want {
			t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}
