package localtasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/runbook"
)

// Resource names.
const (
	ExecResource  = "rewind:exec"
	HTTPResource  = "rewind:http"
	EventResource = "rewind:event"
)

// MaxOutput caps the bytes of command output or response body a task returns, matching
// the 256 KiB payload limit of a state.
const MaxOutput = 256 << 10

// Options configure the local tasks. Zero values: events go to os.Stderr and HTTP uses a
// client with a 60-second timeout.
type Options struct {
	Events     io.Writer
	HTTPClient *http.Client
}

// Registry returns rewind:exec, rewind:http and rewind:event. rewind:event is idempotent;
// the others are not, so a resumed execution never repeats them blindly.
func Registry(opts Options) runbook.Registry {
	if opts.Events == nil {
		opts.Events = os.Stderr
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	return runbook.Registry{
		ExecResource:  {Run: Exec},
		HTTPResource:  {Run: HTTP(opts.HTTPClient)},
		EventResource: {Run: Event(opts.Events), Idempotent: true},
	}
}

// ExecInput is the input of rewind:exec.
type ExecInput struct {
	Command        string            // program to run, looked up in PATH
	Args           []string          // its arguments
	Env            map[string]string // added to the environment
	Dir            string            // working directory; empty: the current one
	Stdin          string            // written to standard input
	TimeoutSeconds int               // 0: no limit besides the state's TimeoutSeconds
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func badInput(resource string, err error, want string) error {
	return &runbook.TaskError{Name: "Task.InvalidInput", Cause: fmt.Sprintf("%s: bad input: %v (expected %s)", resource, err, want)}
}

// limitedBuffer keeps at most MaxOutput bytes and remembers whether more were written.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := MaxOutput - b.buf.Len()
	if len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Exec runs a command. Input that does not fit ExecInput fails with Task.InvalidInput.
// Standard output is the result: decoded JSON when it is JSON, else a
// string. A non-zero exit fails with Exec.NonZeroExit (cause: the exit status and standard
// error); a command that cannot start fails with Exec.StartFailed; exceeding
// TimeoutSeconds fails with Exec.Timeout.
func Exec(ctx context.Context, in runbook.TaskInput) (any, error) {
	var req ExecInput
	if err := decodeStrict(in.Input, &req); err != nil {
		return nil, badInput(ExecResource, err, `{"Command": "pg_dump", "Args": ["-Fc", "db"], "Env": {}, "Dir": "", "Stdin": "", "TimeoutSeconds": 0}`)
	}
	if req.Command == "" {
		return nil, &runbook.TaskError{Name: "Task.InvalidInput", Cause: ExecResource + ": Command is required"}
	}
	if req.TimeoutSeconds < 0 {
		return nil, &runbook.TaskError{Name: "Task.InvalidInput", Cause: ExecResource + ": TimeoutSeconds must not be negative"}
	}
	if req.TimeoutSeconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutSeconds)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, req.Command, req.Args...)
	cmd.Dir = req.Dir
	cmd.WaitDelay = 5 * time.Second
	if len(req.Env) > 0 {
		cmd.Env = os.Environ()
		keys := make([]string, 0, len(req.Env))
		for k := range req.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			cmd.Env = append(cmd.Env, k+"="+req.Env[k])
		}
	}
	if req.Stdin != "" {
		cmd.Stdin = strings.NewReader(req.Stdin)
	}
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, &runbook.TaskError{Name: "Exec.Timeout", Cause: fmt.Sprintf("%s did not finish within %d seconds", req.Command, req.TimeoutSeconds)}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		cause := strings.TrimSpace(stderr.buf.String())
		return nil, &runbook.TaskError{Name: "Exec.NonZeroExit", Cause: fmt.Sprintf("%s exited with %s: %s", req.Command, exitErr.ProcessState, cause)}
	case err != nil:
		return nil, &runbook.TaskError{Name: "Exec.StartFailed", Cause: err.Error()}
	}
	if stdout.truncated {
		return nil, &runbook.TaskError{Name: "Exec.OutputTooLarge", Cause: fmt.Sprintf("%s wrote more than %d bytes to standard output", req.Command, MaxOutput)}
	}
	return textOrJSON(stdout.buf.Bytes()), nil
}

