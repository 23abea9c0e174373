package runbook

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Definition is a parsed runbook. Parse keeps every problem it finds; Validate reports them.
type Definition struct {
	// Name names the state machine in $$.StateMachine.Name; callers usually set it to the
	// file's base name. Empty means "runbook".
	Name string
	// Comment is the top-level Comment, if any.
	Comment string

	raw      map[string]any
	root     *machine
	problems []Problem
}

// Problem is one thing wrong with a definition: Where is a dotted location such as
// "States.Fetch.Retry[0].MaxAttempts".
type Problem struct {
	Where   string
	Message string
}

func (p Problem) String() string {
	if p.Where == "" {
		return p.Message
	}
	return p.Where + ": " + p.Message
}

// ValidationError lists every problem of an invalid definition.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s) in the runbook definition:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// machine is a compiled state machine: the top level, a Parallel branch or a Map processor.
type machine struct {
	startAt string
	states  map[string]*state
	timeout time.Duration // top level only; 0 = none
}

type retrier struct {
	errorEquals []string
	interval    float64
	maxAttempts int
	backoff     float64
	maxDelay    float64 // 0 = no cap
	fullJitter  bool
}

type catcher struct {
	errorEquals []string
	next        string
	resultPath  *pathExpr
	discard     bool // ResultPath: null
}

type state struct {
	name, typ string
	next      string
	end       bool

	inputPath, outputPath      *pathExpr
	inputNull, outputNull      bool
	resultPath                 *pathExpr
	resultNull                 bool
	parameters, resultSelect   *template
	result                     any
	hasResult                  bool
	retry                      []retrier
	catch                      []catcher
	resource                   string
	waitForToken               bool
	timeout, heartbeat         int64 // seconds; 0 = none
	timeoutPath, heartbeatPath *pathExpr

	choices []*choiceRule
	deflt   string

	seconds       int64
	hasSeconds    bool
	timestamp     time.Time
	hasTimestamp  bool
	secondsPath   *pathExpr
	timestampPath *pathExpr

	errorStr, cause      string
	errorPath, causePath *pathExpr
	errorCall, causeCall *intrinsic

	branches          []*machine
	processor         *machine
	itemsPath         *pathExpr
	itemSelector      *template
	maxConcurrency    int64
	maxConcPath       *pathExpr
	toleratedCount    int64
	toleratedPercent  float64
	toleratedCountP   *pathExpr
	toleratedPercentP *pathExpr
	hasTolerance      bool
}

// Parse decodes a definition in JSON or YAML. It fails only when the bytes are not a JSON
// or YAML object; everything else wrong with the definition is reported by Validate.
func Parse(data []byte) (*Definition, error) {
	const op = "runbook.Parse"
	var (
		v   any
		err error
	)
	if looksLikeJSON(data) {
		v, err = decodeJSON(data)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("the definition is not valid JSON: %w", err)).
				WithHint("check the file with a JSON linter, or write it in YAML")
		}
	} else {
		v, err = decodeYAML(data)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("the definition is neither JSON nor valid YAML: %w", err)).
				WithHint("a runbook is an Amazon States Language document: an object with StartAt and States")
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errs.Errorf(op, errs.Invalid, "the definition must be an object with StartAt and States, got %s", typeName(v))
	}
	d := &Definition{raw: m}
	if c, ok := m["Comment"].(string); ok {
		d.Comment = c
	}
	c := &checker{}
	d.root = compileMachine(m, "", true, c)
	d.problems = c.problems
	return d, nil
}

// Validate returns nil when the definition can run, or an errs.Invalid error wrapping a
// *ValidationError that lists every problem found.
func (d *Definition) Validate() error {
	if len(d.problems) == 0 {
		return nil
	}
	return errs.E("runbook.Validate", errs.Invalid, &ValidationError{Problems: append([]Problem(nil), d.problems...)}).
		WithHint("fix the fields named above; see the Amazon States Language specification")
}

