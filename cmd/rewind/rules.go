package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// newRulesCmd lists a server's event rules.
func newRulesCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List a rewind server's event rules",
		Long: `List every event rule a server routes events with, by name: where it comes from
(config: the server's configuration file; api: stored in the catalog with "rewind rule
put", shared by every server on that catalog), whether it is disabled, and its targets.
With --json the output is the JSON array GET /v1/rules answers, each rule's spec
included.` + serverHelp,
		Example: `  rewind rules --server http://127.0.0.1:8420
  rewind rules --json | jq -r '.[] | select(.source == "api") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, err := c.Rules(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tSOURCE\tSTATE\tTARGETS\tDESCRIPTION")
			for _, r := range list {
				state := "enabled"
				if r.Spec.Disabled {
					state = "disabled"
				}
				kinds := make([]string, 0, len(r.Spec.Targets))
				for _, t := range r.Spec.Targets {
					kinds = append(kinds, t.Kind())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Source, state, dash(strings.Join(kinds, ",")),
					dash(shorten(r.Spec.Description, 60)))
			}
			return tw.Flush()
		},
	}
	o.register(cmd, "print the rules as JSON")
	return cmd
}

// newRuleCmd groups the commands that change one event rule.
func newRuleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rule",
		Short: "Create, replace or delete an event rule on a rewind server",
		Long: `Event rules route events to targets. Rules written in the server's configuration file
are changed there; "rule put" and "rule delete" manage the rules stored in the catalog,
which every server sharing the catalog picks up within a poll, without a restart.`,
		Example: `  rewind rule put failed-backups --file failed-backups.yaml
  rewind rule delete failed-backups`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRulePutCmd(), newRuleDeleteCmd())
	return cmd
}

func newRulePutCmd() *cobra.Command {
	var (
		o    serverOpts
		file string
	)
	cmd := &cobra.Command{
		Use:   "put NAME --file FILE",
		Short: "Create or replace an event rule",
		Long: `Send a rule to a rewind server as rule NAME. FILE holds one rule in the shape of the
configuration's rules.NAME block (pattern, targets, and optionally description,
input_transformer, retry, disabled), as YAML or JSON; "-" reads standard input. The
server compiles it and refuses it, saying which field is wrong, without changing
anything. A rule of the server's configuration file cannot be replaced this way. Rules
may run commands (exec targets) on the server: this needs an admin token.` + serverHelp,
		Example: `  cat > failed-backups.yaml <<'YAML'
  description: Page the on-call engineer when a backup fails
  pattern:
    source: [rewind.backup]
    detail-type: [Backup Job State Change]
    detail: {state: [FAILED]}
  targets:
    - webhook: {url: "https://hooks.example.com/rewind"}
    - incident: {title: "Backup of <resource> failed", severity: high}
  YAML
  rewind rule put failed-backups --file failed-backups.yaml
  rewind rule put failed-backups --file rule.json --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "rule put"
			if file == "" {
				return exitWith(exitUsage, errs.Errorf(op, errs.Invalid, "--file is required").
					WithHint("rewind rule put NAME --file rule.yaml"))
			}
			src, err := readRuleFile(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			spec, err := ruleJSON(file, src)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			r, err := c.PutRule(cmd.Context(), args[0], spec)
			if err != nil {
				return err
			}
			if o.json {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rule %s stored\n", r.Name)
			return nil
		},
	}
	o.register(cmd, "print the stored rule as JSON")
	cmd.Flags().StringVar(&file, "file", "", `rule file (YAML or JSON; "-" for standard input)`)
	return cmd
}

func newRuleDeleteCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an event rule stored through the API",
		Long: `Delete a rule stored with "rule put". Deliveries it already recorded still run; a rule
of the server's configuration file cannot be deleted this way. Needs an admin token.` + serverHelp,
		Example: `  rewind rule delete failed-backups`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeleteRule(cmd.Context(), args[0]); err != nil {
				return err
			}
			if o.json {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rule %s deleted\n", args[0])
			return nil
		},
	}
	o.register(cmd, `print {"deleted": NAME} as JSON`)
	return cmd
}

// maxRuleFile bounds a rule file; the server takes at most 64 KiB of JSON.
const maxRuleFile = 1 << 20 // bytes

func readRuleFile(stdin io.Reader, path string) ([]byte, error) {
	const op = "rule put"
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("reading the rule: %w", err))
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxRuleFile+1))
	if err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("reading the rule: %w", err))
	}
	if len(b) > maxRuleFile {
		return nil, errs.Errorf(op, errs.Invalid, "%s is larger than %d bytes", path, maxRuleFile)
	}
	return b, nil
}

// ruleJSON turns a rule file into the JSON the server takes: JSON is sent as written;
// YAML is decoded strictly into a rule (an unknown field is named with its line) and sent
// as JSON. The server compiles the rule either way.
func ruleJSON(name string, src []byte) (json.RawMessage, error) {
	const op = "rule put"
	trimmed := bytes.TrimLeft(src, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if !json.Valid(trimmed) {
			return nil, errs.Errorf(op, errs.Invalid, "%s is not valid JSON", name).
				WithHint("check it with jq . " + name)
		}
		return json.RawMessage(trimmed), nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var spec rules.RuleSpec
	if err := dec.Decode(&spec); err != nil {
		if err == io.EOF {
			return nil, errs.Errorf(op, errs.Invalid, "%s is empty", name).
				WithHint("write one rule: pattern and targets")
		}
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("%s: %w", name, err)).
			WithHint("write one rule in the shape of the configuration's rules.NAME block: pattern, targets, …")
	}
	// The rule is sent as the YAML wrote it rather than as the decoded spec, so that the
	// pattern's numbers keep every digit (a decoded number is a float64).
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("%s: %w", name, err))
	}
	v, err := yamlJSON(&doc, 0)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			return b, nil
		}
	}
	return nil, errs.E(op, errs.Invalid, fmt.Errorf("%s: the rule cannot be written as JSON: %w", name, err)).
		WithHint("use text keys and plain values")
}

// yamlJSON converts a YAML node into a value that marshals to the JSON it means: numbers
// as written (when JSON can write them), other scalars as the YAML library decodes them,
// timestamps as their text.
func yamlJSON(n *yaml.Node, depth int) (any, error) {
	if depth > 100 {
		return nil, fmt.Errorf("the rule is nested more than 100 levels deep")
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlJSON(n.Content[0], depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key is not text", k.Line)
			}
			v, err := yamlJSON(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlJSON(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		if json.Valid([]byte(n.Value)) {
			return json.Number(n.Value), nil
		}
	case "!!timestamp", "!!str":
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return v, nil
}
