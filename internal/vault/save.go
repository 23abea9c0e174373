package vault

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/pack"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

// SaveStats are cumulative counters of what this Repository stored.
type SaveStats struct {
	BlobsAdded    uint64 // new blobs accepted by SaveBlob
	BytesAdded    uint64 // their plaintext bytes
	StoredBytes   uint64 // bytes of packs stored
	PacksUploaded uint64
}

type packJob struct {
	h     backend.Handle
	id    [32]byte
	data  []byte
	blobs []pack.Blob
	seq   uint64 // order in which packs were finished
	done  chan struct{}
}

// pendingPack is a stored pack not yet listed in an index file.
type pendingPack struct {
	index.Pack
	seq uint64
}

type packer struct {
	mu sync.Mutex
	w  *pack.Writer
}

// saver owns the packers and the upload goroutines of a Repository.
type saver struct {
	r       *Repository
	queue   chan *packJob
	packers [3]packer // indexed by BlobType (1, 2)
	bufs    sync.Pool
	scratch sync.Pool

	mu       sync.Mutex
	inflight map[index.Key]struct{}
	pending  []pendingPack // stored, not yet in an index file
	seq      uint64        // packs finished so far
	jobs     []*packJob    // queued or uploading
	err      error         // first upload error; sticky
	stats    SaveStats
	flushMu  sync.Mutex
	progMu   sync.Mutex
}

func newSaver(r *Repository) *saver {
	s := &saver{r: r, queue: make(chan *packJob), inflight: make(map[index.Key]struct{})}
	for i := 0; i < r.opts.Uploaders; i++ {
		r.wg.Add(1)
		go s.uploader()
	}
	return s
}

// close fails the jobs still queued; the uploaders have stopped (r.ctx is canceled and
// r.wg waited for).
func (s *saver) close() {
	for {
		select {
		case job := <-s.queue:
			s.finish(job, errClosed())
		default:
			return
		}
	}
}

func errClosed() error {
	return errs.Errorf("vault", errs.Invalid, "the repository is closed")
}

func (s *saver) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *saver) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// SaveBlob stores data as a blob of type t unless the vault already holds it, and returns
// its ID and whether it was added. It compresses, seals and verifies in the caller's
// goroutine; packs are uploaded in the background and an upload error is returned by a later
// SaveBlob or by Flush (the Repository then refuses further saves: reopen it). The caller may
// reuse data after return. Safe for concurrent use.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (ID, bool, error) {
	const op = "vault.SaveBlob"
	s := r.save
	if err := s.failed(); err != nil {
		return ID{}, false, err
	}
	if r.ctx.Err() != nil {
		return ID{}, false, errClosed()
	}
	if t != DataBlob && t != TreeBlob {
		return ID{}, false, errs.Errorf(op, errs.Invalid, "unknown blob type %d", t)
	}
	if len(data) > pack.MaxBlobSize {
		return ID{}, false, errs.Errorf(op, errs.Invalid, "blob of %d bytes exceeds the %d-byte cap", len(data), pack.MaxBlobSize)
	}
	if err := ctx.Err(); err != nil {
		return ID{}, false, errs.E(op, errs.Canceled, err)
	}
	id := r.blobID(data)
	k := index.Key{Type: uint8(t), ID: id}
	if r.blobIndex().Has(k.Type, k.ID) {
		return id, false, nil
	}
	s.mu.Lock()
	// Check the index again under s.mu: an upload that finished since the check above added
	// its blobs to the index before it removed them from inflight (see finish), so one of
	// the two sees k.
	if _, ok := s.inflight[k]; ok || r.blobIndex().Has(k.Type, k.ID) {
		s.mu.Unlock()
		return id, false, nil
	}
	s.inflight[k] = struct{}{}
	s.mu.Unlock()

	sealed, comp, err := r.encodeBlob(t, id, data)
	if err != nil {
		s.mu.Lock()
		delete(s.inflight, k)
		s.mu.Unlock()
		return ID{}, false, err
	}
	err = s.add(ctx, t, id, comp, len(data), sealed)
	//lint:ignore SA6002 a slice header in a Pool costs one small allocation; copying buffers would cost more
	s.scratch.Put(sealed[:0])
	if err != nil {
		s.mu.Lock()
		delete(s.inflight, k)
		s.mu.Unlock()
		return ID{}, false, err
	}
	s.mu.Lock()
	s.stats.BlobsAdded++
	s.stats.BytesAdded += uint64(len(data))
	s.mu.Unlock()
	return id, true, nil
}

