package runbook

import (
	"fmt"
	"strings"
)

// Compilation of Retry and Catch fields.

func compileErrorEquals(v any, at string, c *checker) []string {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		c.add(at+".ErrorEquals", "ErrorEquals is required: a non-empty array of error names")
		return nil
	}
	var out []string
	for i, e := range arr {
		s, ok := e.(string)
		if !ok || s == "" {
			c.addf(fmt.Sprintf("%s.ErrorEquals[%d]", at, i), "an error name must be a non-empty string, got %s", mustJSON(e))
			continue
		}
		if strings.HasPrefix(s, "States.") && !predefinedErrors[s] {
			c.addf(fmt.Sprintf("%s.ErrorEquals[%d]", at, i), "%q is not a predefined error; names starting with States. are reserved", s)
		}
		out = append(out, s)
	}
	for _, s := range out {
		if s == ErrAll && len(out) > 1 {
			c.add(at+".ErrorEquals", "States.ALL must appear alone in ErrorEquals")
		}
	}
	return out
}

func compileRetry(v any, at string, c *checker) []retrier {
	if v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		c.addf(at, "Retry must be an array of retriers, got %s", typeName(v))
		return nil
	}
	var out []retrier
	for i, e := range arr {
		rat := fmt.Sprintf("%s[%d]", at, i)
		m, ok := e.(map[string]any)
		if !ok {
			c.addf(rat, "a retrier must be an object, got %s", typeName(e))
			continue
		}
		r := retrier{interval: 1, maxAttempts: 3, backoff: 2}
		for _, k := range sortedKeys(m) {
			val := m[k]
			switch k {
			case "ErrorEquals", "Comment":
			case "IntervalSeconds", "MaxDelaySeconds":
				n, ok := asInt(val)
				if !ok || n <= 0 || n > 99999999 {
					c.addf(rat+"."+k, "%s must be an integer from 1 to 99999999, got %s", k, mustJSON(val))
					continue
				}
				if k == "IntervalSeconds" {
					r.interval = float64(n)
				} else {
					r.maxDelay = float64(n)
				}
			case "MaxAttempts":
				n, ok := asInt(val)
				if !ok || n < 0 || n > 99999999 {
					c.addf(rat+".MaxAttempts", "MaxAttempts must be an integer from 0 to 99999999, got %s", mustJSON(val))
					continue
				}
				r.maxAttempts = int(n)
			case "BackoffRate":
				f, ok := asFloat(val)
				if !ok || f < 1 {
					c.addf(rat+".BackoffRate", "BackoffRate must be a number of at least 1.0, got %s", mustJSON(val))
					continue
				}
				r.backoff = f
			case "JitterStrategy":
				switch val {
				case "FULL":
					r.fullJitter = true
				case "NONE":
				default:
					c.addf(rat+".JitterStrategy", "JitterStrategy must be FULL or NONE, got %s", mustJSON(val))
				}
			default:
				c.addf(rat+"."+k, "unknown retrier field %q", k)
			}
		}
		r.errorEquals = compileErrorEquals(m["ErrorEquals"], rat, c)
		if containsAll(r.errorEquals) && i != len(arr)-1 {
			c.add(rat+".ErrorEquals", "the retrier with States.ALL must be the last one")
		}
		out = append(out, r)
	}
	return out
}

func compileCatch(v any, at string, c *checker) []catcher {
	if v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		c.addf(at, "Catch must be an array of catchers, got %s", typeName(v))
		return nil
	}
	var out []catcher
	for i, e := range arr {
		cat := fmt.Sprintf("%s[%d]", at, i)
		m, ok := e.(map[string]any)
		if !ok {
			c.addf(cat, "a catcher must be an object, got %s", typeName(e))
			continue
		}
		var ct catcher
		for _, k := range sortedKeys(m) {
			val := m[k]
			switch k {
			case "ErrorEquals", "Comment":
			case "Next":
				s, ok := val.(string)
				if !ok || s == "" {
					c.add(cat+".Next", "Next must be a state name")
				}
				ct.next = s
			case "ResultPath":
				if val == nil {
					ct.discard = true
					continue
				}
				s, ok := val.(string)
				if !ok {
					c.addf(cat+".ResultPath", "ResultPath must be a reference path or null, got %s", typeName(val))
					continue
				}
				pe, err := checkResultPath(s)
				if err != nil {
					c.add(cat+".ResultPath", err.Error())
					continue
				}
				ct.resultPath = pe
			default:
				c.addf(cat+"."+k, "unknown catcher field %q", k)
			}
		}
		if _, ok := m["Next"]; !ok {
			c.add(cat+".Next", "a catcher needs Next")
		}
		ct.errorEquals = compileErrorEquals(m["ErrorEquals"], cat, c)
		if containsAll(ct.errorEquals) && i != len(arr)-1 {
			c.add(cat+".ErrorEquals", "the catcher with States.ALL must be the last one")
		}
		out = append(out, ct)
	}
	return out
}

func containsAll(names []string) bool {
	for _, n := range names {
		if n == ErrAll {
			return true
		}
	}
	return false
}
