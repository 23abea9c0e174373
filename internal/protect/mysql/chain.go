package mysql

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Span is what one backup can restore to: its snapshot, then the stored binlog that
// follows it without a hole.
type Span struct {
	Base      *vault.Point // the mysql-dump or mysql-physical point
	From, To  time.Time    // restorable times, inclusive (server clock)
	StartFile string       // the base's binlog position
	StartPos  uint64
	EndFile   string // where the contiguous stored binlog ends (exclusive)
	EndPos    uint64
	Gap       *Gap // the first hole after the span when stored binlog continues later; else nil

	files []chainFile // the binlog files from StartFile to EndFile, with their pieces
}

// Gap is a hole in the stored binlog of a resource.
type Gap struct {
	File string // stored binlog stops here
	Pos  uint64
	// NextFile:NextPos is where the next stored binlog of the resource starts.
	NextFile string
	NextPos  uint64
}

func (g Gap) String() string {
	return fmt.Sprintf("binlog missing from %s:%d to %s:%d", g.File, g.Pos, g.NextFile, g.NextPos)
}

func (s Span) String() string {
	return fmt.Sprintf("%s … %s (point %s, binlog %s:%d … %s:%d)", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339),
		s.Base.ID.Short(), s.StartFile, s.StartPos, s.EndFile, s.EndPos)
}

// piece is a mysql-binlog point decoded.
type piece struct {
	p          *vault.Point
	file       string
	start, end uint64
	next       string
}

// chainFile is one binlog file of a span and the pieces that make it, in order from 0.
type chainFile struct {
	name   string
	end    uint64 // bytes from 0 covered by pieces
	pieces []piece
}

// catalog is a resource's points, decoded.
type catalog struct {
	bases  []*vault.Point     // oldest first
	pieces map[string][]piece // by file, sorted by start
	newest *piece             // the piece that ends furthest
}

func loadCatalog(ctx context.Context, v Vault, op, resource string) (*catalog, error) {
	points, err := v.Points(ctx)
	if err != nil {
		return nil, err
	}
	c := &catalog{pieces: map[string][]piece{}}
	for _, p := range points {
		if p.Resource != resource {
			continue
		}
		switch p.Kind {
		case KindDump, KindPhysical:
			if _, err := metaUint(p, MetaBinlogPos); err != nil || !validFileName(p.Meta[MetaBinlogFile]) {
				return nil, errs.Errorf(op, errs.Corrupt, "point %s (%s): no valid binlog position in its meta", p.ID.Short(), p.Kind)
			}
			c.bases = append(c.bases, p)
		case KindBinlog:
			pc, err := decodePiece(p)
			if err != nil {
				return nil, errs.E(op, errs.Corrupt, err)
			}
			c.pieces[pc.file] = append(c.pieces[pc.file], pc)
			if c.newest == nil || comparePos(pc.file, pc.end, c.newest.file, c.newest.end) > 0 {
				pcc := pc
				c.newest = &pcc
			}
		}
	}
	for _, ps := range c.pieces {
		sort.Slice(ps, func(i, j int) bool { return ps[i].start < ps[j].start })
	}
	return c, nil
}

func decodePiece(p *vault.Point) (piece, error) {
	pc := piece{p: p, file: p.Meta[MetaBinlogFile], next: p.Meta[MetaNextFile]}
	var err error
	if !validFileName(pc.file) {
		return pc, fmt.Errorf("point %s (%s): meta %q = %q is not a binlog file name", p.ID.Short(), p.Kind, MetaBinlogFile, pc.file)
	}
	if pc.next != "" && !validFileName(pc.next) {
		return pc, fmt.Errorf("point %s (%s): meta %q = %q is not a binlog file name", p.ID.Short(), p.Kind, MetaNextFile, pc.next)
	}
	if pc.start, err = metaUint(p, MetaStartPos); err != nil {
		return pc, err
	}
	if pc.end, err = metaUint(p, MetaEndPos); err != nil {
		return pc, err
	}
	if pc.end <= pc.start || p.Range == nil {
		return pc, fmt.Errorf("point %s (%s): empty or undated range %d..%d", p.ID.Short(), p.Kind, pc.start, pc.end)
	}
	return pc, nil
}

// span follows the stored binlog from base b.
func (c *catalog) span(b *vault.Point) Span {
	pos, _ := metaUint(b, MetaBinlogPos)
	s := Span{Base: b, From: b.Range.From, To: b.Range.To, StartFile: b.Meta[MetaBinlogFile], StartPos: pos,
		EndFile: b.Meta[MetaBinlogFile], EndPos: pos}
	file := s.StartFile
	for {
		cf := chainFile{name: file}
		ended := ""
		for _, pc := range c.pieces[file] {
			if pc.start > cf.end {
				break
			}
			if pc.end <= cf.end {
				continue
			}
			cf.end = pc.end
			cf.pieces = append(cf.pieces, pc)
			if comparePos(file, pc.end, s.StartFile, s.StartPos) > 0 && pc.p.Range.To.After(s.To) {
				s.To = pc.p.Range.To
			}
			ended = pc.next
		}
		if comparePos(file, cf.end, s.EndFile, s.EndPos) > 0 {
			s.EndFile, s.EndPos = file, cf.end
		}
		if len(cf.pieces) > 0 {
			s.files = append(s.files, cf)
		}
		if ended == "" || len(c.pieces[ended]) == 0 || c.pieces[ended][0].start != 0 {
			s.Gap = c.gapAfter(file, cf.end)
			break
		}
		file = ended
	}
	// Without the base's file from its start, no binlog can be replayed.
	if len(s.files) == 0 || s.files[0].name != s.StartFile || comparePos(s.EndFile, s.EndPos, s.StartFile, s.StartPos) <= 0 {
		s.files, s.EndFile, s.EndPos, s.To = nil, s.StartFile, s.StartPos, b.Range.To
	}
	return s
}

// gapAfter returns the hole after file:pos if some stored binlog starts later.
func (c *catalog) gapAfter(file string, pos uint64) *Gap {
	var next *piece
	for _, ps := range c.pieces {
		for i := range ps {
			pc := ps[i]
			if comparePos(pc.file, pc.start, file, pos) <= 0 {
				continue
			}
			if next == nil || comparePos(pc.file, pc.start, next.file, next.start) < 0 {
				next = &pc
			}
		}
	}
	if next == nil {
		return nil
	}
	return &Gap{File: file, Pos: pos, NextFile: next.file, NextPos: next.start}
}

// Range returns the restorable spans of resource, one per backup, oldest backup first.
// Spans may overlap (a newer backup inside an older one's span) and leave holes between
// them (Span.Gap names the first hole after each).
//
// Errors: errs.NotFound (no backup of resource), errs.Corrupt (a point's meta is damaged),
// and the vault's errors.
func Range(ctx context.Context, v Vault, resource string) ([]Span, error) {
	const op = "mysql.Range"
	c, err := loadCatalog(ctx, v, op, resource)
	if err != nil {
		return nil, err
	}
	if len(c.bases) == 0 {
		return nil, errs.Errorf(op, errs.NotFound, "no MySQL backup of resource %q in the vault", resource).
			WithHint("take one with 'rewind backup' (list resources with 'rewind points')")
	}
	out := make([]Span, 0, len(c.bases))
	for _, b := range c.bases {
		out = append(out, c.span(b))
	}
	return out, nil
}
