package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// catalog is what the vault holds for one resource: its base backups, the LSN ranges of WAL
// per timeline, and its history files. It is built from point manifests only (no blob is
// read), except for history files, which are read on demand.
type catalog struct {
	resource string
	systemID string
	segSize  uint64
	bases    []*basePoint           // sorted by end time
	wal      map[uint32][]*walPiece // per timeline, sorted by start
	files    map[string]*vault.Point
	newest   *vault.Point // newest WAL point (parent of the next)
	hist     map[uint32][]histEntry
}

type basePoint struct {
	p           *vault.Point
	tli, endTLI uint32
	start, end  LSN
	endTime     time.Time
}

type walPiece struct {
	p          *vault.Point
	tli        uint32
	start, end LSN
	to         time.Time
}

// interval is a merged, contiguous LSN range of WAL on one timeline.
type interval struct {
	from, to LSN
	toTime   time.Time
}

// histEntry is one line of a timeline history file: timeline tli ended at switch.
type histEntry struct {
	tli       uint32
	switchLSN LSN
}

const maxLSN = LSN(math.MaxUint64)

func metaUint(p *vault.Point, key string, bits int) (uint64, error) {
	s, ok := p.Meta[key]
	if !ok {
		return 0, fmt.Errorf("point %s has no %s", p.ID.Short(), key)
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("point %s: %s %q: %v", p.ID.Short(), key, s, err)
	}
	return n, nil
}

func metaLSN(p *vault.Point, key string) (LSN, error) {
	s, ok := p.Meta[key]
	if !ok {
		return 0, fmt.Errorf("point %s has no %s", p.ID.Short(), key)
	}
	l, err := ParseLSN(s)
	if err != nil {
		return 0, fmt.Errorf("point %s: %s: %v", p.ID.Short(), key, err)
	}
	return l, nil
}

// loadCatalog reads the manifests of resource's points. Points of another system identifier
// than the newest point's are ignored (they belong to an earlier cluster of that name).
func loadCatalog(ctx context.Context, v Vault, op, resource string) (*catalog, error) {
	pts, err := v.Points(ctx)
	if err != nil {
		return nil, err
	}
	c := &catalog{resource: resource, wal: map[uint32][]*walPiece{}, files: map[string]*vault.Point{}, hist: map[uint32][]histEntry{}}
	var mine []*vault.Point
	for _, p := range pts {
		if p.Resource == resource && (p.Kind == KindBase || p.Kind == KindWAL) {
			mine = append(mine, p)
		}
	}
	for i := len(mine) - 1; i >= 0 && c.systemID == ""; i-- {
		c.systemID = mine[i].Meta[MetaSystemID]
	}
	corrupt := func(err error) error {
		return errs.E(op, errs.Corrupt, err).WithHint("the point's manifest is damaged or was not written by this plugin; run a vault check")
	}
	for _, p := range mine {
		if p.Meta[MetaSystemID] != c.systemID {
			continue
		}
		seg, err := metaUint(p, MetaSegmentSize, 64)
		if err == nil && !validSegmentSize(seg) {
			err = fmt.Errorf("point %s: invalid %s %d", p.ID.Short(), MetaSegmentSize, seg)
		}
		if err != nil {
			return nil, corrupt(err)
		}
		if c.segSize == 0 {
			c.segSize = seg
		} else if seg != c.segSize {
			return nil, corrupt(fmt.Errorf("point %s: WAL segment size %d differs from the resource's %d", p.ID.Short(), seg, c.segSize))
		}
		switch p.Kind {
		case KindBase:
			b := &basePoint{p: p}
			tli, err1 := metaUint(p, MetaTimeline, 32)
			etli, err2 := metaUint(p, MetaEndTimeline, 32)
			b.start, err = metaLSN(p, MetaStartLSN)
			if err == nil {
				b.end, err = metaLSN(p, MetaEndLSN)
			}
			if err == nil {
				b.endTime, err = time.Parse(time.RFC3339Nano, p.Meta[MetaEndTime])
			}
			if err = firstErr(err1, err2, err); err != nil {
				return nil, corrupt(err)
			}
			b.tli, b.endTLI = uint32(tli), uint32(etli)
			c.bases = append(c.bases, b)
		case KindWAL:
			if name := p.Meta[MetaFile]; name != "" {
				c.files[name] = p
				continue
			}
			w := &walPiece{p: p}
			tli, err1 := metaUint(p, MetaTimeline, 32)
			w.start, err = metaLSN(p, MetaStartLSN)
			if err == nil {
				w.end, err = metaLSN(p, MetaEndLSN)
			}
			if err == nil && w.end <= w.start {
				err = fmt.Errorf("point %s: WAL range %s-%s is empty", p.ID.Short(), w.start, w.end)
			}
			if err = firstErr(err1, err); err != nil {
				return nil, corrupt(err)
			}
			w.tli = uint32(tli)
			w.to = p.Time
			if p.Range != nil {
				w.to = p.Range.To
			}
			c.wal[w.tli] = append(c.wal[w.tli], w)
			c.newest = p
		}
	}
	sort.SliceStable(c.bases, func(i, j int) bool { return c.bases[i].endTime.Before(c.bases[j].endTime) })
	for _, ws := range c.wal {
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].start < ws[j].start })
	}
	return c, nil
}

