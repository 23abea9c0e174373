package vault

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

const (
	// PointVersion is the manifest major version this build writes and the highest it reads.
	PointVersion = 1
	maxPointSize = 16 << 20
)

// Point kinds defined so far. A kind names the plugin that can restore the point; the vault
// itself reads only Root (and, for Check and Prune, the trees under it).
const (
	KindFiles        = "files"         // a directory tree; Root is its top tree
	KindStream       = "stream"        // one byte stream (a dump, an image) stored as a file in a tree
	KindPostgresBase = "postgres-base" // a PostgreSQL base backup
	KindWAL          = "wal"           // a segment set of a continuous log; Range is its restorable span
)

// Summary records what a backup saw and added.
type Summary struct {
	Files      uint64        `json:"files"`
	Dirs       uint64        `json:"dirs"`
	Bytes      uint64        `json:"bytes"`
	BlobsAdded uint64        `json:"blobs_added"`
	BytesAdded uint64        `json:"bytes_added"`
	Duration   time.Duration `json:"duration_ns"`
}

// TimeRange is the span of time a continuous-log point can restore to, inclusive.
type TimeRange struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Point is a recovery point: one restorable state of a resource. The manifest carries
// everything needed to find and restore it without any catalog.
type Point struct {
	ID       ID                `json:"id"`
	Version  int               `json:"version"`
	Kind     string            `json:"kind"`
	Time     time.Time         `json:"time"`
	Host     string            `json:"host"`
	Resource string            `json:"resource"`
	Paths    []string          `json:"paths,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Parent   *ID               `json:"parent,omitempty"`
	Root     ID                `json:"root"`
	Summary  Summary           `json:"summary"`
	Range    *TimeRange        `json:"range,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
}

func validKind(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// DecodePoint decodes a point manifest's plaintext stored under name. Unknown fields are
// accepted; an unknown major version is rejected.
func DecodePoint(name string, b []byte) (*Point, error) {
	if len(b) > maxPointSize {
		return nil, fmt.Errorf("point %s: manifest of %d bytes exceeds the %d-byte cap", name, len(b), maxPointSize)
	}
	var p Point
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("point %s: %v", name, err)
	}
	switch {
	case p.Version < 1:
		return nil, fmt.Errorf("point %s: missing or invalid version %d", name, p.Version)
	case p.Version > PointVersion:
		return nil, fmt.Errorf("point %s: manifest version %d is newer than this build reads (%d); upgrade rewind", name, p.Version, PointVersion)
	case p.ID.String() != name:
		return nil, fmt.Errorf("point %s: manifest says its ID is %s", name, p.ID)
	case !validKind(p.Kind):
		return nil, fmt.Errorf("point %s: invalid kind %q", name, p.Kind)
	case p.Root.IsZero():
		return nil, fmt.Errorf("point %s: no root tree", name)
	case p.Range != nil && p.Range.To.Before(p.Range.From):
		return nil, fmt.Errorf("point %s: range ends (%s) before it starts (%s)", name, p.Range.To, p.Range.From)
	}
	return &p, nil
}

// SavePoint writes a recovery point manifest. The root tree (and everything under it) must
// have been stored and flushed. It re-validates this Repository's lease first (a lock must be
// held) and writes nothing if the lease is lost. A zero p.ID gets a random ID; p.Version is
// set. The point exists once SavePoint returns.
func (r *Repository) SavePoint(ctx context.Context, p *Point) (ID, error) {
	const op = "vault.SavePoint"
	if !validKind(p.Kind) {
		return ID{}, errs.Errorf(op, errs.Invalid, "invalid point kind %q (lower-case letters, digits and '-')", p.Kind)
	}
	if p.Time.IsZero() {
		return ID{}, errs.Errorf(op, errs.Invalid, "point has no time")
	}
	if p.Range != nil && p.Range.To.Before(p.Range.From) {
		return ID{}, errs.Errorf(op, errs.Invalid, "point range ends before it starts")
	}
	// The root must be in a written index file; Flush writes data packs and earlier trees
	// first, so everything under the root is then indexed as well.
	loc, ok := r.blobIndex().Lookup(uint8(TreeBlob), p.Root)
	if !ok {
		if r.HasBlob(TreeBlob, p.Root) {
			return ID{}, errs.Errorf(op, errs.Internal, "root tree %s is not yet stored; call Flush before SavePoint", p.Root.Short())
		}
		return ID{}, errs.Errorf(op, errs.Invalid, "root tree %s is not in the vault", p.Root)
	}
	if r.unindexed(loc.Pack) {
		return ID{}, errs.Errorf(op, errs.Internal, "root tree %s is not yet indexed; call Flush before SavePoint", p.Root.Short())
	}
	if err := r.requireLease(ctx, op, false); err != nil {
		return ID{}, err
	}
	q := *p
	if q.ID.IsZero() {
		q.ID = randomID()
	}
	q.Version = PointVersion
	b, err := json.MarshalIndent(&q, "", "  ")
	if err != nil {
		return ID{}, errs.E(op, errs.Internal, err)
	}
	if err := r.saveSealed(ctx, backend.Handle{Type: backend.Point, Name: q.ID.String()}, seal.Point, b); err != nil {
		return ID{}, err
	}
	p.ID, p.Version = q.ID, q.Version
	return q.ID, nil
}

