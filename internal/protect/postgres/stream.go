package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// StreamOptions configures Stream.
type StreamOptions struct {
	Resource string            // required
	Slot     string            // physical replication slot (default "rewind_<resource>", sanitized)
	Host     string            // recorded in points (default: the source's address)
	Tags     map[string]string // recorded in points
	// FlushEvery is how often received WAL is stored as a point (default 1s): the RPO.
	FlushEvery time.Duration
	// StatusEvery is how often a standby status update is sent even without new WAL
	// (default 10s; keep it below the server's wal_sender_timeout).
	StatusEvery time.Duration
	Now         func() time.Time // clock (default time.Now)
	// OnFlush, when set, is called after each point is saved, with the point.
	OnFlush func(*vault.Point)
}

// DefaultSlot returns the default replication slot name for resource.
func DefaultSlot(resource string) string {
	b := []byte("rewind_")
	for _, c := range []byte(resource) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, '_')
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}

func validSlot(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Stream ships WAL continuously from the cluster at src over streaming replication from a
// physical replication slot (created if missing, reserving WAL). It starts where the vault's
// WAL for the resource ends, else at the segment of the newest base backup's start, else at
// the segment of the server's current position. Every FlushEvery the bytes received are
// stored as a KindWAL point (one file node per segment touched; timeline, start and end
// LSN, system identifier and segment size in Meta; Range = the server times of the data),
// after Flush; only then does the standby status update confirm that position as flushed, so
// the slot keeps every byte the vault does not hold yet. On a timeline switch it stores the
// new timeline's history file and continues on that timeline from the start of the segment
// holding the switch point. Stream returns nil when ctx ends, after storing what it
// received, or an error.
//
// Errors: errs.Invalid (options, URL), errs.Unauthorized, errs.Conflict (another cluster's
// WAL under this resource, or the slot in use), errs.NotFound (the server no longer has the
// WAL where the vault's ends: a gap; take a new base backup), errs.Corrupt (the server sent
// WAL out of order), errs.Unavailable, and the vault's errors.
func Stream(ctx context.Context, v Vault, src string, opts StreamOptions) error {
	const op = "postgres.Stream"
	if opts.Resource == "" {
		return errs.Errorf(op, errs.Invalid, "no resource name").WithHint("name the resource with --resource")
	}
	if opts.Slot == "" {
		opts.Slot = DefaultSlot(opts.Resource)
	}
	if !validSlot(opts.Slot) {
		return errs.Errorf(op, errs.Invalid, "replication slot name %q: use 1 to 63 lower-case letters, digits and '_'", opts.Slot)
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = time.Second
	}
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cat, err := loadCatalog(ctx, v, op, opts.Resource)
	if err != nil {
		return err
	}
	s, err := connect(ctx, op, src)
	if err != nil {
		return err
	}
	defer s.close()
	if err := cat.checkSystem(op, s.systemID, s.segSize); err != nil {
		return err
	}
	if opts.Host == "" {
		opts.Host = s.conn.Conn().RemoteAddr().String()
	}
	st := &streamer{v: v, s: s, cat: cat, opts: opts, op: op}
	if cat.newest != nil {
		id := cat.newest.ID
		st.parent = &id
	}
	st.tli, st.pos = st.startPosition()
	if err := st.createSlot(ctx); err != nil {
		return err
	}
	for {
		if err := st.saveHistory(ctx, st.tli); err != nil {
			return err
		}
		next, err := st.run(ctx)
		if err != nil || next == nil {
			return err
		}
		st.tli, st.pos = next.tli, segStart(next.pos, s.segSize)
	}
}

type streamer struct {
	op   string
	v    Vault
	s    *source
	cat  *catalog
	opts StreamOptions

	tli      uint32
	pos      LSN // next byte expected
	buf      []byte
	bufStart LSN
	from, to time.Time // server times of the buffered data
	flushed  LSN       // durable in the vault
	parent   *vault.ID
}

type switchTo struct {
	tli uint32
	pos LSN
}

func (st *streamer) startPosition() (uint32, LSN) {
	c := st.cat
	var best *walPiece
	for _, ws := range c.wal {
		for _, w := range ws {
			if best == nil || w.tli > best.tli || w.tli == best.tli && w.end > best.end {
				best = w
			}
		}
	}
	if best != nil {
		return best.tli, best.end
	}
	if b := c.newestBase(); b != nil {
		return b.tli, segStart(b.start, st.s.segSize)
	}
	return st.s.timeline, segStart(st.s.xlogPos, st.s.segSize)
}

func (st *streamer) createSlot(ctx context.Context) error {
	cmd := "CREATE_REPLICATION_SLOT " + st.opts.Slot + " PHYSICAL (RESERVE_WAL)"
	_, err := st.s.conn.Exec(ctx, cmd).ReadAll()
	var pe *pgconn.PgError
	if err == nil || errorsAs(err, &pe) && pe.Code == "42710" { // duplicate_object: it exists
		return nil
	}
	return errs.E(st.op, pgErrKind(err), fmt.Errorf("create replication slot %s: %w", st.opts.Slot, err)).
		WithHint("raise max_replication_slots on the server, or name an existing slot")
}

// saveHistory stores timeline tli's history file unless the vault has it.
func (st *streamer) saveHistory(ctx context.Context, tli uint32) error {
	name := historyName(tli)
	if tli <= 1 {
		return nil
	}
	if _, ok := st.cat.files[name]; ok {
		return nil
	}
	h, err := pglogrepl.TimelineHistory(ctx, st.s.conn, int32(tli))
	if err != nil {
		return errs.E(st.op, pgErrKind(err), fmt.Errorf("TIMELINE_HISTORY %d: %w", tli, err))
	}
	if h.FileName != name {
		return errs.Errorf(st.op, errs.Corrupt, "TIMELINE_HISTORY %d returned a file named %q", tli, h.FileName)
	}
	if _, err := parseHistory(h.Content); err != nil {
		return errs.E(st.op, errs.Corrupt, fmt.Errorf("history file %s from the server: %w", name, err))
	}
	p, err := storeFile(ctx, st.v, st.cat, name, h.Content, tli, "stream", st.opts.Resource, st.opts.Host, st.opts.Tags, st.opts.Now())
	if err != nil {
		return err
	}
	st.cat.files[name] = p
	return nil
}

// run streams one timeline from st.pos until ctx ends (nil, nil) or the timeline ends
// (the next timeline and its start).
func (st *streamer) run(ctx context.Context) (*switchTo, error) {
	conn := st.s.conn
	err := pglogrepl.StartReplication(ctx, conn, st.opts.Slot, st.pos,
		pglogrepl.StartReplicationOptions{Timeline: int32(st.tli), Mode: pglogrepl.PhysicalReplication})
	if tli, pos, ok := pglogrepl.IsErrEndTimeline(err); ok {
		// The requested timeline ended before st.pos: follow the history.
		return &switchTo{tli: uint32(tli), pos: pos}, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, errs.E(st.op, pgErrKind(err), fmt.Errorf("START_REPLICATION at %s on timeline %d: %w", st.pos, st.tli, err)).
			WithHint("if the server removed that WAL, the vault has a gap from here: take a new base backup")
	}
	st.bufStart, st.buf, st.flushed = st.pos, st.buf[:0], st.pos
	nextFlush := time.Now().Add(st.opts.FlushEvery)
	nextStatus := time.Now()
	for {
		if time.Now().After(nextFlush) {
			before := st.flushed
			if err := st.flush(ctx); err != nil {
				return nil, err
			}
			nextFlush = time.Now().Add(st.opts.FlushEvery)
			if st.flushed != before {
				// Confirm at once what the vault now holds: the server may recycle that WAL,
				// and its view of this standby's lag is the RPO actually achieved.
				if err := st.status(false); err != nil {
					return nil, err
				}
				nextStatus = time.Now().Add(st.opts.StatusEvery)
			}
		}
		if time.Now().After(nextStatus) {
			if err := st.status(false); err != nil {
				return nil, err
			}
			nextStatus = time.Now().Add(st.opts.StatusEvery)
		}
		rctx, cancel := context.WithDeadline(ctx, nextFlush)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, st.final()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return nil, errs.E(st.op, errs.Unavailable, fmt.Errorf("replication stream: %w", err))
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return nil, errs.E(st.op, errs.Corrupt, err)
				}
				if x.WALStart != st.pos {
					return nil, errs.Errorf(st.op, errs.Corrupt, "the server sent WAL from %s, expected %s", x.WALStart, st.pos)
				}
				if len(st.buf) == 0 {
					st.from = x.ServerTime.UTC()
				}
				st.to = x.ServerTime.UTC()
				st.buf = append(st.buf, x.WALData...)
				st.pos += LSN(len(x.WALData))
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return nil, errs.E(st.op, errs.Corrupt, err)
				}
				if k.ReplyRequested {
					if err := st.status(false); err != nil {
						return nil, err
					}
				}
			}
		case *pgproto3.CopyDone:
			// The server ended this timeline: store what we have, then learn the next.
			if err := st.flush(ctx); err != nil {
				return nil, err
			}
			res, err := pglogrepl.SendStandbyCopyDone(ctx, conn)
			if err != nil {
				return nil, errs.E(st.op, pgErrKind(err), fmt.Errorf("end of timeline %d: %w", st.tli, err))
			}
			if res == nil || uint32(res.Timeline) <= st.tli {
				return nil, errs.Errorf(st.op, errs.Unavailable, "the server ended timeline %d without naming the next", st.tli)
			}
			return &switchTo{tli: uint32(res.Timeline), pos: res.LSN}, nil
		case *pgproto3.ErrorResponse:
			pe := pgconnError(m)
			return nil, errs.E(st.op, pgErrKind(pe), fmt.Errorf("replication stream: %w", pe))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return nil, errs.Errorf(st.op, errs.Unavailable, "replication stream: unexpected message %T", msg)
		}
	}
}

