package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Defaults of StreamOptions.
const (
	DefaultPollEvery        = 100 * time.Millisecond
	DefaultFlushEvery       = time.Second
	DefaultIdleEvery        = time.Minute
	DefaultCheckpointFrames = 1000
	DefaultCheckpointEvery  = time.Minute
	DefaultMaxBatch         = 64 << 20 // bytes of frames per sqlite-wal point
)

// StreamOptions configures a Streamer. Zero fields take the defaults above.
type StreamOptions struct {
	Resource string            // the points' resource (default "sqlite:" + absolute path)
	Host     string            // the points' host (default os.Hostname)
	Tags     map[string]string // the points' tags
	// PollEvery is how often Stream reads the WAL for new commits.
	PollEvery time.Duration
	// FlushEvery is the least time between two sqlite-wal points: new commits are stored at
	// once when the last point is older, else at the first poll after it is.
	FlushEvery time.Duration
	// IdleEvery: when no commit arrived for this long, a point without frames extends the
	// restorable range.
	IdleEvery time.Duration
	// CheckpointFrames and CheckpointEvery trigger Rewind's own checkpoint: when the shipped
	// part of the WAL holds this many frames, or this long after the last one.
	CheckpointFrames int
	CheckpointEvery  time.Duration
	// SnapshotEvery starts a new chain with a fresh snapshot this long after the chain's
	// snapshot (0: never; a chain that cannot continue always gets one).
	SnapshotEvery time.Duration
	// MaxBatch bounds the bytes of frames held in memory before they are stored.
	MaxBatch    int
	BusyTimeout time.Duration    // wait for the application's locks (default DefaultBusyTimeout)
	Now         func() time.Time // clock (default time.Now)
	// OnFlush, when set, is called after each sqlite-wal point is saved, with the point.
	OnFlush func(*vault.Point)
}

