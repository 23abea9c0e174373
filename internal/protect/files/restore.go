package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Overwrite says what Restore does with entries that already exist in the target.
type Overwrite uint8

const (
	// OverwriteReplace (the default) replaces an existing non-directory entry (file, symlink,
	// FIFO...) by the restored one and merges into an existing directory. The old entry is
	// unlinked first, never written through, so a planted symlink or hard link in the target
	// cannot redirect a write.
	OverwriteReplace Overwrite = iota
	// OverwriteKeep keeps existing non-directory entries (a warning names each) and merges
	// into existing directories.
	OverwriteKeep
)

// RestoreOptions configures Restore. The zero value restores everything.
type RestoreOptions struct {
	// Include, when not empty, restores only paths matching one of these patterns, plus the
	// directories leading to them; a matching directory brings everything under it. Patterns
	// are relative to the point root as Restore lays it out ("etc/*.conf"; a leading "/" is
	// ignored); * ? [..] match within a name and ** any number of directories.
	Include []string
	// Workers is the number of blobs loaded and written in parallel (default runtime.NumCPU()).
	Workers int
	// Progress, when set, receives status updates.
	Progress Progress
	// Overwrite is the policy for existing entries (default OverwriteReplace).
	Overwrite Overwrite
}

// RestoreResult is the outcome of a restore.
type RestoreResult struct {
	Files  uint64 // regular files restored (hard links included)
	Dirs   uint64 // directories restored
	Others uint64 // symlinks, FIFOs and devices restored
	Bytes  uint64 // content bytes written
	// Failed lists the paths (relative to the target) that could not be restored: their
	// blobs are missing or damaged, their names are invalid, or the target refused them.
	Failed   []string
	Warnings []Warning
}

// Restore writes point root into directory target (created if missing). When the point's root
// tree holds exactly one directory, that directory's contents go into target and target takes
// its metadata; otherwise every root entry is restored side by side under target (a stream
// backup restores to target/<name>).
//
// Restore never writes outside target: names that could escape ("", ".", "..", containing
// "/" or NUL) are refused, and every entry is reached through directory file descriptors
// without following symlinks, so a symlink planted in target is replaced, not followed.
// Contents are loaded with one StreamBlobs call and written with pwrite; metadata (owners,
// modes, xattrs, times) follows, directories last. A file whose blobs are missing or damaged
// fails alone: the others are restored, the result lists it and the error (errs.Corrupt) says
// how many failed.
func Restore(ctx context.Context, store Store, root vault.ID, target string, opts RestoreOptions) (*RestoreResult, error) {
	const op = "files.Restore"
	if target == "" {
		return nil, errs.Errorf(op, errs.Invalid, "empty target directory").WithHint("name the directory to restore into")
	}
	incl, err := compilePatterns(op, opts.Include, false)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	r := &restorer{op: op, ctx: ctx, store: store, opts: opts, incl: incl, res: &RestoreResult{},
		links: map[[2]uint64]*rnode{}, targets: map[vault.ID][]wtarget{}}
	r.maxPinned = pinLimit()

	t, rootDir, err := layoutRoot(ctx, store, op, root)
	if err != nil {
		return nil, err
	}
	top := &rnode{node: rootDir, fd: -1}
	if err := r.plan(top, t, nil, len(incl) == 0); err != nil {
		return nil, err
	}
	r.planContent()

	if err := mkdirAll(target); err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("target %q: %w", target, err)).WithHint("choose a directory you can write to")
	}
	rootfd, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("target %q: %w", target, err)).WithHint("the target must be a directory")
	}
	defer unix.Close(rootfd)
	r.rootfd = rootfd

	var g errgroup.Group
	g.SetLimit(opts.Workers)
	r.create(&g, rootfd, top)
	g.Wait()
	if err := r.writeContent(); err != nil {
		r.closeFiles()
		return r.res, err
	}
	r.closeFiles()
	r.finish(rootfd, top)
	if rootDir != nil && len(incl) == 0 {
		r.setMeta(rootfd, ".", rootfd, rootDir, ".", 0)
	}
	if r.chownDenied > 0 {
		r.warn(".", fmt.Errorf("owners of %d entries not restored: operation not permitted (restore as root to keep owners)", r.chownDenied))
	}
	if err := ctx.Err(); err != nil {
		return r.res, errs.E(op, errs.Canceled, err)
	}
	if n := len(r.res.Failed); n > 0 {
		kind := errs.Other
		if r.corrupt {
			kind = errs.Corrupt
		}
		return r.res, errs.Errorf(op, kind, "%d of the point's entries could not be restored (first: %q); the rest was restored", n, r.res.Failed[0]).
			WithHint("see the warnings for each path; for missing or damaged blobs run a vault check and restore those paths from another point")
	}
	return r.res, nil
}