// textOrJSON decodes data as JSON when it is JSON, else returns it as a string without
// its trailing newline.
func textOrJSON(data []byte) any {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && json.Valid(trimmed) {
		return json.RawMessage(trimmed)
	}
	return strings.TrimRight(string(data), "\r\n")
}

// HTTPInput is the input of rewind:http. A Body that is a JSON string is sent as is; any
// other JSON value is sent encoded, with Content-Type application/json unless set.
type HTTPInput struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    json.RawMessage
}

// HTTPOutput is the result of rewind:http.
type HTTPOutput struct {
	StatusCode int               `json:"StatusCode"`
	Headers    map[string]string `json:"Headers"`
	Body       any               `json:"Body"`
}

// HTTP returns the rewind:http task. A response with status 400 or more fails with
// Http.StatusCode.<code>; a request that cannot be made fails with Http.RequestFailed.
func HTTP(client *http.Client) runbook.Task {
	return func(ctx context.Context, in runbook.TaskInput) (any, error) {
		var req HTTPInput
		if err := decodeStrict(in.Input, &req); err != nil {
			return nil, badInput(HTTPResource, err, `{"Method": "POST", "URL": "https://…", "Headers": {}, "Body": {}}`)
		}
		if req.Method == "" {
			req.Method = http.MethodGet
		}
		if !strings.HasPrefix(req.URL, "http://") && !strings.HasPrefix(req.URL, "https://") {
			return nil, &runbook.TaskError{Name: "Task.InvalidInput", Cause: fmt.Sprintf("%s: URL must start with http:// or https://, got %q", HTTPResource, req.URL)}
		}
		var body io.Reader
		isJSON := false
		if len(req.Body) > 0 && string(req.Body) != "null" {
			var s string
			if err := json.Unmarshal(req.Body, &s); err == nil {
				body = strings.NewReader(s)
			} else {
				body = bytes.NewReader(req.Body)
				isJSON = true
			}
		}
		hr, err := http.NewRequestWithContext(ctx, strings.ToUpper(req.Method), req.URL, body)
		if err != nil {
			return nil, &runbook.TaskError{Name: "Task.InvalidInput", Cause: fmt.Sprintf("%s: %v", HTTPResource, err)}
		}
		for k, v := range req.Headers {
			hr.Header.Set(k, v)
		}
		if isJSON && hr.Header.Get("Content-Type") == "" {
			hr.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(hr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &runbook.TaskError{Name: "Http.RequestFailed", Cause: err.Error()}
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxOutput+1))
		if err != nil {
			return nil, &runbook.TaskError{Name: "Http.RequestFailed", Cause: "reading the response: " + err.Error()}
		}
		if len(data) > MaxOutput {
			return nil, &runbook.TaskError{Name: "Http.ResponseTooLarge", Cause: fmt.Sprintf("the response body is larger than %d bytes", MaxOutput)}
		}
		if resp.StatusCode >= 400 {
			excerpt := string(data)
			if len(excerpt) > 1024 {
				excerpt = excerpt[:1024] + "…"
			}
			return nil, &runbook.TaskError{Name: fmt.Sprintf("Http.StatusCode.%d", resp.StatusCode), Cause: fmt.Sprintf("%s %s returned %s: %s", hr.Method, req.URL, resp.Status, excerpt)}
		}
		out := HTTPOutput{StatusCode: resp.StatusCode, Headers: map[string]string{}}
		for k := range resp.Header {
			out.Headers[k] = resp.Header.Get(k)
		}
		if len(bytes.TrimSpace(data)) > 0 && json.Valid(data) {
			out.Body = json.RawMessage(bytes.TrimSpace(data))
		} else {
			out.Body = string(data)
		}
		return out, nil
	}
}

// Event returns the rewind:event task: it writes its input as one JSON line to w (there is
// no event bus without a server) and returns the input.
func Event(w io.Writer) runbook.Task {
	var mu sync.Mutex
	return func(ctx context.Context, in runbook.TaskInput) (any, error) {
		line, err := json.Marshal(map[string]any{"event": json.RawMessage(in.Input), "execution": in.Execution, "state": in.State})
		if err != nil {
			return nil, &runbook.TaskError{Name: "Task.InvalidInput", Cause: err.Error()}
		}
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(w, "%s\n", line); err != nil {
			return nil, &runbook.TaskError{Name: "Event.WriteFailed", Cause: err.Error()}
		}
		return in.Input, nil
	}
}
