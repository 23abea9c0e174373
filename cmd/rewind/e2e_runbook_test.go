package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// executionJSON is what the tests read of "rewind execution show --json".
type executionJSON struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	Cause   string `json:"cause"`
	Output  json.RawMessage
	History []struct {
		Type  string `json:"type"`
		State string `json:"state"`
	} `json:"history"`
	Tokens []struct {
		Token      string `json:"token"`
		State      string `json:"state"`
		Resolution string `json:"resolution"`
	} `json:"tokens"`
}

// writeRunbook writes a definition into the server's runbooks directory (next to the
// config), replacing COUNT by the path of the test's count file.
func (s *serverEnv) writeRunbook(name, def string) {
	s.t.Helper()
	dir := filepath.Join(s.dir, "runbooks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	def = strings.ReplaceAll(def, "DIR", s.dir)
	if err := os.WriteFile(filepath.Join(dir, name+".asl.yaml"), []byte(def), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *serverEnv) startRunbook(name string, args ...string) string {
	s.t.Helper()
	out := s.client(append([]string{"runbook", "start", name, "--json"}, args...)...)
	var e executionJSON
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.ID == "" || e.Status != "RUNNING" {
		s.t.Fatalf("runbook start: %v\n%s", err, out)
	}
	return e.ID
}

func (s *serverEnv) execution(id string) executionJSON {
	s.t.Helper()
	out := s.client("execution", "show", id, "--json")
	var e executionJSON
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		s.t.Fatalf("execution show: %v\n%s", err, out)
	}
	return e
}

// waitExecution polls until cond holds for the execution, or fails after timeout.
func (s *serverEnv) waitExecution(id string, timeout time.Duration, what string, cond func(executionJSON) bool) executionJSON {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		e := s.execution(id)
		if cond(e) {
			return e
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logPath)
			s.t.Fatalf("timed out waiting for %s; execution: %+v\nserver log:\n%s", what, e, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasEvent(e executionJSON, typ, state string) bool {
	for _, h := range e.History {
		if h.Type == typ && h.State == state {
			return true
		}
	}
	return false
}

func ended(e executionJSON) bool { return e.Status != "RUNNING" }

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestRunbookResumesAfterKillDuringWait: a server killed with SIGKILL while an execution
// sits in a Wait state resumes it when it starts again; the task before the Wait is not
// run again and the one after it runs once.
func TestRunbookResumesAfterKillDuringWait(t *testing.T) {
	s := newServerEnv(t)
	s.writeRunbook("pause", `
StartAt: Before
States:
  Before:
    Type: Task
    Resource: rewind:exec
    Parameters: {Command: sh, Args: [-c, "echo before >> DIR/count"]}
    Next: Pause
  Pause: {Type: Wait, Seconds: 3, Next: After}
  After:
    Type: Task
    Resource: rewind:exec
    Parameters: {Command: sh, Args: [-c, "echo after >> DIR/count"]}
    End: true
`)
	s.start()
	id := s.startRunbook("pause")
	s.waitExecution(id, 20*time.Second, "the Wait state", func(e executionJSON) bool { return hasEvent(e, "WaitStateEntered", "Pause") })
	s.kill()
	if got := readLines(t, filepath.Join(s.dir, "count")); strings.Join(got, ",") != "before" {
		t.Fatalf("before the kill the count file holds %v", got)
	}
	s.start()
	e := s.waitExecution(id, 30*time.Second, "the execution to end", ended)
	if e.Status != "SUCCEEDED" {
		t.Fatalf("status %s (%s: %s), want SUCCEEDED", e.Status, e.Error, e.Cause)
	}
	if got := readLines(t, filepath.Join(s.dir, "count")); strings.Join(got, ",") != "before,after" {
		t.Errorf("count file %v, want [before after]: each task once", got)
	}
	if !hasEvent(e, "WaitStateExited", "Pause") {
		t.Errorf("the resumed history lacks WaitStateExited: %+v", e.History)
	}
	// The table form shows the history state by state.
	out := s.client("execution", "show", id)
	for _, want := range []string{"SUCCEEDED", "WaitStateEntered", "Pause", "After"} {
		if !strings.Contains(out, want) {
			t.Errorf("execution show lacks %q:\n%s", want, out)
		}
	}
}

// TestRunbookKillDuringTask: after a SIGKILL during a task, the engine decides by the
// task's resource. rewind:exec is not idempotent: the resumed execution fails with
// States.Runtime rather than run the command a second time. rewind:wait-healthy is
// idempotent: its probing starts again and the execution completes.
func TestRunbookKillDuringTask(t *testing.T) {
	s := newServerEnv(t)
	s.writeRunbook("long-exec", `
StartAt: Long
States:
  Long:
    Type: Task
    Resource: rewind:exec
    Parameters: {Command: sh, Args: [-c, "echo started >> DIR/exec-count; sleep 20"]}
    End: true
`)
	s.writeRunbook("probe", `
StartAt: Once
States:
  Once:
    Type: Task
    Resource: rewind:exec
    Parameters: {Command: sh, Args: [-c, "echo once >> DIR/once-count"]}
    Next: Healthy
  Healthy:
    Type: Task
    Resource: rewind:wait-healthy
    Parameters:
      Probe: {command: {command: [sh, -c, "echo probe >> DIR/probes; test -f DIR/healthy"]}}
      IntervalSeconds: 0.2
      TimeoutSeconds: 120
    End: true
`)
	s.start()
	execID := s.startRunbook("long-exec")
	probeID := s.startRunbook("probe")
	s.waitExecution(execID, 20*time.Second, "the command to start", func(e executionJSON) bool {
		return hasEvent(e, "TaskStarted", "Long") && len(readLines(t, filepath.Join(s.dir, "exec-count"))) == 1
	})
	s.waitExecution(probeID, 20*time.Second, "the probes to start", func(e executionJSON) bool {
		return len(readLines(t, filepath.Join(s.dir, "probes"))) >= 2
	})
	s.kill()
	probesAtKill := len(readLines(t, filepath.Join(s.dir, "probes")))
	s.start()

	e := s.waitExecution(execID, 30*time.Second, "the interrupted command's execution to end", ended)
	if e.Status != "FAILED" || e.Error != "States.Runtime" || !strings.Contains(e.Cause, "idempotent") {
		t.Errorf("interrupted rewind:exec: %s %s: %s; want FAILED States.Runtime naming idempotency", e.Status, e.Error, e.Cause)
	}
	if got := readLines(t, filepath.Join(s.dir, "exec-count")); len(got) != 1 {
		t.Errorf("the command ran %d times, want once", len(got))
	}

	s.waitExecution(probeID, 30*time.Second, "probing to start again", func(executionJSON) bool {
		return len(readLines(t, filepath.Join(s.dir, "probes"))) > probesAtKill+1
	})
	if err := os.WriteFile(filepath.Join(s.dir, "healthy"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e = s.waitExecution(probeID, 30*time.Second, "the probing execution to end", ended)
	if e.Status != "SUCCEEDED" {
		t.Errorf("rewind:wait-healthy after the restart: %s %s: %s", e.Status, e.Error, e.Cause)
	}
	if got := readLines(t, filepath.Join(s.dir, "once-count")); len(got) != 1 {
		t.Errorf("the task before the interrupted one ran %d times, want once", len(got))
	}
}

// TestRunbookApprovalGate: a .waitForTaskToken gate before a failover step, decided
// through the CLI: approved (the failover runs with the approval's output), denied (the
// Catch routes the denial and the failover does not run), and not decided in time (the
// task times out).
func TestRunbookApprovalGate(t *testing.T) {
	s := newServerEnv(t)
	gate := `
StartAt: Gate
States:
  Gate:
    Type: Task
    Resource: rewind:event.waitForTaskToken
    Parameters:
      DetailType: Failover Approval Needed
      Detail: {token.$: $$.Task.Token, resource.$: $.resource}
    TimeoutSeconds: TIMEOUT
    ResultPath: $.approval
    Catch:
      - ErrorEquals: [Rewind.Denied]
        ResultPath: $.denial
        Next: Stay
    Next: Failover
  Failover:
    Type: Task
    Resource: rewind:exec
    Parameters:
      Command: sh
      Args: [-c, "echo failover >> DIR/failovers"]
    ResultPath: null
    End: true
  Stay:
    Type: Fail
    Error: Drill.Denied
    Cause: the failover was denied
`
	s.writeRunbook("gate", strings.ReplaceAll(gate, "TIMEOUT", "120"))
	s.writeRunbook("gate-short", strings.ReplaceAll(gate, "TIMEOUT", "1"))
	s.start()
	openToken := func(id string) string {
		e := s.waitExecution(id, 20*time.Second, "the approval gate", func(e executionJSON) bool {
			for _, tk := range e.Tokens {
				if tk.Resolution == "" {
					return true
				}
			}
			return false
		})
		if !strings.Contains(s.client("execution", "show", id), "rewind execution approve "+e.Tokens[0].Token) {
			t.Errorf("execution show does not list the open token")
		}
		return e.Tokens[0].Token
	}

	approved := s.startRunbook("gate", "--input", `{"resource": "orders-db"}`)
	tok := openToken(approved)
	if out := s.client("execution", "approve", tok, "--output", `{"by": "ops"}`); !strings.Contains(out, "approved") {
		t.Errorf("approve: %s", out)
	}
	e := s.waitExecution(approved, 20*time.Second, "the approved execution to end", ended)
	if e.Status != "SUCCEEDED" || !strings.Contains(string(e.Output), `"by": "ops"`) && !strings.Contains(string(e.Output), `"by":"ops"`) {
		t.Errorf("approved: %s %s: %s output %s", e.Status, e.Error, e.Cause, e.Output)
	}
	if got := readLines(t, filepath.Join(s.dir, "failovers")); len(got) != 1 {
		t.Errorf("after the approval the failover ran %d times, want once", len(got))
	}
	// A decided token cannot be decided again.
	r := (&env{t: t, extra: []string{"REWIND_SERVER=" + s.url}}).run("execution", "deny", tok, "--reason", "too late")
	if r.code == 0 || !strings.Contains(r.stderr, "too late") {
		t.Errorf("deny after approve: exit %d, stderr %s", r.code, r.stderr)
	}

	denied := s.startRunbook("gate", "--input", `{"resource": "orders-db"}`)
	tok = openToken(denied)
	s.client("execution", "deny", tok, "--reason", "the primary recovered")
	e = s.waitExecution(denied, 20*time.Second, "the denied execution to end", ended)
	if e.Status != "FAILED" || e.Error != "Drill.Denied" {
		t.Errorf("denied: %s %s: %s, want FAILED Drill.Denied", e.Status, e.Error, e.Cause)
	}
	if !hasEvent(e, "TaskFailed", "Gate") {
		t.Errorf("the denial is not in the history: %+v", e.History)
	}

	timedOut := s.startRunbook("gate-short", "--input", `{"resource": "orders-db"}`)
	e = s.waitExecution(timedOut, 20*time.Second, "the gate to time out", ended)
	if e.Status != "FAILED" || e.Error != "States.Timeout" {
		t.Errorf("timed out: %s %s: %s, want FAILED States.Timeout", e.Status, e.Error, e.Cause)
	}
	if got := readLines(t, filepath.Join(s.dir, "failovers")); len(got) != 1 {
		t.Errorf("the failover ran %d times in all, want once (approved only)", len(got))
	}

	// The gate announced each approval request in the outbox.
	if out := s.client("events", "list", "--source", "rewind.runbook"); strings.Count(out, "Failover Approval Needed") != 3 {
		t.Errorf("events list shows %d approval requests, want 3:\n%s", strings.Count(out, "Failover Approval Needed"), out)
	}
	// --wait follows an execution to its end; the exit status says how it ended.
	r = (&env{t: t, extra: []string{"REWIND_SERVER=" + s.url}}).run("runbook", "start", "gate-short", "--input", `{"resource": "x"}`, "--wait")
	if r.code != 1 || !strings.Contains(r.stdout, "States.Timeout") || !strings.Contains(r.stderr, "Gate") {
		t.Errorf("start --wait: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	list := s.client("executions", "--runbook", "gate-short", "--status", "failed")
	if n := strings.Count(list, "gate-short"); n != 2 {
		t.Errorf("executions --runbook gate-short --status failed lists %d, want 2:\n%s", n, list)
	}
}

// TestServerRefusesInvalidRunbooks: a runbooks directory with invalid definitions stops
// the server from starting, and the error names every problem.
func TestServerRefusesInvalidRunbooks(t *testing.T) {
	s := newServerEnv(t)
	s.writeRunbook("bad-next", "StartAt: A\nStates:\n  A: {Type: Pass, Next: Nowhere}\n")
	s.writeRunbook("bad-resource", "StartAt: A\nStates:\n  A: {Type: Task, Resource: rewind:teleport, End: true}\n")
	e := &env{t: t}
	r := e.run("server", "--config", s.cfg, "--data-dir", filepath.Join(s.dir, "server"), "--listen", s.listen)
	if r.code != exitUsage {
		t.Fatalf("server with invalid runbooks: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	for _, want := range []string{"bad-next.asl.yaml", "Nowhere", "bad-resource.asl.yaml", "rewind:teleport"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not mention %q:\n%s", want, r.stderr)
		}
	}
	r = e.run("server", "--config", s.cfg, "--data-dir", filepath.Join(s.dir, "server"), "--runbooks", filepath.Join(s.dir, "no-such-dir"), "--listen", s.listen)
	if r.code != exitUsage || !strings.Contains(r.stderr, "no-such-dir") {
		t.Errorf("a missing --runbooks directory: exit %d\n%s", r.code, r.stderr)
	}
}

// TestShippedRunbookExamplesValidate: every definition in examples/runbooks validates
// against the server's task registry, as the server checks them at start.
func TestShippedRunbookExamplesValidate(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "runbooks")
	defs, err := loadRunbookDir(dir, true, serverRegistry(nil, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.asl.*"))
	if len(defs) != len(files) || len(defs) < 8 {
		t.Errorf("validated %d definitions of %d files; want every one of at least 8", len(defs), len(files))
	}
}
