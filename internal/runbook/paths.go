package runbook

import (
	"fmt"
	"strings"

	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
)

// pathExpr is a compiled ASL Path: a JSONPath (RFC 9535) query over the state input ($) or
// over the context object ($$).
type pathExpr struct {
	src      string
	context  bool // starts with $$
	p        *jsonpath.Path
	singular bool
	ref      []spec.Selector // Name or Index selectors when the path is a reference path
}

// compilePath compiles a Path. Paths that may select several nodes yield an array.
func compilePath(src string) (*pathExpr, error) {
	if !strings.HasPrefix(src, "$") {
		return nil, fmt.Errorf("%q is not a path: paths start with $", src)
	}
	q := src
	ctx := false
	if strings.HasPrefix(src, "$$") {
		ctx = true
		q = src[1:]
	}
	p, err := jsonpath.Parse(q)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "jsonpath: ")
		return nil, fmt.Errorf("%q is not a valid JSONPath: %s (use bracket notation like $['my-key'] for names with punctuation)", src, msg)
	}
	pe := &pathExpr{src: src, context: ctx, p: p, singular: p.Query().Singular() != nil}
	if pe.singular {
		for _, seg := range p.Query().Segments() {
			sels := seg.Selectors()
			if seg.IsDescendant() || len(sels) != 1 {
				pe.ref = nil
				break
			}
			switch sels[0].(type) {
			case spec.Name, spec.Index:
				pe.ref = append(pe.ref, sels[0])
			}
		}
		if pe.ref == nil {
			pe.ref = []spec.Selector{}
		}
	}
	return pe, nil
}

// compileRefPath compiles a Reference Path: a path that identifies exactly one node.
func compileRefPath(src string) (*pathExpr, error) {
	pe, err := compilePath(src)
	if err != nil {
		return nil, err
	}
	if !pe.singular {
		return nil, fmt.Errorf("%q must be a reference path that selects a single value (no wildcards, slices, filters, unions or ..)", src)
	}
	return pe, nil
}

// eval evaluates the path against input or the context object. A singular path that
// selects nothing is an error; other paths yield an array of the selected nodes.
func (pe *pathExpr) eval(input, ctxObj any) (any, error) {
	root := input
	if pe.context {
		root = ctxObj
	}
	nodes := pe.p.Select(root)
	if pe.singular {
		if len(nodes) == 0 {
			return nil, fmt.Errorf("path %s selects nothing from %s", pe.src, describeRoot(pe.context))
		}
		return nodes[0], nil
	}
	out := make([]any, len(nodes))
	copy(out, nodes)
	return out, nil
}

// lookup evaluates a singular path, reporting whether it selected a node.
func (pe *pathExpr) lookup(input, ctxObj any) (any, bool) {
	root := input
	if pe.context {
		root = ctxObj
	}
	nodes := pe.p.Select(root)
	if len(nodes) == 0 {
		return nil, false
	}
	if !pe.singular {
		out := make([]any, len(nodes))
		copy(out, nodes)
		return out, true
	}
	return nodes[0], true
}

func describeRoot(ctx bool) string {
	if ctx {
		return "the context object"
	}
	return "the input"
}

// setRef returns a copy of root with value placed at the reference path, creating
// intermediate objects as needed. ResultPath may only use names and non-negative indexes.
func setRef(pe *pathExpr, root, value any) (any, error) {
	if len(pe.ref) == 0 {
		return value, nil
	}
	return setAt(deepCopy(root), pe.ref, value, pe.src)
}

func setAt(cur any, sels []spec.Selector, value any, src string) (any, error) {
	if len(sels) == 0 {
		return value, nil
	}
	switch s := sels[0].(type) {
	case spec.Name:
		var m map[string]any
		switch c := cur.(type) {
		case map[string]any:
			m = c
		case nil:
			m = map[string]any{}
		default:
			return nil, fmt.Errorf("ResultPath %s: cannot set field %q on a %s", src, string(s), typeName(cur))
		}
		v, err := setAt(m[string(s)], sels[1:], value, src)
		if err != nil {
			return nil, err
		}
		m[string(s)] = v
		return m, nil
	case spec.Index:
		a, ok := cur.([]any)
		if !ok {
			return nil, fmt.Errorf("ResultPath %s: cannot index a %s", src, typeName(cur))
		}
		i := int(s)
		if i < 0 {
			i += len(a)
		}
		if i < 0 || i >= len(a) {
			return nil, fmt.Errorf("ResultPath %s: index %d is out of range for an array of %d", src, int(s), len(a))
		}
		v, err := setAt(a[i], sels[1:], value, src)
		if err != nil {
			return nil, err
		}
		a[i] = v
		return a, nil
	}
	return nil, fmt.Errorf("ResultPath %s: only names and indexes are allowed", src)
}

// checkResultPath validates that a reference path can be used as a ResultPath target.
func checkResultPath(src string) (*pathExpr, error) {
	pe, err := compileRefPath(src)
	if err != nil {
		return nil, err
	}
	if pe.context {
		return nil, fmt.Errorf("%q: ResultPath cannot write into the context object ($$)", src)
	}
	if len(pe.ref) != len(pe.p.Query().Segments()) {
		return nil, fmt.Errorf("%q: ResultPath may only use field names and array indexes", src)
	}
	return pe, nil
}
