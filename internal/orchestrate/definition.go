package orchestrate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// maxDefinitionValues bounds the values a YAML definition may expand to through aliases.
const maxDefinitionValues = 1 << 20

// Normalize turns a runbook definition in JSON or YAML into compact JSON, the form the
// catalog stores, after checking that it parses. It does not check that its task
// resources are registered (Start does). errs.Invalid for bytes that are not an ASL
// object.
func Normalize(src []byte) (json.RawMessage, error) {
	const op = "orchestrate.Normalize"
	if _, err := runbook.Parse(src); err != nil {
		return nil, err
	}
	trimmed := strings.TrimLeft(string(src), " \t\r\n\ufeff")
	if strings.HasPrefix(trimmed, "{") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(trimmed)); err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("the definition is not valid JSON: %w", err))
		}
		return buf.Bytes(), nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("the definition is not valid YAML: %w", err))
	}
	budget := maxDefinitionValues
	v, err := yamlToJSON(&doc, &budget)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("the definition cannot be written as JSON: %w", err))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	return b, nil
}

// yamlToJSON converts a YAML node to a value that marshals to the same JSON the runbook
// package reads from it: timestamps stay the text written, numbers keep their digits.
func yamlToJSON(n *yaml.Node, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("the document expands to more than %d values", maxDefinitionValues)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("the document is empty")
		}
		return yamlToJSON(n.Content[0], budget)
	case yaml.AliasNode:
		return yamlToJSON(n.Alias, budget)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlToJSON(c, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			val, err := yamlToJSON(v, budget)
			if err != nil {
				return nil, err
			}
			if k.Tag == "!!merge" {
				m, ok := val.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("line %d: a merge key (<<) needs a mapping", k.Line)
				}
				for mk, mv := range m {
					if _, set := out[mk]; !set {
						out[mk] = mv
					}
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be strings", k.Line)
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err == nil {
				return json.Number(strconv.FormatInt(i, 10)), nil
			}
			var u uint64
			if err := n.Decode(&u); err != nil {
				return nil, fmt.Errorf("line %d: integer %q out of range", n.Line, n.Value)
			}
			return json.Number(strconv.FormatUint(u, 10)), nil
		case "!!float":
			f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if err != nil {
				if err := n.Decode(&f); err != nil {
					return nil, fmt.Errorf("line %d: %v", n.Line, err)
				}
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: %q is not a JSON number", n.Line, n.Value)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// PutRunbook validates a definition (JSON or YAML) against the registry and stores it as
// runbook name, from source (catalog.RunbookFromConfig or RunbookFromAPI). Errors:
// errs.Invalid for a bad name or source or a definition that cannot run (every problem
// listed); the catalog's errors.
func (s *Service) PutRunbook(ctx context.Context, name string, src []byte, source string) (*catalog.Runbook, error) {
	norm, err := s.check(name, src)
	if err != nil {
		return nil, err
	}
	rb := &catalog.Runbook{Name: name, Definition: norm, Source: source}
	err = s.opts.Store.Tx(ctx, func(tx catalog.Tx) error { return tx.UpsertRunbook(ctx, rb) })
	if err != nil {
		return nil, err
	}
	return rb, nil
}

// SyncRunbooks makes the catalog's config runbooks the given ones (name -> JSON or YAML
// definition, as read from the configuration directory at start): config runbooks not
// given are removed, runbooks sent through the API are kept unless a config runbook of the
// same name replaces them. Every definition is checked first and nothing is written when
// one is invalid: errs.Invalid naming it.
func (s *Service) SyncRunbooks(ctx context.Context, defs map[string][]byte) error {
	norms := make(map[string]json.RawMessage, len(defs))
	for name, src := range defs {
		norm, err := s.check(name, src)
		if err != nil {
			return errs.E("orchestrate.SyncRunbooks", errs.KindOf(err), fmt.Errorf("runbook %s: %w", name, err))
		}
		norms[name] = norm
	}
	return s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		all, err := tx.ListRunbooks(ctx)
		if err != nil {
			return err
		}
		for _, rb := range all {
			if _, keep := norms[rb.Name]; !keep && rb.Source == catalog.RunbookFromConfig {
				if err := tx.DeleteRunbook(ctx, rb.Name); err != nil {
					return err
				}
			}
		}
		for name, norm := range norms {
			if err := tx.UpsertRunbook(ctx, &catalog.Runbook{Name: name, Definition: norm, Source: catalog.RunbookFromConfig}); err != nil {
				return err
			}
		}
		return nil
	})
}

// check normalizes a definition and validates it as Start would.
func (s *Service) check(name string, src []byte) (json.RawMessage, error) {
	const op = "orchestrate.PutRunbook"
	norm, err := Normalize(src)
	if err != nil {
		return nil, err
	}
	d, err := parseDefinition(name, norm)
	if err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var missing []string
	for _, r := range d.Resources() {
		if spec, ok := s.opts.Registry[r]; !ok || spec.Run == nil {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, errs.Errorf(op, errs.Invalid, "runbook %s uses unknown task resource(s): %s", name, strings.Join(missing, ", ")).
			WithHint("available resources: " + strings.Join(slices.Sorted(maps.Keys(s.opts.Registry)), ", "))
	}
	return norm, nil
}