func firstErr(es ...error) error {
	for _, e := range es {
		if e != nil {
			return e
		}
	}
	return nil
}

// checkSystem refuses a source whose system identifier or segment size differs from what
// the resource already holds.
func (c *catalog) checkSystem(op, systemID string, segSize uint64) error {
	if c.systemID != "" && c.systemID != systemID {
		return errs.Errorf(op, errs.Conflict, "resource %q holds WAL and backups of database system %s, but this cluster is system %s",
			c.resource, c.systemID, systemID).
			WithHint("a different cluster (re-initialized, or another server) needs its own resource name")
	}
	if c.segSize != 0 && c.segSize != segSize {
		return errs.Errorf(op, errs.Conflict, "resource %q uses WAL segments of %d bytes, the cluster %d", c.resource, c.segSize, segSize)
	}
	return nil
}

func (c *catalog) newestBase() *basePoint {
	if len(c.bases) == 0 {
		return nil
	}
	return c.bases[len(c.bases)-1]
}

// coverage merges the WAL pieces of timeline tli into contiguous intervals.
func (c *catalog) coverage(tli uint32) []interval {
	var out []interval
	for _, w := range c.wal[tli] {
		if n := len(out); n > 0 && w.start <= out[n-1].to {
			if w.end > out[n-1].to {
				out[n-1].to = w.end
			}
			if w.to.After(out[n-1].toTime) {
				out[n-1].toTime = w.to
			}
			continue
		}
		out = append(out, interval{from: w.start, to: w.end, toTime: w.to})
	}
	return out
}

// latestTimeline is the highest timeline the resource has WAL or a history file of.
func (c *catalog) latestTimeline() uint32 {
	var n uint32
	for tli := range c.wal {
		n = max(n, tli)
	}
	for name := range c.files {
		if tli, ok := parseHistoryName(name); ok {
			n = max(n, tli)
		}
	}
	for _, b := range c.bases {
		n = max(n, b.endTLI)
	}
	return n
}

// readFile returns the content of a stored history or backup history file.
func (c *catalog) readFile(ctx context.Context, v Vault, op, name string) ([]byte, error) {
	p, ok := c.files[name]
	if !ok {
		return nil, errs.Errorf(op, errs.NotFound, "resource %q has no file %s", c.resource, name)
	}
	t, err := loadTree(ctx, v, op, p, p.Root)
	if err != nil {
		return nil, err
	}
	for _, n := range t.Nodes {
		if string(n.Name) == name {
			return readNode(ctx, v, n)
		}
	}
	return nil, errs.Errorf(op, errs.Corrupt, "point %s: no node %s in its tree", p.ID.Short(), name)
}

