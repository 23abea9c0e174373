package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the work of one parse: aliases can make a small file expand into a
// huge tree ("billion laughs").
const maxNodes = 100_000

// decoder turns a yaml.Node tree into the raw types, recording a Problem for every
// unknown field, duplicate key, wrong type and missing required field, and going on.
type decoder struct {
	file     string
	problems []Problem
	nodes    int
	tooBig   bool
}

func (d *decoder) addf(at pos, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: at.Line, Column: at.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func nodePos(n *yaml.Node) pos { return pos{Line: n.Line, Column: n.Column} }

func joinPath(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

var (
	scalarType = reflect.TypeFor[scalar]()
	posType    = reflect.TypeFor[pos]()
)

// mapDecoder is implemented by *omap[T].
type mapDecoder interface {
	decodeMap(d *decoder, n *yaml.Node, path string)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// resolve follows aliases and counts nodes; it returns nil once the budget is spent.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			return nil
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes {
		if !d.tooBig {
			d.tooBig = true
			d.addf(pos{}, "", "the file expands to more than %d YAML nodes (through aliases); it is too large to be a Rewind config", maxNodes)
		}
		return nil
	}
	return n
}

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n = d.resolve(n); n == nil {
		return
	}
	if v.Type() == scalarType {
		switch {
		case isNull(n):
			// Absent: validation reports it if the field is required.
		case n.Kind != yaml.ScalarNode:
			d.addf(nodePos(n), path, "expected a single value, got %s", describe(n))
		default:
			v.Set(reflect.ValueOf(scalar{Value: n.Value, Tag: n.ShortTag(), At: nodePos(n), Set: true}))
		}
		return
	}
	if m, ok := v.Addr().Interface().(mapDecoder); ok {
		m.decodeMap(d, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.decode(n, path, p.Elem())
		v.Set(p)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.addf(nodePos(n), path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	default:
		panic(fmt.Sprintf("config: raw type %s not handled", v.Type()))
	}
}

// fieldInfo describes one yaml-tagged field of a raw struct.
type fieldInfo struct {
	name     string
	index    int
	required bool
}

func structFields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, fieldInfo{name: name, index: i, required: f.Tag.Get("cfg") == "required"})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if f, ok := v.Type().FieldByName("At"); ok && f.Type == posType {
		v.FieldByIndex(f.Index).Set(reflect.ValueOf(nodePos(n)))
	}
	fields := structFields(v.Type())
	if isNull(n) {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	}
	if n.Kind != yaml.MappingNode {
		d.addf(nodePos(n), path, "expected a mapping of fields, got %s", describe(n))
		return
	}
	seen := map[string]pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		var fi *fieldInfo
		for j := range fields {
			if fields[j].name == key {
				fi = &fields[j]
			}
		}
		if fi == nil {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			msg := fmt.Sprintf("unknown field %q", key)
			if s := suggest(key, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; known fields: " + strings.Join(names, ", ")
			}
			d.addf(nodePos(k), path, "%s", msg)
			continue
		}
		d.decode(val, joinPath(path, key), v.Field(fi.index))
	}
	for _, f := range fields {
		if f.required && !isSet(v.Field(f.index)) {
			if _, present := seen[f.name]; present {
				// Present but null or of the wrong type: a problem may already be recorded.
				if !isSet(v.Field(f.index)) && !d.hasProblemAt(joinPath(path, f.name)) {
					d.addf(seen[f.name], joinPath(path, f.name), "has no value; it is required")
				}
				continue
			}
			d.addf(nodePos(n), path, "missing required field %q", f.name)
		}
	}
}

func (d *decoder) hasProblemAt(path string) bool {
	for _, p := range d.problems {
		if p.Path == path {
			return true
		}
	}
	return false
}

// key reads a mapping key, reporting non-string and duplicate keys.
func (d *decoder) key(k *yaml.Node, path string, seen map[string]pos) (string, bool) {
	if k = d.resolve(k); k == nil {
		return "", false
	}
	if k.Kind != yaml.ScalarNode || isNull(k) {
		d.addf(nodePos(k), path, "a key must be a plain name, got %s", describe(k))
		return "", false
	}
	if k.Value == "<<" && k.ShortTag() == "!!merge" {
		d.addf(nodePos(k), path, "merge keys (<<) are not supported; write the fields out")
		return "", false
	}
	if first, dup := seen[k.Value]; dup {
		d.addf(nodePos(k), path, "duplicate key %q (first at line %d, column %d)", k.Value, first.Line, first.Column)
		return "", false
	}
	seen[k.Value] = nodePos(k)
	return k.Value, true
}

// isSet reports whether a raw field was given a value.
func isSet(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice:
		return !v.IsNil()
	case reflect.Struct:
		if f := v.FieldByName("Set"); f.IsValid() && f.Kind() == reflect.Bool {
			return f.Bool()
		}
	}
	return true
}

func (m *omap[T]) decodeMap(d *decoder, n *yaml.Node, path string) {
	m.At = nodePos(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.addf(nodePos(n), path, "expected a mapping of names, got %s", describe(n))
		return
	}
	m.Set = true
	seen := map[string]pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		e := entry[T]{Key: key, KeyAt: nodePos(k)}
		d.decode(val, joinPath(path, key), reflect.ValueOf(&e.Val).Elem())
		m.Entries = append(m.Entries, e)
	}
}
