package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Report is what a resource's vault content can restore.
type Report struct {
	Resource string
	SystemID string
	Timeline uint32 // the latest timeline stored
	Spans    []Span // one per base backup, oldest first
	Gaps     []Gap  // WAL missing after a base backup, each reported once
}

// OK reports whether no gap was found.
func (r *Report) OK() bool { return len(r.Gaps) == 0 }

// Range returns the restorable time span: from the oldest base backup's end to the newest
// WAL reachable without a gap from some base backup. Spans separated by a gap are all inside
// it; Continuity lists the gaps.
func (r *Report) Range() vault.TimeRange {
	var tr vault.TimeRange
	for i, s := range r.Spans {
		if i == 0 || s.From.Before(tr.From) {
			tr.From = s.From
		}
		if s.To.After(tr.To) {
			tr.To = s.To
		}
	}
	return tr
}

func (r *Report) describeSpans() string {
	var parts []string
	for _, s := range r.Spans {
		parts = append(parts, fmt.Sprintf("%s – %s (LSN %s – %s)", s.From.UTC().Format("2006-01-02T15:04:05.999Z07:00"),
			s.To.UTC().Format("2006-01-02T15:04:05.999Z07:00"), s.FromLSN, s.ToLSN))
	}
	return strings.Join(parts, "; ")
}

// Continuity checks that the WAL stored for resource is continuous from each base backup to
// the newest WAL of the latest timeline (following timeline history files) and reports every
// gap with its exact LSN range and segment names. It reads point manifests and history
// files only.
//
// Errors: errs.NotFound (no base backup of the resource), errs.Corrupt (a damaged
// manifest or history file), and the vault's errors.
func Continuity(ctx context.Context, v Vault, resource string) (*Report, error) {
	const op = "postgres.Continuity"
	c, err := loadCatalog(ctx, v, op, resource)
	if err != nil {
		return nil, err
	}
	return c.report(ctx, v, op)
}

func (c *catalog) report(ctx context.Context, v Vault, op string) (*Report, error) {
	if len(c.bases) == 0 {
		return nil, errs.Errorf(op, errs.NotFound, "resource %q has no PostgreSQL base backup in this vault", c.resource).
			WithHint("take one with 'rewind backup --resource " + c.resource + " postgres://…'")
	}
	spans, gaps, err := c.spans(ctx, v, op)
	if err != nil {
		return nil, err
	}
	return &Report{Resource: c.resource, SystemID: c.systemID, Timeline: c.latestTimeline(), Spans: spans, Gaps: gaps}, nil
}

// Range returns resource's restorable time span (see Report.Range). Errors: those of
// Continuity.
func Range(ctx context.Context, v Vault, resource string) (vault.TimeRange, error) {
	r, err := Continuity(ctx, v, resource)
	if err != nil {
		return vault.TimeRange{}, err
	}
	return r.Range(), nil
}
