package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaPath = "../../docs/rewind.schema.json"

func loadSchemaDoc(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("%s is not a JSON object", schemaPath)
	}
	return m
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("rewind.schema.json", loadSchemaDoc(t)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("rewind.schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return s
}

// yamlToJSON turns a YAML document into the JSON value the schema validator expects.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsExamples checks every example config against the published schema,
// and that the parser accepts them too.
func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in testdata: %v", err)
	}
	shipped, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(shipped) == 0 {
		t.Fatalf("no example configs in examples/: %v", err)
	}
	files = append(files, shipped...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s does not match %s: %v", f, schemaPath, err)
		}
		if _, err := Parse(f, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestSchemaRejects makes sure the schema is not vacuous: broken configs the parser
// rejects are rejected by the schema too.
func TestSchemaRejects(t *testing.T) {
	sch := compileSchema(t)
	const base = "sites: {a: {}}\nvaults: {v: {site: a, url: /v, password_file: /k}}\n"
	for _, doc := range []string{
		"sites: {a: {}}\n",
		base + "colour: red\n",
		base + "resources: {r: {kind: fils}}\n",
		base + "resources: {r: {kind: files}}\n",
		base + "resources: {r: {kind: postgres, url: postgres://x/y, paths: [/x]}}\n",
		base + "resources: {r: {kind: files, paths: [relative]}}\n",
		base + "plans: {p: {select: {tags: {t: x}}, rules: [{name: x, schedule: '@daily', vault: v, start_window: 60}]}}\n",
		base + "plans: {p: {select: {tags: {t: x}}, rules: [{name: x, schedule: '@daily', vault: v, retention: {keep_last: -1}}]}}\n",
		base + "auth: {tokens: [{name: x, role: root, token_file: /t}]}\n",
	} {
		if err := sch.Validate(yamlToJSON(t, []byte(doc))); err == nil {
			t.Errorf("schema accepts a broken config:\n%s", doc)
		}
		if _, err := Parse("c.yaml", []byte(doc)); err == nil {
			t.Errorf("parser accepts a broken config:\n%s", doc)
		}
	}
}

// TestSchemaMatchesParser walks the raw types the parser decodes and the schema side by
// side: every field the parser accepts must be in the schema with the same required
// status, and the schema must describe no field the parser would reject.
func TestSchemaMatchesParser(t *testing.T) {
	doc := loadSchemaDoc(t)
	defs, _ := doc["$defs"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		for range 10 {
			ref, ok := s["$ref"].(string)
			if !ok {
				return s
			}
			name, found := strings.CutPrefix(ref, "#/$defs/")
			def, ok := defs[name].(map[string]any)
			if !found || !ok {
				t.Fatalf("unresolvable $ref %q", ref)
			}
			s = def
		}
		t.Fatal("$ref loop")
		return nil
	}
	var walk func(typ reflect.Type, s map[string]any, path string)
	walk = func(typ reflect.Type, s map[string]any, path string) {
		s = resolve(s)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch {
		case typ == scalarType:
			if s["type"] == "object" || s["type"] == "array" {
				t.Errorf("%s: a single value in the parser, %v in the schema", path, s["type"])
			}
		case typ.Kind() == reflect.Slice:
			items, ok := s["items"].(map[string]any)
			if s["type"] != "array" || !ok {
				t.Errorf("%s: a list in the parser, not in the schema", path)
				return
			}
			walk(typ.Elem(), items, path+"[]")
		case strings.HasPrefix(typ.Name(), "omap["):
			entries, _ := typ.FieldByName("Entries")
			val, _ := entries.Type.Elem().FieldByName("Val")
			ap, ok := s["additionalProperties"].(map[string]any)
			if s["type"] != "object" || !ok {
				t.Errorf("%s: a mapping of names in the parser, not in the schema", path)
				return
			}
			walk(val.Type, ap, path+".*")
		case strings.HasPrefix(typ.Name(), "spec["):
			// A block decoded into a domain package's spec type: its yaml tags are the fields.
			st := reflect.Zero(typ).Interface().(interface{ specType() reflect.Type }).specType()
			walkSpec(t, st, s, path, resolve)
		case typ.Kind() == reflect.Struct:
			if s["type"] != "object" || s["additionalProperties"] != false {
				t.Errorf("%s: the schema must be a closed object (additionalProperties: false)", path)
			}
			props, _ := s["properties"].(map[string]any)
			var required []string
			for _, r := range s["required"].([]any) {
				required = append(required, r.(string))
			}
			fields := structFields(typ)
			var parserFields, parserRequired []string
			for _, f := range fields {
				parserFields = append(parserFields, f.name)
				if f.required {
					parserRequired = append(parserRequired, f.name)
				}
				p, ok := props[f.name].(map[string]any)
				if !ok {
					t.Errorf("%s.%s: accepted by the parser but missing from the schema", path, f.name)
					continue
				}
				walk(typ.Field(f.index).Type, p, path+"."+f.name)
			}
			for name := range props {
				if !slices.Contains(parserFields, name) {
					t.Errorf("%s.%s: in the schema but rejected by the parser", path, name)
				}
			}
			slices.Sort(required)
			slices.Sort(parserRequired)
			if !slices.Equal(required, parserRequired) {
				t.Errorf("%s: schema requires %v, parser requires %v", path, required, parserRequired)
			}
		default:
			t.Fatalf("%s: raw type %s not understood by this test", path, typ)
		}
	}
	if doc["required"] == nil {
		doc["required"] = []any{}
	}
	for _, d := range defs {
		if m, ok := d.(map[string]any); ok && m["type"] == "object" && m["required"] == nil {
			m["required"] = []any{}
		}
	}
	walk(reflect.TypeFor[rawFile](), doc, "rewind.yaml")
}

// walkSpec checks that the schema s describes exactly the yaml-tagged fields of the spec
// type typ, recursing into nested structs; other values are left to the spec's own checks.
func walkSpec(t *testing.T, typ reflect.Type, s map[string]any, path string, resolve func(map[string]any) map[string]any) {
	t.Helper()
	s = resolve(s)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Slice:
		if items, ok := s["items"].(map[string]any); ok && s["type"] == "array" {
			walkSpec(t, typ.Elem(), items, path+"[]", resolve)
		} else if typ.Elem().Kind() == reflect.Struct {
			t.Errorf("%s: a list in the parser, not in the schema", path)
		}
	case reflect.Struct:
		if s["type"] != "object" || s["additionalProperties"] != false {
			t.Errorf("%s: the schema must be a closed object (additionalProperties: false)", path)
			return
		}
		props, _ := s["properties"].(map[string]any)
		var names []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			names = append(names, name)
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s.%s: accepted by the parser but missing from the schema", path, name)
				continue
			}
			walkSpec(t, f.Type, p, path+"."+name, resolve)
		}
		for name := range props {
			if !slices.Contains(names, name) {
				t.Errorf("%s.%s: in the schema but rejected by the parser", path, name)
			}
		}
	}
}