// rnode is one entry to restore.
type rnode struct {
	node     *vault.Node
	name     string
	rel      string
	parent   *rnode
	children []*rnode
	leader   *rnode // hard links: the first restored path of the same inode
	skip     bool   // not created (kept or refused); nothing under it is written
	created  bool   // a file this restore created

	mu      sync.Mutex // guards the fields below during writeContent
	fd      int
	pinned  bool
	users   int
	pending int
	failed  bool
}

type wtarget struct {
	f    *rnode
	off  int64
	size uint32
}

type restorer struct {
	op        string
	ctx       context.Context
	store     Store
	opts      RestoreOptions
	incl      []pattern
	rootfd    int
	files     []*rnode
	links     map[[2]uint64]*rnode
	targets   map[vault.ID][]wtarget
	maxPinned int

	mu          sync.Mutex // guards res, status, pinned, corrupt, chownDenied
	res         *RestoreResult
	status      Status
	pinned      int
	corrupt     bool
	chownDenied int
}

func pinLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 64
	}
	return int(max(16, min(4096, rl.Cur/4)))
}

func mkdirAll(p string) error {
	if err := unix.Mkdir(p, 0o700); err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	i := strings.LastIndexByte(strings.TrimRight(p, "/"), '/')
	if i > 0 {
		if err := mkdirAll(p[:i]); err != nil {
			return err
		}
	}
	if err := unix.Mkdir(p, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

func (r *restorer) warn(rel string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Warnings = append(r.res.Warnings, Warning{Path: rel, Err: err})
	r.status.Errors++
	if r.opts.Progress != nil {
		r.opts.Progress(r.status)
	}
}

// failPath records that rel could not be restored; corrupt marks a vault problem.
func (r *restorer) failPath(rel string, err error, corrupt bool) {
	r.mu.Lock()
	r.res.Failed = append(r.res.Failed, rel)
	if corrupt {
		r.corrupt = true
	}
	r.mu.Unlock()
	r.warn(rel, err)
}

func (r *restorer) progress(f func(s *Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.status)
	if r.opts.Progress != nil {
		r.opts.Progress(r.status)
	}
}

func joinRel(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// plan builds the rnode tree under dir from t, checking names and applying Include. Only
// cancellation is an error; broken entries are recorded and skipped.
func (r *restorer) plan(dir *rnode, t *vault.Tree, segs []string, full bool) error {
	var prev []byte
	for i, n := range t.Nodes {
		if err := r.ctx.Err(); err != nil {
			return errs.E(r.op, errs.Canceled, err)
		}
		if err := checkName(n.Name); err != nil {
			r.failPath(joinRel(dir.rel, fmt.Sprintf("%q", n.Name)), errs.E(r.op, errs.Corrupt, err), true)
			continue
		}
		name := string(n.Name)
		rel := joinRel(dir.rel, name)
		if i > 0 && bytes.Equal(prev, n.Name) {
			r.failPath(rel, errs.Errorf(r.op, errs.Corrupt, "duplicate name in tree, later entry ignored"), true)
			continue
		}
		prev = n.Name
		childSegs := append(segs[:len(segs):len(segs)], name)
		incl := full || matchAny(r.incl, childSegs)
		isDir := n.Type == vault.NodeDir
		if !incl && !(isDir && r.leadsTo(childSegs)) {
			continue
		}
		c := &rnode{node: n, name: name, rel: rel, parent: dir, fd: -1}
		dir.children = append(dir.children, c)
		switch n.Type {
		case vault.NodeDir:
			if n.Subtree == nil {
				continue
			}
			sub, err := loadTree(r.ctx, r.store, r.op, *n.Subtree, rel)
			if err != nil {
				if r.ctx.Err() != nil {
					return errs.E(r.op, errs.Canceled, r.ctx.Err())
				}
				r.failPath(rel, err, true)
				continue
			}
			if err := r.plan(c, sub, childSegs, incl); err != nil {
				return err
			}
		case vault.NodeFile:
			if n.Links > 1 && n.Inode != 0 {
				key := [2]uint64{n.DeviceID, n.Inode}
				if l := r.links[key]; l != nil {
					c.leader = l
					continue
				}
				r.links[key] = c
			}
			r.files = append(r.files, c)
		}
	}
	return nil
}

func (r *restorer) leadsTo(segs []string) bool {
	for _, p := range r.incl {
		if p.matchPrefix(segs) {
			return true
		}
	}
	return false
}

// planContent maps every needed data blob to the places it is written.
func (r *restorer) planContent() {
	var total uint64
	for _, f := range r.files {
		n := f.node
		ts := make([]wtarget, 0, len(n.Content))
		var off int64
		var bad error
		for _, id := range n.Content {
			size, ok := r.store.BlobSize(vault.DataBlob, id)
			if !ok {
				bad = fmt.Errorf("data blob %s is missing from the vault", id.Short())
				break
			}
			ts = append(ts, wtarget{f: f, off: off, size: size})
			off += int64(size)
		}
		if bad == nil && uint64(off) != n.Size {
			bad = fmt.Errorf("chunks add up to %d bytes, the file has %d", off, n.Size)
		}
		if bad != nil {
			f.failed = true
			r.failPath(f.rel, errs.E(r.op, errs.Corrupt, bad), true)
			continue
		}
		for i, id := range n.Content {
			r.targets[id] = append(r.targets[id], ts[i])
		}
		f.pending = len(ts)
		total += n.Size
	}
	r.status.BytesTotal = total
}

// clearSlot prepares name in dfd for a new entry. It returns whether an existing directory
// is there (merged into when wantDir) and whether the entry may be created.
func (r *restorer) clearSlot(dfd int, name, rel string, wantDir bool) (isDir, ok bool) {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, true
	}
	if err != nil {
		r.failPath(rel, fmt.Errorf("stat existing entry: %w", err), false)
		return false, false
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if wantDir {
			return true, true
		}
		r.failPath(rel, errors.New("a directory exists there; not replaced"), false)
		return true, false
	}
	if r.opts.Overwrite == OverwriteKeep {
		r.warn(rel, errors.New("exists; kept"))
		return false, false
	}
	if err := unix.Unlinkat(dfd, name, 0); err != nil {
		r.failPath(rel, fmt.Errorf("remove existing entry: %w", err), false)
		return false, false
	}
	return false, true
}

func skipAll(n *rnode) {
	n.skip = true
	for _, c := range n.children {
		skipAll(c)
	}
}

// create makes the directories and the (empty, sized) regular files under dir. Creating
// entries is slow on many file systems, so subdirectories are handed to idle workers of g
// (TryGo: a busy pool means the caller does the work itself, so nesting cannot deadlock).
func (r *restorer) create(g *errgroup.Group, dfd int, dir *rnode) {
	for _, c := range dir.children {
		if r.ctx.Err() != nil {
			return
		}
		switch c.node.Type {
		case vault.NodeDir:
			isDir, ok := r.clearSlot(dfd, c.name, c.rel, true)
			if !ok {
				skipAll(c)
				continue
			}
			if !isDir {
				if err := unix.Mkdirat(dfd, c.name, 0o700); err != nil {
					r.failPath(c.rel, fmt.Errorf("mkdir: %w", err), false)
					skipAll(c)
					continue
				}
			}
			cfd, err := unix.Openat(dfd, c.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				r.failPath(c.rel, fmt.Errorf("open directory: %w", err), false)
				skipAll(c)
				continue
			}
			if !g.TryGo(func() error {
				r.create(g, cfd, c)
				unix.Close(cfd)
				return nil
			}) {
				r.create(g, cfd, c)
				unix.Close(cfd)
			}
		case vault.NodeFile:
			if c.leader != nil || c.failed {
				continue
			}
			if _, ok := r.clearSlot(dfd, c.name, c.rel, false); !ok {
				c.skip = true
				continue
			}
			fd, err := unix.Openat(dfd, c.name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			if err != nil {
				r.failPath(c.rel, fmt.Errorf("create: %w", err), false)
				c.skip = true
				continue
			}
			c.created = true
			if err := unix.Ftruncate(fd, int64(c.node.Size)); err != nil {
				unix.Close(fd)
				c.failed = true
				r.failPath(c.rel, fmt.Errorf("set size: %w", err), false)
				continue
			}
			if c.pending > 0 && r.pin() {
				c.fd, c.pinned = fd, true
			} else {
				unix.Close(fd)
			}
		}
	}
}

func (r *restorer) pin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinned >= r.maxPinned {
		return false
	}
	r.pinned++
	return true
}

func (r *restorer) unpin() {
	r.mu.Lock()
	r.pinned--
	r.mu.Unlock()
}

// openDir opens the directory of n's parent chain below the target without following
// symlinks, returning an O_PATH descriptor.
func (r *restorer) openParent(n *rnode) (int, error) {
	var names []string
	for p := n.parent; p != nil && p.parent != nil; p = p.parent {
		names = append(names, p.name)
	}
	fd, err := unix.Openat(r.rootfd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		next, err := unix.Openat(fd, names[i], unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// openFile opens regular file n (under the target, following no symlink) with flags.
func (r *restorer) openFile(n *rnode, flags int) (int, error) {
	dfd, err := r.openParent(n)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, n.name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if flags&unix.O_PATH == 0 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			return -1, errors.New("no longer a regular file")
		}
	}
	return fd, nil
}

var zeros [64 << 10]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// writeContent streams every needed blob once and writes it wherever it belongs.
func (r *restorer) writeContent() error {
	if len(r.targets) == 0 {
		return nil
	}
	ids := make([]vault.ID, 0, len(r.targets))
	for id := range r.targets {
		ids = append(ids, id)
	}
	var dmu sync.Mutex
	delivered := make(map[vault.ID]bool, len(ids))
	deliver := func(id vault.ID, data []byte) error {
		dmu.Lock()
		dup := delivered[id]
		delivered[id] = true
		dmu.Unlock()
		if dup {
			return nil
		}
		for _, t := range r.targets[id] {
			r.write(t, id, data)
		}
		return r.ctx.Err()
	}
	err := r.store.StreamBlobs(r.ctx, vault.DataBlob, ids, r.opts.Workers, deliver)
	if cerr := r.ctx.Err(); cerr != nil {
		return errs.E(r.op, errs.Canceled, cerr)
	}
	if err == nil && len(delivered) == len(ids) {
		return nil
	}
	// Some blobs were not delivered: fetch each one alone, so that a damaged blob fails only
	// the files that use it.
	var buf []byte
	for _, id := range ids {
		if delivered[id] {
			continue
		}
		data, lerr := r.store.LoadBlob(r.ctx, vault.DataBlob, id, buf)
		if cerr := r.ctx.Err(); cerr != nil {
			return errs.E(r.op, errs.Canceled, cerr)
		}
		if lerr != nil {
			for _, t := range r.targets[id] {
				r.failWrite(t.f, fmt.Errorf("data blob %s: %w", id.Short(), lerr), true)
			}
			continue
		}
		buf = data[:0]
		if derr := deliver(id, data); derr != nil {
			return errs.E(r.op, errs.Canceled, derr)
		}
	}
	return nil
}

// failWrite marks f failed (once) and accounts for one pending write.
func (r *restorer) failWrite(f *rnode, err error, corrupt bool) {
	f.mu.Lock()
	first := !f.failed
	f.failed = true
	f.pending--
	r.maybeClose(f)
	f.mu.Unlock()
	if first {
		r.failPath(f.rel, errs.E(r.op, kindFor(corrupt), err), corrupt)
	}
}

func kindFor(corrupt bool) errs.Kind {
	if corrupt {
		return errs.Corrupt
	}
	return errs.Other
}

// maybeClose closes f's descriptor when nothing needs it; f.mu is held.
func (r *restorer) maybeClose(f *rnode) {
	if f.fd >= 0 && f.users == 0 && (f.pending <= 0 || f.failed || !f.pinned) {
		unix.Close(f.fd)
		f.fd = -1
		if f.pinned {
			f.pinned = false
			r.unpin()
		}
	}
}

func (r *restorer) write(t wtarget, id vault.ID, data []byte) {
	f := t.f
	if len(data) != int(t.size) {
		r.failWrite(f, fmt.Errorf("data blob %s has %d bytes, the index says %d", id.Short(), len(data), t.size), true)
		return
	}
	f.mu.Lock()
	if f.failed || f.skip {
		f.pending--
		r.maybeClose(f)
		f.mu.Unlock()
		return
	}
	if f.node.Sparse && allZero(data) {
		f.pending--
		r.maybeClose(f)
		f.mu.Unlock()
		return
	}
	if f.fd < 0 {
		fd, err := r.openFile(f, unix.O_WRONLY)
		if err != nil {
			f.mu.Unlock()
			r.failWrite(f, fmt.Errorf("open for writing: %w", err), false)
			return
		}
		f.fd = fd
		f.pinned = f.pending > 1 && r.pin()
	}
	f.users++
	fd := f.fd
	f.mu.Unlock()

	var err error
	if f.node.Sparse {
		err = pwriteSparse(fd, data, t.off)
	} else {
		err = pwriteAll(fd, data, t.off)
	}

	f.mu.Lock()
	f.users--
	if err != nil {
		f.mu.Unlock()
		r.failWrite(f, fmt.Errorf("write at %d: %w", t.off, err), false)
		return
	}
	f.pending--
	r.maybeClose(f)
	f.mu.Unlock()
	n := uint64(len(data))
	r.progress(func(s *Status) { s.Bytes += n; s.Current = f.rel })
	r.mu.Lock()
	r.res.Bytes += n
	r.mu.Unlock()
}

// sparseBlock is the granularity at which pwriteSparse leaves zeroes as holes; file
// systems allocate in blocks of this size or a multiple of it.
const sparseBlock = 4096

// pwriteSparse writes data at off but skips every all-zero block (aligned to sparseBlock
// in the file), so the holes of a sparse file stay holes even inside a chunk that holds
// some data. The file was truncated to its size beforehand, so skipped ranges read as zero.
func pwriteSparse(fd int, data []byte, off int64) error {
	for len(data) > 0 {
		// The block containing off ends at the next multiple of sparseBlock.
		n := int(sparseBlock - off%sparseBlock)
		if n > len(data) {
			n = len(data)
		}
		if allZero(data[:n]) {
			data, off = data[n:], off+int64(n)
			continue
		}
		// Extend over following non-zero blocks so runs of data take one write.
		end := n
		for end < len(data) {
			m := min(sparseBlock, len(data)-end)
			if allZero(data[end : end+m]) {
				break
			}
			end += m
		}
		if err := pwriteAll(fd, data[:end], off); err != nil {
			return err
		}
		data, off = data[end:], off+int64(end)
	}
	return nil
}

func pwriteAll(fd int, data []byte, off int64) error {
	for len(data) > 0 {
		n, err := unix.Pwrite(fd, data, off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

// closeFiles closes descriptors left open (files whose writes did not all happen).
func (r *restorer) closeFiles() {
	for _, f := range r.files {
		f.mu.Lock()
		if f.fd >= 0 {
			unix.Close(f.fd)
			f.fd = -1
			if f.pinned {
				f.pinned = false
				r.unpin()
			}
		}
		if f.pending > 0 && !f.failed && !f.skip && f.created {
			f.failed = true
			f.mu.Unlock()
			r.failPath(f.rel, errs.Errorf(r.op, errs.Corrupt, "content incomplete: %d chunks were not delivered", f.pending), true)
			continue
		}
		f.mu.Unlock()
	}
}

// finish creates links, symlinks, FIFOs and devices under dir and sets metadata, each
// directory after its contents.
func (r *restorer) finish(dfd int, dir *rnode) {
	for _, c := range dir.children {
		if r.ctx.Err() != nil {
			return
		}
		if c.skip {
			continue
		}
		n := c.node
		switch n.Type {
		case vault.NodeDir:
			cfd, err := unix.Openat(dfd, c.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				r.failPath(c.rel, fmt.Errorf("open directory: %w", err), false)
				continue
			}
			r.finish(cfd, c)
			r.setMeta(dfd, c.name, cfd, n, c.rel, unix.AT_SYMLINK_NOFOLLOW)
			unix.Close(cfd)
			r.progress(func(s *Status) { s.Dirs++ })
			r.count(func(res *RestoreResult) { res.Dirs++ })
		case vault.NodeFile:
			if c.leader != nil {
				r.link(dfd, c)
				continue
			}
			if c.failed {
				if c.created {
					unix.Unlinkat(dfd, c.name, 0)
				}
				continue
			}
			fd, err := unix.Openat(dfd, c.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				r.failPath(c.rel, fmt.Errorf("open for metadata: %w", err), false)
				continue
			}
			r.setMeta(dfd, c.name, fd, n, c.rel, unix.AT_SYMLINK_NOFOLLOW)
			unix.Close(fd)
			r.progress(func(s *Status) { s.Files++; s.Current = c.rel })
			r.count(func(res *RestoreResult) { res.Files++ })
		case vault.NodeSocket:
			r.warn(c.rel, errors.New("socket not restored (a socket is created by the program that listens on it)"))
		case vault.NodeSymlink, vault.NodeFIFO, vault.NodeDev, vault.NodeChar:
			if _, ok := r.clearSlot(dfd, c.name, c.rel, false); !ok {
				continue
			}
			var err error
			perm := unixMode(n.Mode) & 0o7777
			switch n.Type {
			case vault.NodeSymlink:
				err = unix.Symlinkat(string(n.LinkTarget), dfd, c.name)
			case vault.NodeFIFO:
				err = unix.Mknodat(dfd, c.name, unix.S_IFIFO|perm, 0)
			case vault.NodeDev:
				err = unix.Mknodat(dfd, c.name, unix.S_IFBLK|perm, int(n.Rdev))
			case vault.NodeChar:
				err = unix.Mknodat(dfd, c.name, unix.S_IFCHR|perm, int(n.Rdev))
			}
			if err != nil {
				r.failPath(c.rel, fmt.Errorf("create %s: %w", n.Type, err), false)
				continue
			}
			r.setMeta(dfd, c.name, -1, n, c.rel, unix.AT_SYMLINK_NOFOLLOW)
			r.count(func(res *RestoreResult) { res.Others++ })
		default:
			r.failPath(c.rel, errs.Errorf(r.op, errs.Corrupt, "unknown node type %q", n.Type), true)
		}
	}
}

func (r *restorer) count(f func(res *RestoreResult)) {
	r.mu.Lock()
	f(r.res)
	r.mu.Unlock()
}

// link makes c a hard link to its group's first restored path.
func (r *restorer) link(dfd int, c *rnode) {
	l := c.leader
	if l.failed || l.skip {
		r.failPath(c.rel, fmt.Errorf("hard link to %q, which was not restored", l.rel), l.failed)
		return
	}
	if _, ok := r.clearSlot(dfd, c.name, c.rel, false); !ok {
		return
	}
	lfd, err := r.openFile(l, unix.O_PATH)
	if err == nil {
		err = unix.Linkat(unix.AT_FDCWD, procFD(lfd), dfd, c.name, unix.AT_SYMLINK_FOLLOW)
		unix.Close(lfd)
	}
	if err != nil {
		r.failPath(c.rel, fmt.Errorf("hard link to %q: %w", l.rel, err), false)
		return
	}
	r.progress(func(s *Status) { s.Files++; s.Current = c.rel })
	r.count(func(res *RestoreResult) { res.Files++ })
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// setMeta restores owner, xattrs, mode and times of entry name in dfd. fd, when not -1, is
// an open descriptor of the entry itself (used for everything but times). flags is
// AT_SYMLINK_NOFOLLOW, or 0 for name ".".
func (r *restorer) setMeta(dfd int, name string, fd int, n *vault.Node, rel string, flags int) {
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, int(n.UID), int(n.GID))
	} else {
		err = unix.Fchownat(dfd, name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW)
	}
	if errors.Is(err, unix.EPERM) {
		r.mu.Lock()
		r.chownDenied++
		r.mu.Unlock()
	} else if err != nil {
		r.warn(rel, fmt.Errorf("set owner: %w", err))
	}
	for _, x := range n.Xattrs {
		if fd >= 0 {
			err = unix.Fsetxattr(fd, string(x.Name), x.Value, 0)
		} else {
			err = unix.Lsetxattr(procFD(dfd)+"/"+name, string(x.Name), x.Value, 0)
		}
		if err != nil {
			r.warn(rel, fmt.Errorf("set xattr %q: %w", x.Name, err))
		}
	}
	if n.Type != vault.NodeSymlink {
		if fd >= 0 {
			err = unix.Fchmod(fd, unixMode(n.Mode))
		} else {
			err = unix.Fchmodat(dfd, name, unixMode(n.Mode), 0)
		}
		if err != nil {
			r.warn(rel, fmt.Errorf("set mode: %w", err))
		}
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(n.ModTime.UnixNano())}
	if !n.AccessTime.IsZero() {
		ts[0] = unix.NsecToTimespec(n.AccessTime.UnixNano())
	}
	if err := unix.UtimesNanoAt(dfd, name, ts, flags); err != nil {
		r.warn(rel, fmt.Errorf("set times: %w", err))
	}
}