// Resources lists the distinct task resources the definition uses, without the
// .waitForTaskToken suffix, sorted.
func (d *Definition) Resources() []string {
	set := map[string]bool{}
	var walk func(m *machine)
	walk = func(m *machine) {
		if m == nil {
			return
		}
		for _, s := range m.states {
			if s.typ == "Task" && s.resource != "" {
				set[s.resource] = true
			}
			for _, b := range s.branches {
				walk(b)
			}
			walk(s.processor)
		}
	}
	walk(d.root)
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

type checker struct{ problems []Problem }

func (c *checker) add(where, msg string) { c.problems = append(c.problems, Problem{where, msg}) }
func (c *checker) addf(where, f string, a ...any) {
	c.add(where, fmt.Sprintf(f, a...))
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

var unsupported = map[string]string{
	"Assign":        "variables (Assign) are not supported by Rewind runbooks; pass data through the state input",
	"Arguments":     "Arguments belongs to JSONata mode, which Rewind does not support; use Parameters",
	"Output":        "Output belongs to JSONata mode, which Rewind does not support; use OutputPath/ResultSelector",
	"Credentials":   "Credentials (cross-account roles) are not supported by Rewind runbooks",
	"ItemReader":    "ItemReader (distributed Map) is not supported; pass the items in the input",
	"ItemBatcher":   "ItemBatcher (distributed Map) is not supported",
	"ResultWriter":  "ResultWriter (distributed Map) is not supported",
	"Label":         "Label (distributed Map) is not supported",
	"Version":       "",
	"QueryLanguage": "",
}

var stateFields = map[string][]string{
	"Task": {"Next", "End", "InputPath", "OutputPath", "Resource", "Parameters", "ResultSelector", "ResultPath",
		"Retry", "Catch", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath"},
	"Pass":     {"Next", "End", "InputPath", "OutputPath", "Result", "ResultPath", "Parameters"},
	"Choice":   {"InputPath", "OutputPath", "Choices", "Default"},
	"Wait":     {"Next", "End", "InputPath", "OutputPath", "Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
	"Succeed":  {"InputPath", "OutputPath"},
	"Fail":     {"Error", "Cause", "ErrorPath", "CausePath"},
	"Parallel": {"Next", "End", "InputPath", "OutputPath", "Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"},
	"Map": {"Next", "End", "InputPath", "OutputPath", "ItemsPath", "ItemSelector", "Parameters", "ItemProcessor", "Iterator",
		"MaxConcurrency", "MaxConcurrencyPath", "ResultSelector", "ResultPath", "Retry", "Catch",
		"ToleratedFailureCount", "ToleratedFailureCountPath", "ToleratedFailurePercentage", "ToleratedFailurePercentagePath"},
}

func compileMachine(m map[string]any, where string, top bool, c *checker) *machine {
	mc := &machine{states: map[string]*state{}}
	allowed := map[string]bool{"Comment": true, "StartAt": true, "States": true}
	if top {
		allowed["Version"] = true
		allowed["TimeoutSeconds"] = true
		allowed["QueryLanguage"] = true
	} else {
		allowed["ProcessorConfig"] = true
	}
	for _, k := range sortedKeys(m) {
		if !allowed[k] {
			if msg := unsupported[k]; msg != "" {
				c.add(join(where, k), msg)
			} else {
				c.addf(join(where, k), "unknown field %q", k)
			}
		}
	}
	if ql, ok := m["QueryLanguage"]; ok && ql != "JSONPath" {
		c.addf(join(where, "QueryLanguage"), "only JSONPath is supported, got %s", mustJSON(ql))
	}
	if v, ok := m["Version"]; ok {
		if _, isStr := v.(string); !isStr {
			c.add(join(where, "Version"), "Version must be a string")
		}
	}
	if v, ok := m["Comment"]; ok {
		if _, isStr := v.(string); !isStr {
			c.add(join(where, "Comment"), "Comment must be a string")
		}
	}
	if pc, ok := m["ProcessorConfig"]; ok {
		pm, isObj := pc.(map[string]any)
		if !isObj {
			c.add(join(where, "ProcessorConfig"), "ProcessorConfig must be an object")
		} else {
			for k, v := range pm {
				switch k {
				case "Mode":
					if v != "INLINE" {
						c.addf(join(where, "ProcessorConfig.Mode"), "only INLINE Map processing is supported, got %s", mustJSON(v))
					}
				default:
					c.addf(join(where, "ProcessorConfig."+k), "unknown or unsupported field %q (only Mode: INLINE)", k)
				}
			}
		}
	}
	if top {
		if v, ok := m["TimeoutSeconds"]; ok {
			n, isInt := asInt(v)
			if !isInt || n <= 0 {
				c.addf("TimeoutSeconds", "TimeoutSeconds must be a positive integer, got %s", mustJSON(v))
			} else {
				mc.timeout = time.Duration(n) * time.Second
			}
		}
	}
	start, ok := m["StartAt"].(string)
	if !ok || start == "" {
		c.add(join(where, "StartAt"), "StartAt is required and must name a state")
	}
	mc.startAt = start
	rawStates, ok := m["States"].(map[string]any)
	if !ok || len(rawStates) == 0 {
		c.add(join(where, "States"), "States is required and must be a non-empty object of states")
		return mc
	}
	for _, name := range sortedKeys(rawStates) {
		at := join(where, "States."+name)
		if len(name) > 80 {
			c.addf(at, "state names are at most 80 characters")
		}
		sm, isObj := rawStates[name].(map[string]any)
		if !isObj {
			c.addf(at, "a state must be an object, got %s", typeName(rawStates[name]))
			continue
		}
		mc.states[name] = compileState(name, sm, at, c)
	}
	if start != "" {
		if _, ok := mc.states[start]; !ok {
			c.addf(join(where, "StartAt"), "StartAt names %q, which is not a state here (states: %s)", start, strings.Join(sortedKeys(rawStates), ", "))
		}
	}
	// Transitions must stay inside this machine.
	checkTarget := func(at, target string) {
		if target == "" {
			return
		}
		if _, ok := mc.states[target]; !ok {
			c.addf(at, "%q is not a state in this state machine (a branch or Map processor cannot jump outside itself)", target)
		}
	}
	for _, name := range sortedKeys(rawStates) {
		s := mc.states[name]
		if s == nil {
			continue
		}
		at := join(where, "States."+name)
		checkTarget(at+".Next", s.next)
		checkTarget(at+".Default", s.deflt)
		for i, ch := range s.choices {
			if ch != nil {
				checkTarget(fmt.Sprintf("%s.Choices[%d].Next", at, i), ch.next)
			}
		}
		for i, ct := range s.catch {
			checkTarget(fmt.Sprintf("%s.Catch[%d].Next", at, i), ct.next)
		}
	}
	// Reachability from StartAt.
	if _, ok := mc.states[start]; ok {
		seen := map[string]bool{}
		queue := []string{start}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			s := mc.states[n]
			if s == nil || seen[n] {
				continue
			}
			seen[n] = true
			targets := []string{s.next, s.deflt}
			for _, ch := range s.choices {
				if ch != nil {
					targets = append(targets, ch.next)
				}
			}
			for _, ct := range s.catch {
				targets = append(targets, ct.next)
			}
			for _, t := range targets {
				if t != "" && !seen[t] {
					queue = append(queue, t)
				}
			}
		}
		for _, name := range sortedKeys(rawStates) {
			if !seen[name] && mc.states[name] != nil {
				c.addf(join(where, "States."+name), "state %q is unreachable from StartAt %q", name, start)
			}
		}
	}
	return mc
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func compileState(name string, m map[string]any, at string, c *checker) *state {
	s := &state{name: name}
	typ, _ := m["Type"].(string)
	fields, known := stateFields[typ]
	if !known {
		c.addf(at+".Type", "Type must be one of Task, Pass, Choice, Wait, Succeed, Fail, Parallel, Map; got %s", mustJSON(m["Type"]))
		return s
	}
	s.typ = typ
	allowed := map[string]bool{"Type": true, "Comment": true, "QueryLanguage": true}
	for _, f := range fields {
		allowed[f] = true
	}
	for _, k := range sortedKeys(m) {
		if allowed[k] {
			continue
		}
		if msg := unsupported[k]; msg != "" {
			c.add(at+"."+k, msg)
		} else {
			c.addf(at+"."+k, "field %q is not allowed in a %s state (allowed: %s)", k, typ, strings.Join(fields, ", "))
		}
	}
	if ql, ok := m["QueryLanguage"]; ok && ql != "JSONPath" {
		c.addf(at+".QueryLanguage", "only JSONPath is supported, got %s", mustJSON(ql))
	}
	if v, ok := m["Comment"]; ok {
		if _, isStr := v.(string); !isStr {
			c.add(at+".Comment", "Comment must be a string")
		}
	}
	str := func(k string) (string, bool) {
		v, ok := m[k]
		if !ok {
			return "", false
		}
		sv, isStr := v.(string)
		if !isStr {
			c.addf(at+"."+k, "%s must be a string, got %s", k, typeName(v))
			return "", false
		}
		return sv, true
	}
	// path reads an optional Path field; null means "{}" for InputPath/OutputPath.
	path := func(k string, ref bool) (pe *pathExpr, isNull bool) {
		v, ok := m[k]
		if !ok {
			return nil, false
		}
		if v == nil {
			return nil, true
		}
		sv, isStr := v.(string)
		if !isStr {
			c.addf(at+"."+k, "%s must be a path string or null, got %s", k, typeName(v))
			return nil, false
		}
		var err error
		if ref {
			pe, err = compileRefPath(sv)
		} else {
			pe, err = compilePath(sv)
		}
		if err != nil {
			c.add(at+"."+k, err.Error())
		}
		return pe, false
	}
	posInt := func(k string, allowZero bool) (int64, bool) {
		v, ok := m[k]
		if !ok {
			return 0, false
		}
		n, isInt := asInt(v)
		if !isInt || n < 0 || n == 0 && !allowZero {
			kind := "a positive integer"
			if allowZero {
				kind = "a non-negative integer"
			}
			c.addf(at+"."+k, "%s must be %s, got %s", k, kind, mustJSON(v))
			return 0, false
		}
		return n, true
	}
	exclusive := func(a, b string) {
		_, x := m[a]
		_, y := m[b]
		if x && y {
			c.addf(at, "%s and %s are mutually exclusive", a, b)
		}
	}

	// Transition.
	switch typ {
	case "Choice", "Succeed", "Fail":
	default:
		next, hasNext := str("Next")
		endV, hasEnd := m["End"]
		if hasEnd {
			if b, ok := endV.(bool); !ok || !b {
				c.addf(at+".End", "End must be true when present, got %s", mustJSON(endV))
			} else {
				s.end = true
			}
		}
		switch {
		case hasNext && s.end:
			c.add(at, "a state has either Next or End: true, not both")
		case !hasNext && !hasEnd:
			if _, present := m["Next"]; !present {
				c.addf(at, "a %s state needs Next or End: true", typ)
			}
		}
		s.next = next
	}
	if typ != "Fail" {
		s.inputPath, s.inputNull = path("InputPath", false)
		s.outputPath, s.outputNull = path("OutputPath", false)
	}
	if _, ok := m["ResultPath"]; ok {
		if v := m["ResultPath"]; v == nil {
			s.resultNull = true
		} else if sv, isStr := v.(string); !isStr {
			c.addf(at+".ResultPath", "ResultPath must be a reference path or null, got %s", typeName(v))
		} else if pe, err := checkResultPath(sv); err != nil {
			c.add(at+".ResultPath", err.Error())
		} else {
			s.resultPath = pe
		}
	}
	tmpl := func(k string) *template {
		v, ok := m[k]
		if !ok {
			return nil
		}
		if typ != "Pass" || k != "Parameters" {
			if _, isObj := v.(map[string]any); !isObj && k != "Parameters" {
				c.addf(at+"."+k, "%s must be an object, got %s", k, typeName(v))
				return nil
			}
		}
		return compileTemplate(v, at+"."+k, c)
	}
	switch typ {
	case "Task", "Pass", "Parallel":
		s.parameters = tmpl("Parameters")
	}
	switch typ {
	case "Task", "Parallel", "Map":
		s.resultSelect = tmpl("ResultSelector")
		s.retry = compileRetry(m["Retry"], at+".Retry", c)
		s.catch = compileCatch(m["Catch"], at+".Catch", c)
	}

	switch typ {
	case "Task":
		res, ok := str("Resource")
		if !ok {
			if _, present := m["Resource"]; !present {
				c.add(at+".Resource", "a Task needs Resource (for example rewind:exec)")
			}
		} else if res == "" {
			c.add(at+".Resource", "Resource must not be empty")
		}
		if base, ok := strings.CutSuffix(res, ".waitForTaskToken"); ok {
			res = base
			s.waitForToken = true
		}
		s.resource = res
		exclusive("TimeoutSeconds", "TimeoutSecondsPath")
		exclusive("HeartbeatSeconds", "HeartbeatSecondsPath")
		s.timeout, _ = posInt("TimeoutSeconds", false)
		s.heartbeat, _ = posInt("HeartbeatSeconds", false)
		s.timeoutPath, _ = path("TimeoutSecondsPath", true)
		s.heartbeatPath, _ = path("HeartbeatSecondsPath", true)
		if s.timeout > 0 && s.heartbeat > 0 && s.heartbeat >= s.timeout {
			c.addf(at+".HeartbeatSeconds", "HeartbeatSeconds (%d) must be less than TimeoutSeconds (%d)", s.heartbeat, s.timeout)
		}
	case "Pass":
		if v, ok := m["Result"]; ok {
			s.result, s.hasResult = v, true
		}
	case "Choice":
		arr, ok := m["Choices"].([]any)
		if !ok || len(arr) == 0 {
			c.add(at+".Choices", "Choices must be a non-empty array of rules")
		}
		for i, r := range arr {
			s.choices = append(s.choices, compileRule(r, fmt.Sprintf("%s.Choices[%d]", at, i), true, c))
		}
		s.deflt, _ = str("Default")
	case "Wait":
		n := 0
		for _, k := range []string{"Seconds", "Timestamp", "SecondsPath", "TimestampPath"} {
			if _, ok := m[k]; ok {
				n++
			}
		}
		if n != 1 {
			c.addf(at, "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath (found %d)", n)
		}
		s.seconds, s.hasSeconds = posInt("Seconds", true)
		if ts, ok := str("Timestamp"); ok {
			t, valid := parseTimestamp(ts)
			if !valid {
				c.addf(at+".Timestamp", "Timestamp must be RFC 3339 with uppercase T and Z, like 2024-01-02T15:04:05Z; got %q", ts)
			}
			s.timestamp, s.hasTimestamp = t, valid
		}
		s.secondsPath, _ = path("SecondsPath", true)
		s.timestampPath, _ = path("TimestampPath", true)
	case "Fail":
		exclusive("Error", "ErrorPath")
		exclusive("Cause", "CausePath")
		s.errorStr, _ = str("Error")
		s.cause, _ = str("Cause")
		for _, k := range []string{"ErrorPath", "CausePath"} {
			sv, ok := str(k)
			if !ok {
				continue
			}
			if isIntrinsic(sv) {
				call, err := parseIntrinsic(sv)
				if err != nil {
					c.add(at+"."+k, err.Error())
				}
				if k == "ErrorPath" {
					s.errorCall = call
				} else {
					s.causeCall = call
				}
				continue
			}
			pe, err := compileRefPath(sv)
			if err != nil {
				c.add(at+"."+k, err.Error())
			}
			if k == "ErrorPath" {
				s.errorPath = pe
			} else {
				s.causePath = pe
			}
		}
	case "Parallel":
		arr, ok := m["Branches"].([]any)
		if !ok || len(arr) == 0 {
			c.add(at+".Branches", "Branches must be a non-empty array of {StartAt, States}")
		}
		for i, b := range arr {
			bat := fmt.Sprintf("%s.Branches[%d]", at, i)
			bm, isObj := b.(map[string]any)
			if !isObj {
				c.addf(bat, "a branch must be an object with StartAt and States, got %s", typeName(b))
				continue
			}
			if _, has := bm["ProcessorConfig"]; has {
				c.add(bat+".ProcessorConfig", "ProcessorConfig belongs to Map ItemProcessor, not to Parallel branches")
			}
			s.branches = append(s.branches, compileMachine(bm, bat, false, c))
		}
	case "Map":
		exclusive("ItemProcessor", "Iterator")
		exclusive("ItemSelector", "Parameters")
		exclusive("MaxConcurrency", "MaxConcurrencyPath")
		exclusive("ToleratedFailureCount", "ToleratedFailureCountPath")
		exclusive("ToleratedFailurePercentage", "ToleratedFailurePercentagePath")
		key := "ItemProcessor"
		if _, ok := m[key]; !ok {
			key = "Iterator"
		}
		pm, ok := m[key].(map[string]any)
		if !ok {
			c.add(at+".ItemProcessor", "a Map state needs ItemProcessor (or the legacy Iterator) with StartAt and States")
		} else {
			s.processor = compileMachine(pm, at+"."+key, false, c)
		}
		s.itemsPath, _ = path("ItemsPath", true)
		if _, ok := m["ItemsPath"]; ok && m["ItemsPath"] == nil {
			c.add(at+".ItemsPath", "ItemsPath must be a reference path, not null")
		}
		if _, ok := m["ItemSelector"]; ok {
			s.itemSelector = tmpl("ItemSelector")
		} else if _, ok := m["Parameters"]; ok {
			s.itemSelector = tmpl("Parameters")
		}
		s.maxConcurrency, _ = posInt("MaxConcurrency", true)
		s.maxConcPath, _ = path("MaxConcurrencyPath", true)
		if v, ok := posInt("ToleratedFailureCount", true); ok {
			s.toleratedCount, s.hasTolerance = v, true
		}
		if v, ok := m["ToleratedFailurePercentage"]; ok {
			f, isNum := asFloat(v)
			if !isNum || f < 0 || f > 100 {
				c.addf(at+".ToleratedFailurePercentage", "ToleratedFailurePercentage must be a number from 0 to 100, got %s", mustJSON(v))
			} else {
				s.toleratedPercent, s.hasTolerance = f, true
			}
		}
		s.toleratedCountP, _ = path("ToleratedFailureCountPath", true)
		s.toleratedPercentP, _ = path("ToleratedFailurePercentagePath", true)
		if s.toleratedCountP != nil || s.toleratedPercentP != nil {
			s.hasTolerance = true
		}
	}
	return s
}