// encodeBlob compresses and seals data, then verifies the sealed bytes open, decompress and
// equal data.
func (r *Repository) encodeBlob(t BlobType, id ID, data []byte) ([]byte, pack.Compression, error) {
	s := r.save
	var zbuf []byte
	if b, ok := s.scratch.Get().([]byte); ok {
		zbuf = b
	}
	stored, comp := compress(zbuf, data)
	var out []byte
	if b, ok := s.scratch.Get().([]byte); ok {
		out = b
	}
	ctx := pack.BlobContext(r.vault, uint8(t), (*[32]byte)(&id))
	sealed, err := seal.Seal(out[:0], &r.key.Enc, ctx, stored)
	if comp == pack.Zstd {
		//lint:ignore SA6002 a slice header in a Pool costs one small allocation; copying buffers would cost more
		s.scratch.Put(stored[:0])
	} else if zbuf != nil {
		//lint:ignore SA6002 a slice header in a Pool costs one small allocation; copying buffers would cost more
		s.scratch.Put(zbuf[:0])
	}
	if err != nil {
		return nil, 0, err
	}
	if r.opts.Hooks.AfterSeal != nil {
		r.opts.Hooks.AfterSeal(t, id, sealed)
	}
	if err := r.verifyBlob(ctx, sealed, comp, data); err != nil {
		return nil, 0, errs.Errorf("vault.SaveBlob", errs.Corrupt, "%v blob %s: corruption detected before upload: %v", t, id.Short(), err).
			WithHint("check this machine's memory and CPU; the corrupt blob was not stored")
	}
	return sealed, comp, nil
}

func (r *Repository) verifyBlob(ctx seal.Context, sealed []byte, comp pack.Compression, want []byte) error {
	var buf []byte
	if b, ok := r.save.scratch.Get().([]byte); ok {
		buf = b
	}
	//lint:ignore SA6002 a slice header in a Pool costs one small allocation; copying buffers would cost more
	defer func() { r.save.scratch.Put(buf[:0]) }()
	pt, err := seal.Open(buf[:0], &r.key.Enc, ctx, sealed)
	if err != nil {
		return err
	}
	buf = pt
	if comp == pack.None {
		if !bytes.Equal(pt, want) {
			return fmt.Errorf("decrypted bytes differ")
		}
		return nil
	}
	_, dec := zstdCodecs()
	var out []byte
	if b, ok := r.save.scratch.Get().([]byte); ok {
		out = b
	}
	if cap(out) < len(want) {
		out = make([]byte, 0, len(want))
	}
	//lint:ignore SA6002 a slice header in a Pool costs one small allocation; copying buffers would cost more
	defer func() { r.save.scratch.Put(out[:0]) }()
	out, err = dec.DecodeAll(pt, out[:0:len(want)])
	if err != nil {
		return err
	}
	if !bytes.Equal(out, want) {
		return fmt.Errorf("decompressed bytes differ")
	}
	return nil
}

