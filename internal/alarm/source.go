package alarm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/client_golang/prometheus"
)

// maxPromResponse bounds a Prometheus API response.
const maxPromResponse = 8 << 20

func checkHTTPURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", raw)
	}
	return nil
}

// QueryPrometheus runs an instant query at the Prometheus server at base
// (http://host:9090) and returns its value: the result must be a scalar or a vector of
// exactly one element. An empty vector is ok == false (no datapoint); any other shape, an
// HTTP or API error is an error saying what came back.
func QueryPrometheus(ctx context.Context, client *http.Client, base, query string) (v float64, ok bool, err error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/api/v1/query")
	if err != nil {
		return 0, false, err
	}
	form := url.Values{"query": {query}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPromResponse))
	if err != nil {
		return 0, false, fmt.Errorf("%s: reading the response: %v", u, err)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, false, fmt.Errorf("%s answered HTTP %s with a body that is not the query API's JSON: %v", u, resp.Status, err)
	}
	if r.Status != "success" {
		return 0, false, fmt.Errorf("%s: query %q failed (%s): %s", u, query, r.ErrorType, r.Error)
	}
	var pair []any
	switch r.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &pair); err != nil {
			return 0, false, fmt.Errorf("%s: query %q: malformed scalar: %v", u, query, err)
		}
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return 0, false, fmt.Errorf("%s: query %q: malformed vector: %v", u, query, err)
		}
		switch len(vec) {
		case 0:
			return 0, false, nil
		case 1:
			pair = vec[0].Value
		default:
			return 0, false, fmt.Errorf("query %q returned %d series (%s…); an alarm needs one: aggregate it, e.g. sum(…)", query, len(vec), seriesName(vec[0].Metric))
		}
	default:
		return 0, false, fmt.Errorf("query %q returned a %s; an alarm needs a scalar or a single-series vector", query, r.Data.ResultType)
	}
	if len(pair) != 2 {
		return 0, false, fmt.Errorf("%s: query %q: malformed sample %v", u, query, pair)
	}
	s, isStr := pair[1].(string)
	if !isStr {
		return 0, false, fmt.Errorf("%s: query %q: sample value %v is not a string", u, query, pair[1])
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: query %q: sample value %q: %v", u, query, s, err)
	}
	if math.IsNaN(v) {
		return 0, false, nil
	}
	return v, true, nil
}

func seriesName(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(m[k])
	}
	return m["__name__"] + "{" + strings.Join(parts, ",") + "}"
}

// mathProgram is a compiled metric math expression.
type mathProgram struct {
	prog    *vm.Program
	metrics map[string]string
	sels    map[string]Selector
}

// eval gathers the metrics and computes the expression. ok is false when a metric has no
// series or the result is not a finite number (a division by zero, for instance).
func (m *mathProgram) eval(g prometheus.Gatherer) (v float64, ok bool, why string, err error) {
	fams, err := g.Gather()
	if err != nil {
		return 0, false, "", fmt.Errorf("gathering metrics: %v", err)
	}
	env := make(map[string]any, len(m.sels))
	names := make([]string, 0, len(m.sels))
	for name := range m.sels {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sum, n := m.sels[name].Eval(fams)
		if n == 0 {
			return 0, false, fmt.Sprintf("metric %s (%s) has no series", name, m.metrics[name]), nil
		}
		env[name] = sum
	}
	out, err := expr.Run(m.prog, env)
	if err != nil {
		return 0, false, "", fmt.Errorf("math: %v", err)
	}
	f, isF := out.(float64)
	if !isF {
		return 0, false, "", fmt.Errorf("math: result %v is not a number", out)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, fmt.Sprintf("expression gave %v (a division by zero?)", f), nil
	}
	return f, true, "", nil
}