// parseHistory decodes a timeline history file: lines "parentTLI<TAB>switchpoint<TAB>reason".
func parseHistory(b []byte) ([]histEntry, error) {
	var out []histEntry
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: want a timeline and a switch point", i+1)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || tli == 0 {
			return nil, fmt.Errorf("line %d: timeline %q", i+1, f[0])
		}
		sw, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if n := len(out); n > 0 && (uint32(tli) <= out[n-1].tli || sw < out[n-1].switchLSN) {
			return nil, fmt.Errorf("line %d: timelines or switch points out of order", i+1)
		}
		out = append(out, histEntry{tli: uint32(tli), switchLSN: sw})
	}
	return out, nil
}

// tlSeg is one timeline's stretch of a timeline's history: WAL of tli from begin to end.
type tlSeg struct {
	tli        uint32
	begin, end LSN
}

// path returns the timelines leading to tli, oldest first.
func (c *catalog) path(ctx context.Context, v Vault, op string, tli uint32) ([]tlSeg, error) {
	name := historyName(tli)
	if _, ok := c.files[name]; tli == 1 || !ok {
		return []tlSeg{{tli: tli, begin: 0, end: maxLSN}}, nil
	}
	h, ok := c.hist[tli]
	if !ok {
		b, err := c.readFile(ctx, v, op, name)
		if err != nil {
			return nil, err
		}
		h, err = parseHistory(b)
		if err != nil {
			return nil, errs.E(op, errs.Corrupt, fmt.Errorf("history file %s: %w", name, err))
		}
		c.hist[tli] = h
	}
	var out []tlSeg
	var begin LSN
	for _, e := range h {
		out = append(out, tlSeg{tli: e.tli, begin: begin, end: e.switchLSN})
		begin = e.switchLSN
	}
	return append(out, tlSeg{tli: tli, begin: begin, end: maxLSN}), nil
}

// Gap is WAL missing from the vault: from From (inclusive) to To (exclusive) on Timeline.
type Gap struct {
	Timeline uint32
	From, To LSN
	Segments []string // the segment files that are missing or incomplete
}

func (g Gap) String() string {
	s := strings.Join(g.Segments, ", ")
	if len(g.Segments) > 4 {
		s = fmt.Sprintf("%s, %s … %s (%d segments)", g.Segments[0], g.Segments[1], g.Segments[len(g.Segments)-1], len(g.Segments))
	}
	return fmt.Sprintf("timeline %d: WAL %s to %s missing (%s)", g.Timeline, g.From, g.To, s)
}

// Span is what one base backup can restore: any point from its end to the end of the WAL
// that follows it without a gap.
type Span struct {
	Base     *vault.Point
	From, To time.Time // restorable times: the base's end to the last WAL's server time
	FromLSN  LSN       // the base backup's end (consistent point)
	ToLSN    LSN       // the end of the continuous WAL after it
	Timeline uint32    // the timeline ToLSN is on
	// wal is the WAL a restore writes: per timeline, the stretch to copy.
	wal []tlSeg
}

// walk follows the WAL from base b along the timelines of path and returns its span and the
// first gap after it, if any.
func (c *catalog) walk(b *basePoint, path []tlSeg) (Span, *Gap, bool) {
	idx := -1
	for i, e := range path {
		if e.tli == b.endTLI && e.begin <= b.end && b.end < e.end {
			idx = i
			break
		}
	}
	if idx < 0 {
		return Span{}, nil, false
	}
	sp := Span{Base: b.p, From: b.endTime, To: b.endTime, FromLSN: b.end, ToLSN: b.end, Timeline: b.endTLI}
	pos := b.end
	for i := idx; i < len(path); i++ {
		e := path[i]
		need := segStart(pos, c.segSize)
		ivs := c.coverage(e.tli)
		var iv *interval
		for k := range ivs {
			// Usable only if it reaches past what the base (or the previous timeline)
			// already provides.
			if ivs[k].from <= need && ivs[k].to > pos {
				iv = &ivs[k]
				break
			}
		}
		gapFrom := pos
		if iv != nil {
			to := min(iv.to, e.end)
			if to > sp.ToLSN || i > idx {
				sp.ToLSN, sp.Timeline = to, e.tli
			}
			if iv.toTime.After(sp.To) {
				sp.To = iv.toTime
			}
			sp.wal = append(sp.wal, tlSeg{tli: e.tli, begin: need, end: to})
			if e.end != maxLSN && iv.to >= e.end {
				pos = e.end
				continue
			}
			gapFrom = iv.to
		}
		gapTo := LSN(0)
		for _, nx := range ivs {
			if nx.from > gapFrom && nx.from < e.end {
				gapTo = nx.from
				break
			}
		}
		if gapTo == 0 && e.end != maxLSN {
			gapTo = e.end
		}
		if gapTo > gapFrom {
			return sp, c.gap(e.tli, gapFrom, gapTo), true
		}
		return sp, nil, true
	}
	return sp, nil, true
}