// add appends a sealed blob to the open pack of its type, and queues the pack when full.
func (s *saver) add(ctx context.Context, t BlobType, id ID, comp pack.Compression, rawLen int, sealed []byte) error {
	p := &s.packers[t]
	p.mu.Lock()
	if p.w == nil {
		var buf []byte
		switch b, ok := s.bufs.Get().([]byte); {
		case t == TreeBlob:
			// Trees are small: a tree pack grows as needed instead of reserving a data pack's
			// buffer for a few kilobytes.
			if ok {
				s.bufs.Put(b) //lint:ignore SA6002 a slice header in a Pool costs one small allocation
			}
			buf = make([]byte, 0, 64<<10)
		case ok:
			buf = b
		default:
			buf = make([]byte, 0, s.r.cfg.PackSize+s.r.cfg.PackSize/8)
		}
		p.w = pack.NewWriter(buf)
	}
	err := p.w.Add(uint8(t), id, comp, rawLen, sealed)
	var full *pack.Writer
	if err == nil && p.w.Size() >= s.r.cfg.PackSize {
		full, p.w = p.w, nil
	}
	p.mu.Unlock()
	if err != nil {
		return errs.E("vault.SaveBlob", errs.Internal, err)
	}
	if full != nil {
		return s.enqueue(ctx, full)
	}
	return nil
}

// enqueue finishes a pack and hands it to the uploaders, blocking while the queue is full.
func (s *saver) enqueue(ctx context.Context, w *pack.Writer) error {
	r := s.r
	data, id, blobs, err := w.Finish(&r.key.Enc, r.vault)
	if err == nil {
		_, err = pack.Parse(&r.key.Enc, r.vault, data)
	}
	if err != nil {
		err = errs.E("vault.SaveBlob", errs.Corrupt, fmt.Errorf("pack: corruption detected before upload: %w", err))
		s.fail(err)
		return err
	}
	job := &packJob{h: backend.Handle{Type: backend.Pack, Name: hex.EncodeToString(id[:])}, id: id, data: data, blobs: blobs, done: make(chan struct{})}
	s.mu.Lock()
	s.seq++
	job.seq = s.seq
	s.jobs = append(s.jobs, job)
	s.mu.Unlock()
	select {
	case s.queue <- job:
		return nil
	case <-ctx.Done():
		err = errs.E("vault.SaveBlob", errs.Canceled, fmt.Errorf("pack %s discarded: %w", job.h.Name[:8], ctx.Err()))
	case <-r.ctx.Done():
		err = errClosed()
	}
	s.finish(job, err)
	return err
}

func (s *saver) uploader() {
	defer s.r.wg.Done()
	for {
		var job *packJob
		select {
		case job = <-s.queue:
		case <-s.r.ctx.Done():
			return
		}
		err := s.failed()
		if err == nil {
			err = s.upload(job)
		}
		s.finish(job, err)
		if err == nil {
			s.checkpoint()
		}
	}
}

// CheckpointPacks is how many uploaded data packs a backup accumulates before their index
// is written without waiting for Flush. A backup killed midway then leaves its uploaded
// data indexed, and the next backup reuses it instead of uploading it again.
const CheckpointPacks = 2

// checkpoint writes an index file for the uploaded data packs once there are
// CheckpointPacks of them. Only data packs are written early: tree packs wait for Flush,
// which keeps the rule that an indexed tree implies everything under it is indexed. It
// runs in an uploader goroutine and skips its turn while a Flush is running. A failed write
// leaves the packs pending, for Flush to retry.
func (s *saver) checkpoint() {
	if !s.flushMu.TryLock() {
		return
	}
	defer s.flushMu.Unlock()
	s.mu.Lock()
	var data, rest []pendingPack
	for _, p := range s.pending {
		if p.Blobs[0].Type == pack.DataBlob {
			data = append(data, p)
		} else {
			rest = append(rest, p)
		}
	}
	if len(data) < CheckpointPacks {
		s.mu.Unlock()
		return
	}
	s.pending = rest
	s.mu.Unlock()
	written := 0
	for written < len(data) {
		f := &index.File{}
		for written < len(data) && (len(f.Packs) == 0 || f.Blobs()+len(data[written].Blobs) <= index.MaxBlobsPerFile) {
			f.Packs = append(f.Packs, data[written].Pack)
			written++
		}
		if _, err := s.r.writeIndex(s.r.ctx, f); err != nil {
			s.mu.Lock()
			s.pending = append(s.pending, data[written-len(f.Packs):]...)
			s.mu.Unlock()
			return
		}
	}
}