func (o *StreamOptions) defaults() {
	if o.PollEvery <= 0 {
		o.PollEvery = DefaultPollEvery
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.IdleEvery <= 0 {
		o.IdleEvery = DefaultIdleEvery
	}
	if o.CheckpointFrames <= 0 {
		o.CheckpointFrames = DefaultCheckpointFrames
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Streamer ships the committed WAL frames of one database into a vault. It is used by one
// goroutine: Stream drives it, tests call Tick. While open it holds a read transaction on
// the database so that no checkpoint can overwrite frames it has not shipped.
type Streamer struct {
	op   string
	v    Vault
	h    *handle
	opts StreamOptions
	pi   pointInfo

	pos         position  // shipped so far
	chain       vault.ID  // the chain's snapshot
	parent      vault.ID  // the last point of the chain
	seq         int       // seq of the last sqlite-wal point
	snapTime    time.Time // when the chain's snapshot was pinned
	coveredFrom time.Time // start of the span not yet in a point
	lastTick    time.Time // last time the WAL was read completely
	lastFlush   time.Time
	lastCkpt    time.Time
	ckptFrame   uint32 // WAL frames at the last checkpoint (of the current generation)

	// readerAt is the position the held read transaction was started at, everything up to it
	// shipped; readerMark0 says SQLite had backfilled every frame then, so that the reader
	// reads the database file only. Only then may SQLite restart the WAL while it is held,
	// and only while no frame was appended since (see legitRestart).
	readerAt    position
	readerMark0 bool
	// page1 is page 1 of the state at pos (nil: not known), to check against SQLite's.
	page1 []byte
	// reopen says the connections see a -wal file that was replaced: they must be closed
	// and opened again before the next snapshot.
	reopen bool

	pendStart position
	pending   []commit
	pendTimes []time.Time
	pendBytes int

	// Stats counts what the Streamer did (for tests and metrics).
	Stats StreamStats
}

// StreamStats counts a Streamer's work.
type StreamStats struct {
	Commits     uint64 // transactions shipped
	Points      uint64 // sqlite-wal points written
	Snapshots   uint64 // sqlite-snapshot points written
	Checkpoints uint64 // checkpoints Rewind ran
	Resumed     bool   // the Streamer continued an existing chain
}

// OpenStream opens the database at path for continuous protection. It continues the chain of
// the newest point of the resource when the WAL still holds that point's position (same
// generation, same checksum), and otherwise stores a new snapshot first.
//
// Errors: those of Snapshot, and errs.Corrupt when the newest point's Meta is unreadable.
func OpenStream(ctx context.Context, v Vault, path string, opts StreamOptions) (*Streamer, error) {
	const op = "sqlite.Stream"
	opts.defaults()
	abs, err := absPath(op, path)
	if err != nil {
		return nil, err
	}
	h, err := openHandle(ctx, op, abs, opts.BusyTimeout)
	if err != nil {
		return nil, err
	}
	res := opts.Resource
	if res == "" {
		res = resourceFor(abs)
	}
	s := &Streamer{op: op, v: v, h: h, opts: opts,
		pi: pointInfo{resource: res, host: hostname(opts.Host), path: abs, tags: opts.Tags, now: opts.Now}}
	if err := s.start(ctx); err != nil {
		h.close()
		return nil, err
	}
	return s, nil
}

// Close releases the database. Commits not yet stored in a point are not stored: the next
// Streamer ships them again (stamped with its own time) if the WAL still holds them.
func (s *Streamer) Close() error { return s.h.close() }

func (s *Streamer) now() time.Time { return s.opts.Now().UTC() }

func (s *Streamer) start(ctx context.Context) error {
	last, err := s.lastPoint(ctx)
	if err != nil {
		return err
	}
	if last != nil {
		pos, err := positionFromMeta(last.Meta)
		if err != nil {
			return errs.E(s.op, errs.Corrupt, fmt.Errorf("point %s: %w", last.ID.Short(), err))
		}
		ok, err := s.resume(ctx, last, pos)
		if err != nil || ok {
			return err
		}
	}
	return s.snapshot(ctx, false)
}

// lastPoint returns the newest point of the resource and, for a sqlite-wal point, sets the
// chain fields from it.
func (s *Streamer) lastPoint(ctx context.Context) (*vault.Point, error) {
	pts, err := s.v.Points(ctx)
	if err != nil {
		return nil, err
	}
	var last *vault.Point
	for _, p := range pts {
		if p.Resource == s.pi.resource && (p.Kind == KindSnapshot || p.Kind == KindWAL) {
			last = p
		}
	}
	if last == nil {
		return nil, nil
	}
	switch last.Kind {
	case KindSnapshot:
		s.chain, s.seq, s.snapTime = last.ID, 0, last.Time
	case KindWAL:
		id, err := vault.ParseID(last.Meta[MetaSnapshot])
		seq, err2 := strconv.Atoi(last.Meta[MetaSeq])
		if err != nil || err2 != nil {
			return nil, errs.Errorf(s.op, errs.Corrupt, "point %s: bad %q or %q meta", last.ID.Short(), MetaSnapshot, MetaSeq)
		}
		s.chain, s.seq = id, seq
		for _, p := range pts {
			if p.ID == id {
				s.snapTime = p.Time
			}
		}
	}
	s.parent = last.ID
	return last, nil
}

// resume continues the chain ending at pos if the WAL still holds it.
func (s *Streamer) resume(ctx context.Context, last *vault.Point, pos position) (bool, error) {
	if !pos.HasHeader {
		return false, nil
	}
	unlock, err := s.h.lockWrites(ctx)
	if err != nil {
		return false, errs.E(s.op, errs.Unavailable, fmt.Errorf("database %s: %w", s.h.path, err))
	}
	defer unlock()
	hdr, err := s.h.header()
	if err != nil || !pos.sameGeneration(hdr) || hdr.PageSize != pos.PageSize {
		return false, nil
	}
	got, err := s.h.scan(pos.Frame)
	if err != nil {
		return false, errs.E(s.op, errs.Unavailable, err)
	}
	if got.Frame != pos.Frame || got.Sum != pos.Sum {
		return false, nil
	}
	if err := s.h.acquireReader(ctx); err != nil {
		return false, errs.E(s.op, errs.Unavailable, err)
	}
	now := s.now()
	s.pos, s.page1 = pos, nil
	s.readerAt, s.readerMark0 = pos, false
	s.coveredFrom, s.lastTick, s.lastCkpt = now, now, now
	// Commits made while nothing followed the database are read while the write lock is
	// still held: once it is released the WAL could restart over them.
	if err := s.ship(ctx, now); err != nil {
		if errors.Is(err, errBroken) {
			return false, nil
		}
		return false, err
	}
	s.readerAt = s.pos
	s.Stats.Resumed = true
	return true, nil
}

// snapshot starts a new chain with a snapshot. With shipFirst, the current chain's commits
// are shipped and stored first (a periodic snapshot); else the chain ends where it is.
func (s *Streamer) snapshot(ctx context.Context, shipFirst bool) error {
	if s.reopen {
		// The connections' view of the WAL is stale (their -wal file is gone): only new
		// connections see the database as it is.
		s.h.close()
		h, err := openHandle(ctx, s.op, s.pi.path, s.opts.BusyTimeout)
		if err != nil {
			return err
		}
		s.h, s.reopen = h, false
		shipFirst = false
	}
	unlock, err := s.h.lockWrites(ctx)
	if err != nil {
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("database %s: %w", s.h.path, err)).WithHint("the application may hold a long write transaction")
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	if shipFirst {
		if err := s.ship(ctx, s.now()); err != nil && !errors.Is(err, errBroken) {
			return err
		}
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	pos, err := s.h.pinLocked(ctx)
	if err != nil {
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("database %s: %w", s.h.path, err))
	}
	pinned := s.now()
	unlock()
	locked = false
	p, page1, err := saveSnapshot(ctx, s.op, s.v, s.h, pos, pinned, s.pi)
	if err != nil {
		return err
	}
	s.Stats.Snapshots++
	s.pos, s.page1 = pos, page1
	// With no committed frame in the WAL, SQLite gave the reader read mark 0.
	s.readerAt, s.readerMark0 = pos, pos.Frame == 0
	s.chain, s.parent, s.seq, s.snapTime = p.ID, p.ID, 0, pinned
	s.coveredFrom, s.lastTick, s.lastFlush, s.lastCkpt, s.ckptFrame = pinned, pinned, pinned, pinned, 0
	s.pending, s.pendTimes, s.pendBytes = nil, nil, 0
	return nil
}

// errBroken says the WAL moved on in a way that cannot be proven continuous with what was
// shipped: the chain ends and a new snapshot is needed.
var errBroken = errors.New("WAL chain broken")

// legitRestart says whether SQLite may have restarted (or truncated) the WAL since pos
// without losing a frame Rewind has not shipped. SQLite restarts the WAL only when every
// frame was backfilled into the database and no reader uses a read mark other than 0; it
// backfills no frame while a reader holds read mark 0. So with Rewind's reader on read mark
// 0 a restart can only come before any frame is appended after the reader's start, all of
// them shipped; with Rewind's reader on another mark, not at all.
func (s *Streamer) legitRestart() bool {
	return s.readerMark0 && s.pos == s.readerAt
}

// ship reads new complete commits from the WAL into the pending batch, stamped now. It
// returns errBroken when the WAL moved in a way that may have lost commits.
func (s *Streamer) ship(ctx context.Context, now time.Time) error {
	if s.reopen {
		return errBroken
	}
	if err := s.h.walReplaced(); err != nil {
		if errors.Is(err, errWALReplaced) {
			s.reopen = true
			return fmt.Errorf("%w: %w", errBroken, err)
		}
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("WAL of %s: %w", s.h.path, err))
	}
	hdr, err := s.h.header()
	if errors.Is(err, errNoWAL) {
		// Empty (truncated by a checkpoint) or being initialised: after a restart the next
		// writer writes a header.
		if s.pos.HasHeader && !s.legitRestart() {
			return fmt.Errorf("%w: the WAL was emptied with frames Rewind had not pinned", errBroken)
		}
		s.lastTick = now
		return nil
	}
	if err != nil {
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("WAL of %s: %w", s.h.path, err))
	}
	if !s.pos.sameGeneration(hdr) {
		// A new generation: continuous with what was shipped only if SQLite could restart
		// the WAL without losing a frame. (Its checkpoint sequence number proves nothing:
		// each connection writes its own count, a new process starts from zero.)
		if !s.legitRestart() || hdr.PageSize != s.pos.PageSize || s.pos.HasHeader && hdr.BigEndian != s.pos.BigEndian {
			return fmt.Errorf("%w: the WAL restarted after frames Rewind shipped past its read transaction", errBroken)
		}
		if len(s.pending) > 0 {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
		s.pos = startOf(hdr, s.pos.DBPages)
		s.ckptFrame = 0
	}
	for {
		r := s.h.walFrom(frameAt(s.pos.Frame+1, s.pos.PageSize))
		cs, end, err := readCommits(r, s.pos, s.opts.MaxBatch-s.pendBytes)
		if err != nil {
			return errs.E(s.op, errs.Unavailable, fmt.Errorf("WAL of %s: %w", s.h.path, err))
		}
		if len(cs) > 0 && len(s.pending) == 0 {
			s.pendStart = s.pos
		}
		for _, c := range cs {
			s.pending = append(s.pending, c)
			s.pendTimes = append(s.pendTimes, now)
			s.pendBytes += len(c.Frames)
			s.trackPage1(c)
		}
		s.Stats.Commits += uint64(len(cs))
		s.pos = end
		if s.pendBytes < s.opts.MaxBatch || len(cs) == 0 {
			break
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	s.lastTick = now
	return nil
}

// trackPage1 keeps page1 equal to page 1 after commit c.
func (s *Streamer) trackPage1(c commit) {
	fsz := walFrameHeaderSize + int(s.pos.PageSize)
	for off := 0; off+fsz <= len(c.Frames); off += fsz {
		if binary.BigEndian.Uint32(c.Frames[off:]) == 1 {
			s.page1 = append(s.page1[:0], c.Frames[off+walFrameHeaderSize:off+fsz]...)
		}
	}
}

// verifyPinned compares the state the reader pins, which must be everything Rewind shipped,
// with the chain: same size and, when known, same page 1 (its header changes with the
// database's size, schema and free pages). A difference means commits bypassed Rewind.
func (s *Streamer) verifyPinned(ctx context.Context) error {
	pages, page1, err := s.h.pinned(ctx)
	if err != nil {
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("database %s: %w", s.h.path, err))
	}
	if pages != s.pos.DBPages {
		return fmt.Errorf("%w: SQLite sees %d pages, the chain %d", errBroken, pages, s.pos.DBPages)
	}
	if s.page1 != nil && !bytes.Equal(page1, s.page1) {
		return fmt.Errorf("%w: page 1 differs from the chain's", errBroken)
	}
	return nil
}

// flush stores the pending commits (or, with none, the covered time) as a sqlite-wal point
// reaching to the last complete read of the WAL.
func (s *Streamer) flush(ctx context.Context) error {
	if len(s.pending) == 0 && !s.lastTick.After(s.coveredFrom) {
		return nil
	}
	start := s.pendStart
	if len(s.pending) == 0 {
		start = s.pos
	}
	seg := encodeSegment(start, s.pending, s.pendTimes)
	res, err := files.BackupStream(ctx, s.v, bytes.NewReader(seg), segmentFile, files.BackupOptions{Now: func() time.Time { return s.lastTick }})
	if err != nil {
		return err
	}
	if err := s.v.Flush(ctx); err != nil {
		return err
	}
	end := s.pos
	parent := s.parent
	meta := end.meta(nil)
	meta[MetaSnapshot] = s.chain.String()
	meta[MetaSeq] = strconv.Itoa(s.seq + 1)
	meta[MetaCommits] = strconv.Itoa(len(s.pending))
	p := &vault.Point{
		Kind: KindWAL, Time: s.lastTick, Host: s.pi.host, Resource: s.pi.resource,
		Paths: []string{s.pi.path}, Tags: s.pi.tags, Parent: &parent, Root: res.Root,
		Summary: vault.Summary{Files: 1, Bytes: uint64(len(seg)), BlobsAdded: res.Summary.NewBlobs, BytesAdded: res.Summary.NewBytes},
		Range:   &vault.TimeRange{From: s.coveredFrom, To: s.lastTick},
		Meta:    meta,
	}
	id, err := s.v.SavePoint(ctx, p)
	if err != nil {
		return err
	}
	s.Stats.Points++
	s.parent, s.seq = id, s.seq+1
	s.coveredFrom, s.lastFlush = s.lastTick, s.lastTick
	s.pending, s.pendTimes, s.pendBytes = nil, nil, 0
	if s.opts.OnFlush != nil {
		p.ID = id
		s.opts.OnFlush(p)
	}
	return nil
}

// Tick reads the WAL once: new commits join the pending batch, which is stored when
// FlushEvery has passed since the last point; an idle database gets an empty point every
// IdleEvery; Rewind checkpoints when due and starts a new chain when the WAL cannot be
// followed or SnapshotEvery has passed.
//
// Errors: errs.Unavailable (the database or its WAL cannot be read or locked; retryable)
// and the vault's kinds. Safe to call again after an error.
func (s *Streamer) Tick(ctx context.Context) error {
	now := s.now()
	if err := s.ship(ctx, now); err != nil {
		if !errors.Is(err, errBroken) {
			return err
		}
		return s.snapshot(ctx, false)
	}
	if s.opts.SnapshotEvery > 0 && now.Sub(s.snapTime) >= s.opts.SnapshotEvery {
		return s.snapshot(ctx, true)
	}
	if s.pos.Frame-min(s.ckptFrame, s.pos.Frame) >= uint32(s.opts.CheckpointFrames) || now.Sub(s.lastCkpt) >= s.opts.CheckpointEvery {
		return s.Checkpoint(ctx)
	}
	if len(s.pending) > 0 && now.Sub(s.lastFlush) >= s.opts.FlushEvery ||
		len(s.pending) == 0 && now.Sub(s.coveredFrom) >= s.opts.IdleEvery {
		return s.flush(ctx)
	}
	return nil
}

// Flush stores the pending commits now (see Tick). Errors: the vault's kinds.
func (s *Streamer) Flush(ctx context.Context) error { return s.flush(ctx) }

// Checkpoint ships and stores every commit while holding the write lock, then runs a PASSIVE
// checkpoint: with every frame shipped and backfilled, the application's next write restarts
// the WAL from its beginning, so the WAL stops growing. If SQLite reports another frame count
// than Rewind read, the chain cannot be trusted and a new snapshot starts a new one. If the
// application holds its write lock beyond the busy timeout the checkpoint is skipped until
// the next one is due.
//
// Errors: errs.Unavailable and the vault's kinds.
func (s *Streamer) Checkpoint(ctx context.Context) error {
	if s.reopen {
		return s.snapshot(ctx, false)
	}
	s.lastCkpt = s.now()
	s.ckptFrame = s.pos.Frame
	unlock, err := s.h.lockWrites(ctx)
	if err != nil {
		return nil // busy: retried when the next checkpoint is due
	}
	// The clock is read once the lock is held: commits made while waiting for it are dated
	// when they were seen, never earlier.
	now := s.now()
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	if err := s.ship(ctx, now); err != nil {
		if !errors.Is(err, errBroken) {
			return err
		}
		unlock()
		locked = false
		return s.snapshot(ctx, false)
	}
	if len(s.pending) > 0 {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	s.ckptFrame = s.pos.Frame
	hdr, herr := s.h.header()
	s.h.releaseReader()
	var busy, logFrames, done int64
	cerr := s.h.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
	if err := s.h.acquireReader(ctx); err != nil {
		// No read transaction until the next one: a restart of the WAL can no longer be
		// told from a loss, so any restart starts a new chain.
		s.readerMark0 = false
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("database %s: %w", s.h.path, err))
	}
	// The new reader starts where everything is shipped (the write lock is held); it reads
	// the database file only if the checkpoint backfilled every frame.
	s.readerAt, s.readerMark0 = s.pos, cerr == nil && done == logFrames
	if cerr != nil {
		return errs.E(s.op, errs.Unavailable, fmt.Errorf("checkpoint of %s: %w", s.h.path, cerr))
	}
	s.Stats.Checkpoints++
	want := int64(0)
	if herr == nil && s.pos.sameGeneration(hdr) {
		want = int64(s.pos.Frame)
	}
	if logFrames != want {
		unlock()
		locked = false
		return s.snapshot(ctx, false)
	}
	if err := s.verifyPinned(ctx); err != nil {
		if !errors.Is(err, errBroken) {
			return err
		}
		unlock()
		locked = false
		return s.snapshot(ctx, false)
	}
	return nil
}

// Stream protects the database at path until ctx ends: OpenStream, then Tick every
// PollEvery. When ctx ends it stores the pending commits and returns nil. Errors: those of
// OpenStream and Tick (Stream stops at the first one; the caller may start it again and the
// chain continues).
func Stream(ctx context.Context, v Vault, path string, opts StreamOptions) error {
	s, err := OpenStream(ctx, v, path, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	t := time.NewTicker(s.opts.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := s.ship(fctx, s.now()); err != nil && !errors.Is(err, errBroken) {
				return err
			}
			return s.flush(fctx)
		case <-t.C:
			if err := s.Tick(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				return err
			}
		}
	}
}

// sortPoints orders points by time, then ID.
func sortPoints(ps []*vault.Point) {
	sort.Slice(ps, func(i, j int) bool {
		if !ps[i].Time.Equal(ps[j].Time) {
			return ps[i].Time.Before(ps[j].Time)
		}
		return ps[i].ID.String() < ps[j].ID.String()
	})
}
