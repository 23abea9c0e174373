package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rewind-dr/rewind/internal/vault"
)

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tab-aligned writer; call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// humanBytes formats n as 1.5 GiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatTags(tags map[string]string) string {
	keys := sortedKeys(tags)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ",")
}

func formatTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// pointJSON is the JSON shape of a recovery point in list output.
type pointJSON struct {
	ID       string            `json:"id"`
	ShortID  string            `json:"short_id"`
	Time     time.Time         `json:"time"`
	Kind     string            `json:"kind"`
	Host     string            `json:"host"`
	Resource string            `json:"resource"`
	Paths    []string          `json:"paths"`
	Tags     map[string]string `json:"tags"`
	Parent   string            `json:"parent,omitempty"`
	Summary  vault.Summary     `json:"summary"`
	Range    *vault.TimeRange  `json:"range,omitempty"`
}

func toPointJSON(p *vault.Point) pointJSON {
	pj := pointJSON{
		ID: p.ID.String(), ShortID: p.ID.Short(), Time: p.Time, Kind: p.Kind, Host: p.Host,
		Resource: p.Resource, Paths: p.Paths, Tags: p.Tags, Summary: p.Summary, Range: p.Range,
	}
	if pj.Tags == nil {
		pj.Tags = map[string]string{}
	}
	if pj.Paths == nil {
		pj.Paths = []string{}
	}
	if p.Parent != nil {
		pj.Parent = p.Parent.String()
	}
	return pj
}

// writeJSONLine writes v as one compact JSON line.
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
