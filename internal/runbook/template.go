package runbook

import (
	"fmt"
	"sort"
	"strings"
)

// template is a compiled payload template (Parameters, ResultSelector, ItemSelector):
// static JSON in which object keys ending in ".$" take their value from a path or an
// intrinsic function.
type template struct {
	static   any
	fields   []tfield // for objects
	items    []*template
	isObject bool
	isArray  bool
}

type tfield struct {
	key   string
	sub   *template  // static or nested
	path  *pathExpr  // key.$ with a path
	call  *intrinsic // key.$ with an intrinsic
	where string
}

func compileTemplate(v any, where string, c *checker) *template {
	switch x := v.(type) {
	case map[string]any:
		t := &template{isObject: true}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			val := x[k]
			at := where + "." + k
			if name, ok := strings.CutSuffix(k, ".$"); ok {
				s, isStr := val.(string)
				if !isStr {
					c.addf(at, "a key ending in .$ needs a path or intrinsic function string, got %s", typeName(val))
					continue
				}
				f := tfield{key: name, where: at}
				if isIntrinsic(s) {
					call, err := parseIntrinsic(s)
					if err != nil {
						c.add(at, err.Error())
						continue
					}
					f.call = call
				} else {
					pe, err := compilePath(s)
					if err != nil {
						c.add(at, err.Error())
						continue
					}
					f.path = pe
				}
				t.fields = append(t.fields, f)
				continue
			}
			t.fields = append(t.fields, tfield{key: k, sub: compileTemplate(val, at, c), where: at})
		}
		return t
	case []any:
		t := &template{isArray: true}
		for i, e := range x {
			t.items = append(t.items, compileTemplate(e, fmt.Sprintf("%s[%d]", where, i), c))
		}
		return t
	}
	return &template{static: v}
}

// templateError says which kind of failure evaluation hit.
type templateError struct {
	name  string // States.ParameterPathFailure or States.IntrinsicFailure
	cause string
}

func (e *templateError) Error() string { return e.cause }

func (t *template) eval(input, ctxObj any, env intrinsicEnv) (any, error) {
	switch {
	case t.isObject:
		out := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			switch {
			case f.path != nil:
				v, err := f.path.eval(input, ctxObj)
				if err != nil {
					return nil, &templateError{ErrParameterPathFailure, fmt.Sprintf("%s: %v", f.where, err)}
				}
				out[f.key] = deepCopy(v)
			case f.call != nil:
				v, err := f.call.eval(input, ctxObj, env)
				if err != nil {
					return nil, &templateError{ErrIntrinsicFailure, fmt.Sprintf("%s: %v", f.where, err)}
				}
				out[f.key] = v
			default:
				v, err := f.sub.eval(input, ctxObj, env)
				if err != nil {
					return nil, err
				}
				out[f.key] = v
			}
		}
		return out, nil
	case t.isArray:
		out := make([]any, len(t.items))
		for i, it := range t.items {
			v, err := it.eval(input, ctxObj, env)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return deepCopy(t.static), nil
}
