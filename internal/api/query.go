package api

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rewind-dr/rewind/internal/errs"
)

// query reads a request's query parameters strictly: each at most once, none unknown.
type query struct {
	op   string
	vals url.Values
	err  error
}

// newQuery checks r's query against the allowed names. errs.Invalid for an unknown or
// repeated parameter or one that is not valid UTF-8.
func newQuery(r *http.Request, allowed ...string) (*query, error) {
	op := r.Method + " " + r.URL.Path
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "the query string is malformed: %v", err)
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			hint := "this route takes no query parameters"
			if len(allowed) > 0 {
				hint = "this route takes " + strings.Join(allowed, ", ")
			}
			return nil, errs.Errorf(op, errs.Invalid, "unknown query parameter %q", k).WithHint(hint)
		}
		if len(vals[k]) > 1 {
			return nil, errs.Errorf(op, errs.Invalid, "query parameter %q is given %d times", k, len(vals[k])).
				WithHint("give it once")
		}
		if !utf8.ValidString(vals[k][0]) {
			return nil, errs.Errorf(op, errs.Invalid, "query parameter %q is not valid UTF-8", k)
		}
	}
	return &query{op: op, vals: vals}, nil
}

func noQuery(r *http.Request) error {
	_, err := newQuery(r)
	return err
}

// str returns a parameter as a pointer ("unset" is nil); an empty value is an error.
func (q *query) str(name string) *string {
	v, ok := q.vals[name]
	if !ok {
		return nil
	}
	if v[0] == "" && q.err == nil {
		q.err = errs.Errorf(q.op, errs.Invalid, "query parameter %q is empty", name).WithHint("leave it out to not filter")
	}
	return &v[0]
}

// name returns a parameter that must be a valid name.
func (q *query) name(name string) *string {
	v := q.str(name)
	if v != nil && q.err == nil {
		if err := checkName(q.op, name, *v); err != nil {
			q.err = err
		}
	}
	return v
}

func (q *query) time(name string) *time.Time {
	v := q.str(name)
	if v == nil || q.err != nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		q.err = errs.Errorf(q.op, errs.Invalid, "query parameter %s=%q is not an RFC 3339 time", name, *v).
			WithHint("write e.g. 2026-01-31T02:00:00Z")
		return nil
	}
	return &t
}

// limit returns the page size: DefaultLimit when unset, 1..MaxLimit otherwise.
func (q *query) limit() int {
	v := q.str("limit")
	if v == nil || q.err != nil {
		return DefaultLimit
	}
	n, err := strconv.Atoi(*v)
	if err != nil || n < 1 || n > MaxLimit {
		q.err = errs.Errorf(q.op, errs.Invalid, "limit=%q is not a number from 1 to %d", *v, MaxLimit)
		return DefaultLimit
	}
	return n
}

// cursor returns the "after" parameter, "" when unset.
func (q *query) cursor() string {
	v := q.str("after")
	if v == nil {
		return ""
	}
	if len(*v) > 512 && q.err == nil {
		q.err = errs.Errorf(q.op, errs.Invalid, "cursor after=%.20q… is too long", *v).
			WithHint("pass the \"next\" value of the previous page")
	}
	return *v
}