func (s *saver) upload(job *packJob) error {
	r := s.r
	if r.opts.Hooks.BeforeUpload != nil {
		r.opts.Hooks.BeforeUpload(job.h, job.data)
	}
	if pack.ID(job.data) != job.id {
		return errs.Errorf("vault.SaveBlob", errs.Corrupt, "pack %s: corruption detected before upload (its bytes changed after it was sealed)", job.h.Name[:8]).
			WithHint("check this machine's memory; the pack was not stored")
	}
	if err := r.be.Save(r.ctx, job.h, job.data); err != nil {
		return errs.E("vault.SaveBlob", errs.KindOf(err), fmt.Errorf("storing %v: %w", job.h, err))
	}
	return nil
}

// finish records the outcome of a pack job and releases its blobs and buffer.
func (s *saver) finish(job *packJob, err error) {
	if err == nil {
		s.r.blobIndex().Add(job.id, job.blobs)
	}
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = err
	}
	if err == nil {
		s.pending = append(s.pending, pendingPack{Pack: index.Pack{ID: job.id, Blobs: job.blobs}, seq: job.seq})
		s.stats.PacksUploaded++
		s.stats.StoredBytes += uint64(len(job.data))
	}
	for _, b := range job.blobs {
		delete(s.inflight, index.Key{Type: b.Type, ID: b.ID})
	}
	stats := s.stats
	s.mu.Unlock()
	if cap(job.data) >= s.r.cfg.PackSize && cap(job.data) <= s.r.cfg.PackSize*2 {
		//lint:ignore SA6002 a slice header in a Pool costs one small allocation; copying buffers would cost more
		s.bufs.Put(job.data[:0])
	}
	job.data = nil
	if err == nil && s.r.opts.Progress != nil {
		s.progMu.Lock()
		s.r.opts.Progress(stats)
		s.progMu.Unlock()
	}
	// The job leaves s.jobs only after Progress, so a Flush returns after the last report.
	s.mu.Lock()
	for i, j := range s.jobs {
		if j == job {
			s.jobs = append(s.jobs[:i], s.jobs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	close(job.done)
}

// Stats returns cumulative counters of what this Repository stored.
func (r *Repository) Stats() SaveStats {
	r.save.mu.Lock()
	defer r.save.mu.Unlock()
	return r.save.stats
}

// Flush stores every open pack, waits for all uploads and writes the index file(s) that
// list them. After a successful Flush every blob saved before it is durable and indexed.
func (r *Repository) Flush(ctx context.Context) error {
	const op = "vault.Flush"
	s := r.save
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if r.ctx.Err() != nil {
		return errClosed()
	}
	for t := range s.packers {
		p := &s.packers[t]
		p.mu.Lock()
		w := p.w
		if w != nil && w.Count() == 0 {
			w = nil
		}
		if w != nil {
			p.w = nil
		}
		p.mu.Unlock()
		if w != nil {
			if err := s.enqueue(ctx, w); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	jobs := append([]*packJob(nil), s.jobs...)
	s.mu.Unlock()
	for _, j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return errs.E(op, errs.Canceled, ctx.Err())
		}
	}
	if err := s.failed(); err != nil {
		return err
	}
	// Index data packs first, then tree packs in the order they were finished, so that a
	// tree indexed in a written file implies everything saved before it is indexed too
	// (SavePoint relies on it even if a later index file fails).
	s.mu.Lock()
	sort.SliceStable(s.pending, func(i, j int) bool {
		ti, tj := s.pending[i].Blobs[0].Type == pack.TreeBlob, s.pending[j].Blobs[0].Type == pack.TreeBlob
		if ti != tj {
			return !ti
		}
		return s.pending[i].seq < s.pending[j].seq
	})
	pending := append([]pendingPack(nil), s.pending...)
	s.mu.Unlock()
	written := 0
	for written < len(pending) {
		f := &index.File{}
		for written < len(pending) && (len(f.Packs) == 0 || f.Blobs()+len(pending[written].Blobs) <= index.MaxBlobsPerFile) {
			f.Packs = append(f.Packs, pending[written].Pack)
			written++
		}
		if _, err := r.writeIndex(ctx, f); err != nil {
			s.mu.Lock()
			s.pending = s.pending[written-len(f.Packs):]
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Lock()
	s.pending = s.pending[written:]
	s.mu.Unlock()
	return nil
}

// unindexed reports whether pack id is stored but not yet listed in an index file.
func (r *Repository) unindexed(id [32]byte) bool {
	r.save.mu.Lock()
	defer r.save.mu.Unlock()
	for _, p := range r.save.pending {
		if p.ID == id {
			return true
		}
	}
	return false
}

// pendingWork reports whether blobs were saved since the last successful Flush.
func (r *Repository) pendingWork() bool {
	s := r.save
	s.mu.Lock()
	n := len(s.pending) + len(s.inflight) + len(s.jobs)
	s.mu.Unlock()
	for t := range s.packers {
		p := &s.packers[t]
		p.mu.Lock()
		if p.w != nil && p.w.Count() > 0 {
			n++
		}
		p.mu.Unlock()
	}
	return n > 0
}

// writeIndex seals f under a new random name and stores it.
func (r *Repository) writeIndex(ctx context.Context, f *index.File) (ID, error) {
	id := randomID()
	h := backend.Handle{Type: backend.Index, Name: id.String()}
	if err := r.saveSealed(ctx, h, seal.Index, index.Encode(f)); err != nil {
		return ID{}, err
	}
	r.idxMu.Lock()
	r.idxFiles[id] = true
	r.idxMu.Unlock()
	return id, nil
}

// readIndex loads every index file, skipping those another one supersedes. Any error is
// returned (an index that cannot be read makes blobs look missing).
func (r *Repository) readIndex(ctx context.Context) (*index.Index, map[ID]bool, error) {
	files, err := r.readIndexFiles(ctx)
	if err != nil {
		return nil, nil, err
	}
	idx := index.New()
	loaded := make(map[ID]bool)
	superseded := supersededSet(files)
	for id, f := range files {
		if superseded[id] {
			continue
		}
		idx.AddFile(f)
		loaded[id] = true
	}
	return idx, loaded, nil
}

func supersededSet(files map[ID]*index.File) map[ID]bool {
	out := make(map[ID]bool)
	for _, f := range files {
		for _, s := range f.Supersedes {
			out[ID(s)] = true
		}
	}
	return out
}

// readIndexFiles reads and decodes every index file.
func (r *Repository) readIndexFiles(ctx context.Context) (map[ID]*index.File, error) {
	const op = "vault.readIndex"
	infos, err := listNames(ctx, r.be, backend.Index)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("listing index files: %w", err))
	}
	out := make(map[ID]*index.File, len(infos))
	for _, fi := range infos {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil, errs.Errorf(op, errs.Corrupt, "index/%s: not a valid index file name", fi.Name)
		}
		pt, err := r.loadSealed(ctx, backend.Handle{Type: backend.Index, Name: fi.Name}, seal.Index, index.MaxFileSize)
		if err != nil {
			return nil, err
		}
		f, err := index.Decode(pt)
		if err != nil {
			return nil, errs.E(op, errs.Corrupt, fmt.Errorf("index/%s: %w", fi.Name, err))
		}
		out[id] = f
	}
	return out, nil
}

// HasBlob reports whether the vault holds the blob (indexed, or saved and being stored).
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	if r.blobIndex().Has(uint8(t), id) {
		return true
	}
	r.save.mu.Lock()
	defer r.save.mu.Unlock()
	_, ok := r.save.inflight[index.Key{Type: uint8(t), ID: id}]
	return ok
}

// BlobSize returns the plaintext size of an indexed blob.
func (r *Repository) BlobSize(t BlobType, id ID) (uint32, bool) {
	loc, ok := r.blobIndex().Lookup(uint8(t), id)
	return loc.Blob.RawLength, ok
}

// SaveTree encodes and stores a tree blob.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	b, err := EncodeTree(t)
	if err != nil {
		return ID{}, errs.E("vault.SaveTree", errs.Invalid, err)
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, b)
	return id, err
}