// LoadPoint reads and authenticates one point: NotFound if it does not exist, Corrupt if it
// is damaged or renamed.
func (r *Repository) LoadPoint(ctx context.Context, id ID) (*Point, error) {
	const op = "vault.LoadPoint"
	pt, err := r.loadSealed(ctx, backend.Handle{Type: backend.Point, Name: id.String()}, seal.Point, maxPointSize)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Errorf(op, errs.NotFound, "point %s does not exist", id).WithHint("list points with 'rewind points'")
	}
	if err != nil {
		return nil, err
	}
	p, err := DecodePoint(id.String(), pt)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, err)
	}
	return p, nil
}

// Points returns every point, sorted by time (then ID). A point that cannot be read is an
// error naming it, never skipped.
func (r *Repository) Points(ctx context.Context) ([]*Point, error) {
	const op = "vault.Points"
	infos, err := listNames(ctx, r.be, backend.Point)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("listing points: %w", err))
	}
	out := make([]*Point, 0, len(infos))
	for _, fi := range infos {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil, errs.Errorf(op, errs.Corrupt, "points/%s: not a valid point name", fi.Name).
				WithHint("remove the stray file from the points/ directory")
		}
		p, err := r.LoadPoint(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// FindPoint resolves ref: "latest" (the newest point, of resource if not empty), a full ID,
// or a unique ID prefix of at least 4 hex characters.
func (r *Repository) FindPoint(ctx context.Context, ref string, resource string) (*Point, error) {
	const op = "vault.FindPoint"
	ref = strings.ToLower(strings.TrimSpace(ref))
	if ref == "latest" {
		pts, err := r.Points(ctx)
		if err != nil {
			return nil, err
		}
		for i := len(pts) - 1; i >= 0; i-- {
			if resource == "" || pts[i].Resource == resource {
				return pts[i], nil
			}
		}
		if resource != "" {
			return nil, errs.Errorf(op, errs.NotFound, "no point of resource %q", resource)
		}
		return nil, errs.Errorf(op, errs.NotFound, "the vault has no points")
	}
	if len(ref) == 2*IDSize {
		id, err := ParseID(ref)
		if err != nil {
			return nil, err
		}
		return r.LoadPoint(ctx, id)
	}
	if len(ref) < 4 || len(ref) > 2*IDSize {
		return nil, errs.Errorf(op, errs.Invalid, "point reference %q: use \"latest\", a full ID or at least 4 hex characters of one", ref)
	}
	if _, err := hex.DecodeString(ref[:len(ref)&^1]); err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "point reference %q is not hex", ref)
	}
	infos, err := listNames(ctx, r.be, backend.Point)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	var matches []string
	for _, fi := range infos {
		if strings.HasPrefix(fi.Name, ref) {
			matches = append(matches, fi.Name)
		}
	}
	switch len(matches) {
	case 0:
		return nil, errs.Errorf(op, errs.NotFound, "no point ID starts with %q", ref)
	case 1:
		id, err := ParseID(matches[0])
		if err != nil {
			return nil, errs.E(op, errs.Corrupt, err)
		}
		return r.LoadPoint(ctx, id)
	}
	return nil, errs.Errorf(op, errs.Invalid, "point reference %q is ambiguous: %s", ref, strings.Join(matches, ", ")).
		WithHint("give more characters of the ID")
}

// DeletePoint removes a point manifest. Its data stays until a prune. Callers hold an
// exclusive lock (forget).
func (r *Repository) DeletePoint(ctx context.Context, id ID) error {
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.Point, Name: id.String()}); err != nil {
		if errs.Is(err, errs.NotFound) {
			return errs.Errorf("vault.DeletePoint", errs.NotFound, "point %s does not exist", id)
		}
		return errs.E("vault.DeletePoint", errs.KindOf(err), err)
	}
	return nil
}
