package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/monitor"
)

func TestSpecValidate(t *testing.T) {
	httpOK := &monitor.HTTP{URL: "http://127.0.0.1:8081/health"}
	tests := []struct {
		name string
		spec monitor.Spec
		want []string // substrings of the error; nil means valid
	}{
		{"http", monitor.Spec{HTTP: httpOK, Every: 10 * time.Second, Timeout: 2 * time.Second}, nil},
		{"defaults", monitor.Spec{TCP: &monitor.TCP{Address: "127.0.0.1:5432"}}, nil},
		{"short every default timeout", monitor.Spec{TCP: &monitor.TCP{Address: "db:5432"}, Every: time.Second}, nil},
		{"none", monitor.Spec{}, []string{"no probe"}},
		{"two", monitor.Spec{HTTP: httpOK, TCP: &monitor.TCP{Address: "a:1"}}, []string{"2 probes (http, tcp)"}},
		{"negative every", monitor.Spec{HTTP: httpOK, Every: -time.Second}, []string{"every: must be positive"}},
		{"timeout not shorter", monitor.Spec{HTTP: httpOK, Every: time.Second, Timeout: time.Second}, []string{"timeout: 1s must be shorter than every (1s)"}},
		{"bad http url", monitor.Spec{HTTP: &monitor.HTTP{URL: "ftp://x"}}, []string{"http.url", "not an http:// or https:// URL"}},
		{"bad status", monitor.Spec{HTTP: &monitor.HTTP{URL: "https://x", ExpectStatus: 42}}, []string{"http.expect_status: 42"}},
		{"lower method", monitor.Spec{HTTP: &monitor.HTTP{URL: "https://x", Method: "get"}}, []string{"http.method"}},
		{"tcp no port", monitor.Spec{TCP: &monitor.TCP{Address: "localhost"}}, []string{`tcp.address: "localhost" is not host:port`}},
		{"dns", monitor.Spec{DNS: &monitor.DNS{Name: "example.com", Type: "aaaa", Server: "127.0.0.1"}}, nil},
		{"dns bad", monitor.Spec{DNS: &monitor.DNS{Type: "BOGUS", Server: "a:b:c"}}, []string{"dns.name: missing", `dns.type: unknown record type "BOGUS"`, "dns.server"}},
		{"command empty", monitor.Spec{Command: &monitor.Command{}}, []string{"command.command: missing program"}},
		{"command env", monitor.Spec{Command: &monitor.Command{Command: []string{"true"}, Env: map[string]string{"A=B": "x"}}}, []string{"command.env"}},
		{"postgres", monitor.Spec{Postgres: &monitor.Postgres{URL: "postgres://u:p@127.0.0.1:5432/db"}}, nil},
		{"postgres scheme", monitor.Spec{Postgres: &monitor.Postgres{URL: "mysql://u:secret@h/db"}}, []string{"postgres.url", "scheme must be postgres://"}},
		{"mysql", monitor.Spec{MySQL: &monitor.MySQL{URL: "mysql://u:p@127.0.0.1:3306/db?timeout=2s"}}, nil},
		{"mysql no host", monitor.Spec{MySQL: &monitor.MySQL{URL: "mysql:///db"}}, []string{"mysql.url", "names no host"}},
		{"mysql bad param", monitor.Spec{MySQL: &monitor.MySQL{URL: "mysql://h/db?timeout=soon"}}, []string{"mysql.url", "parameters"}},
		{"redis", monitor.Spec{Redis: &monitor.Redis{URL: "redis://:pw@127.0.0.1:6379/2"}}, nil},
		{"redis db", monitor.Spec{Redis: &monitor.Redis{URL: "redis://127.0.0.1/x"}}, []string{`database "x" is not a number`}},
		{"many problems", monitor.Spec{HTTP: &monitor.HTTP{URL: ""}, Every: -1, Timeout: -1}, []string{"3 problems", "every:", "timeout:", "http.url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("kind = %v, want invalid", errs.KindOf(err))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := monitor.New("", monitor.Spec{TCP: &monitor.TCP{Address: "a:1"}}); !errs.Is(err, errs.Invalid) {
		t.Errorf("New without a name = %v, want invalid", err)
	}
	_, err := monitor.New("shop", monitor.Spec{})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "monitor shop") || errs.HintOf(err) == "" {
		t.Errorf("New with a bad spec = %v (hint %q), want an invalid error naming the monitor with a hint", err, errs.HintOf(err))
	}
	m, err := monitor.New("db", monitor.Spec{TCP: &monitor.TCP{Address: "a:1"}, Every: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Spec(); got.Every != time.Second || got.Timeout != 500*time.Millisecond {
		t.Errorf("defaults: every %v timeout %v, want 1s and 500ms", got.Every, got.Timeout)
	}
	if m.Name() != "db" {
		t.Errorf("Name() = %q", m.Name())
	}
}