func (c *catalog) gap(tli uint32, from, to LSN) *Gap {
	g := &Gap{Timeline: tli, From: from, To: to}
	for s := segStart(from, c.segSize); s < to; s += LSN(c.segSize) {
		g.Segments = append(g.Segments, SegmentName(tli, s, c.segSize))
	}
	return g
}

// spans computes the span of every base backup and the gaps found.
func (c *catalog) spans(ctx context.Context, v Vault, op string) ([]Span, []Gap, error) {
	latest, err := c.path(ctx, v, op, c.latestTimeline())
	if err != nil {
		return nil, nil, err
	}
	var spans []Span
	var gaps []Gap
	seen := map[string]bool{}
	for _, b := range c.bases {
		sp, g, ok := c.walk(b, latest)
		if !ok {
			own, err := c.path(ctx, v, op, b.endTLI)
			if err != nil {
				return nil, nil, err
			}
			sp, g, _ = c.walk(b, own)
		}
		spans = append(spans, sp)
		if g != nil {
			k := fmt.Sprint(g.Timeline, g.From, g.To)
			if !seen[k] {
				seen[k] = true
				gaps = append(gaps, *g)
			}
		}
	}
	return spans, gaps, nil
}

// segment assembles WAL segment (tli, start) from every piece that holds part of it. It
// returns the segment's bytes (zeros where nothing is stored) and the length of the prefix
// that is stored without a hole.
func (c *catalog) segment(ctx context.Context, v Vault, op string, tli uint32, start LSN) ([]byte, uint64, []interval, error) {
	end := start + LSN(c.segSize)
	name := SegmentName(tli, start, c.segSize)
	var buf []byte
	var have []interval
	for _, w := range c.wal[tli] {
		if w.end <= start || w.start >= end {
			continue
		}
		t, err := loadTree(ctx, v, op, w.p, w.p.Root)
		if err != nil {
			return nil, 0, nil, err
		}
		var node *vault.Node
		for _, n := range t.Nodes {
			if string(n.Name) == name {
				node = n
			}
		}
		lo, hi := max(w.start, start), min(w.end, end)
		if node == nil || node.Size != uint64(hi-lo) {
			return nil, 0, nil, errs.Errorf(op, errs.Corrupt, "point %s covers %s-%s but holds no %d bytes of segment %s",
				w.p.ID.Short(), w.start, w.end, hi-lo, name).WithHint("run a vault check")
		}
		data, err := readNode(ctx, v, node)
		if err != nil {
			return nil, 0, nil, err
		}
		if buf == nil {
			buf = make([]byte, c.segSize)
		}
		off := uint64(lo - start)
		// Overlapping pieces (a streamed and an archived copy) must agree.
		for _, h := range have {
			a, b := max(h.from, lo), min(h.to, hi)
			if a < b && !bytes.Equal(buf[a-start:b-start], data[a-lo:b-lo]) {
				return nil, 0, nil, errs.Errorf(op, errs.Corrupt, "segment %s: stored copies differ between %s and %s", name, a, b).
					WithHint("two different WAL histories were stored under one resource and timeline; run a vault check")
			}
		}
		copy(buf[off:], data)
		have = mergeInterval(have, interval{from: lo, to: hi})
	}
	var prefix uint64
	if len(have) > 0 && have[0].from == start {
		prefix = uint64(have[0].to - start)
	}
	return buf, prefix, have, nil
}

func mergeInterval(ivs []interval, n interval) []interval {
	ivs = append(ivs, n)
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].from < ivs[j].from })
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		if iv.from <= last.to {
			last.to = max(last.to, iv.to)
			continue
		}
		out = append(out, iv)
	}
	return out
}