// final stores what is buffered after ctx ended and confirms it to the server.
func (st *streamer) final() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.flush(ctx); err != nil {
		return err
	}
	_ = st.status(false) // best effort: the slot keeps the WAL until the next run confirms it
	return nil
}

// status sends a standby status update confirming what the vault holds.
func (st *streamer) status(reply bool) error {
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: st.pos, WALFlushPosition: st.flushed, WALApplyPosition: st.flushed,
		ClientTime: st.opts.Now(), ReplyRequested: reply,
	})
	if err != nil {
		return errs.E(st.op, errs.Unavailable, fmt.Errorf("standby status update: %w", err))
	}
	return nil
}

// flush stores the buffered WAL as a point, then confirms it.
func (st *streamer) flush(ctx context.Context) error {
	if len(st.buf) == 0 {
		return nil
	}
	start, end := st.bufStart, st.pos
	now := st.opts.Now()
	var add added
	var nodes []*vault.Node
	seg := LSN(st.s.segSize)
	for lo := start; lo < end; {
		hi := min(segStart(lo, st.s.segSize)+seg, end)
		name := SegmentName(st.tli, lo, st.s.segSize)
		n, err := saveStream(ctx, st.v, name, bytes.NewReader(st.buf[lo-start:hi-start]), now, &add)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		lo = hi
	}
	root, err := saveTree(ctx, st.v, nodes, &add)
	if err != nil {
		return err
	}
	if err := st.v.Flush(ctx); err != nil {
		return err
	}
	from, to := st.from, st.to
	if to.Before(from) {
		to = from
	}
	p := &vault.Point{
		Kind: KindWAL, Time: to, Host: st.opts.Host, Resource: st.opts.Resource, Tags: st.opts.Tags,
		Parent: st.parent, Root: root, Range: &vault.TimeRange{From: from, To: to},
		Summary: vault.Summary{Files: uint64(len(nodes)), Bytes: uint64(end - start), BlobsAdded: add.blobs, BytesAdded: add.bytes},
		Meta: map[string]string{
			MetaSystemID: st.s.systemID, MetaTimeline: strconv.FormatUint(uint64(st.tli), 10),
			MetaStartLSN: start.String(), MetaEndLSN: end.String(),
			MetaSegmentSize: strconv.FormatUint(st.s.segSize, 10), MetaSource: "stream",
		},
	}
	if _, err := st.v.SavePoint(ctx, p); err != nil {
		return err
	}
	id := p.ID
	st.parent = &id
	st.flushed = end
	st.bufStart = end
	st.buf = st.buf[:0]
	if st.opts.OnFlush != nil {
		st.opts.OnFlush(p)
	}
	return st.status(false)
}
