package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// FSRootName is the name of the root node when the file system root "/" itself is backed up
// (a node name cannot contain "/").
const FSRootName = "fsroot"

// BackupOptions configures Backup. The zero value backs up everything in full.
type BackupOptions struct {
	// Parent is the root tree of an earlier point of the same paths (zero: none). A file whose
	// size, mtime, ctime and inode match its node there, and whose blobs all still exist, is
	// not read again.
	Parent vault.ID
	// Excludes are glob patterns (* ? [..] per name, ** for any number of directories). A
	// pattern starting with "/" is matched against the absolute path; any other pattern
	// matches at any depth, so "*.tmp" matches every base name ending in .tmp and
	// "cache/tmp" every such pair of names. An excluded directory is skipped whole.
	Excludes []string
	// ExcludeFiles name files of exclude patterns: one per line, "#" starts a comment line.
	ExcludeFiles []string
	// OneFileSystem records directories that are mount points of another file system (than
	// the backed up path's) but not their contents.
	OneFileSystem bool
	// Workers is the number of files read and saved in parallel (default runtime.NumCPU()).
	Workers int
	// Progress, when set, receives status updates.
	Progress Progress
	// Now is the clock (default time.Now); it dates stream backups.
	Now func() time.Time
}

// Summary counts what a backup did.
type Summary struct {
	Files          uint64 // regular files in the tree
	Dirs           uint64 // directories in the tree
	Others         uint64 // symlinks, FIFOs, devices, sockets
	FilesRead      uint64 // files whose content was read (not reused from the parent)
	FilesUnchanged uint64 // files whose content was reused from the parent
	BytesRead      uint64 // bytes of file content read
	BytesInTree    uint64 // total size of the files in the tree
	NewBlobs       uint64 // blobs (data and tree) the vault did not have
	NewBytes       uint64 // plaintext bytes of those blobs
}

// BackupResult is the outcome of a backup.
type BackupResult struct {
	Root     vault.ID // the root tree
	Summary  Summary
	Warnings []Warning
}

// Backup saves paths into store and returns the root tree: one node per path, named by the
// path's base name (FSRootName for "/"). Paths must exist and have distinct base names.
// Problems with single files (vanished, changed while read, permission denied) are warnings in
// the result; errors of the store or of the context abort the backup.
func Backup(ctx context.Context, store Store, paths []string, opts BackupOptions) (*BackupResult, error) {
	const op = "files.Backup"
	if len(paths) == 0 {
		return nil, errs.Errorf(op, errs.Invalid, "no paths to back up").WithHint("name at least one file or directory")
	}
	b, err := newBackup(ctx, op, store, opts)
	if err != nil {
		return nil, err
	}
	defer b.cancel(nil)

	type top struct {
		abs, name string
		st        unix.Stat_t
	}
	tops := make([]top, 0, len(paths))
	seen := map[string]string{}
	for _, p := range paths {
		if p == "" {
			return nil, errs.Errorf(op, errs.Invalid, "empty path").WithHint("name a file or directory")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("path %q: %w", p, err))
		}
		t := top{abs: abs, name: filepath.Base(abs)}
		if abs == "/" {
			t.name = FSRootName
		}
		if err := unix.Lstat(abs, &t.st); err != nil {
			kind := errs.Invalid
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				kind = errs.NotFound
			}
			return nil, errs.E(op, kind, fmt.Errorf("path %q: %w", p, err)).WithHint("check the path; nothing was backed up")
		}
		if other, dup := seen[t.name]; dup {
			return nil, errs.Errorf(op, errs.Invalid, "paths %q and %q have the same base name %q", other, p, t.name).
				WithHint("back up their common parent directory instead, or make separate backups")
		}
		seen[t.name] = p
		tops = append(tops, t)
	}

	var parent *vault.Tree
	if !opts.Parent.IsZero() {
		parent = b.loadParent(opts.Parent, "(parent point)")
	}
	root := &dirState{b: b, nodes: make([]*vault.Node, len(tops))}
	root.pending.Store(int64(len(tops)) + 1)
	var rootID vault.ID
	root.onRoot = func(id vault.ID) { rootID = id }
	for i, t := range tops {
		if b.ctx.Err() != nil {
			break
		}
		st := t.st
		b.visit(root, i, t.abs, t.name, &st, findNode(parent, t.name), st.Dev)
	}
	if b.ctx.Err() == nil {
		root.release()
	}
	b.g.Wait()
	if err := b.err(); err != nil {
		return nil, err
	}
	if rootID.IsZero() {
		return nil, errs.Errorf(op, errs.Internal, "root tree was not saved")
	}
	b.res.Root = rootID
	return b.res, nil
}

// BackupStream saves the content of rd as one file named name (for backups of standard
// input). Its mode is 0644, its owner the current user and its times opts.Now().
func BackupStream(ctx context.Context, store Store, rd io.Reader, name string, opts BackupOptions) (*BackupResult, error) {
	const op = "files.BackupStream"
	if err := checkName([]byte(name)); err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("stream name %q: %w", name, err)).WithHint("give a plain file name without slashes")
	}
	b, err := newBackup(ctx, op, store, opts)
	if err != nil {
		return nil, err
	}
	defer b.cancel(nil)
	now := b.opts.Now().UTC()
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	node := &vault.Node{
		Name: []byte(name), Type: vault.NodeFile, Mode: 0o644,
		UID: uid, GID: gid, User: b.ids.user(uid), Group: b.ids.group(gid),
		ModTime: now, AccessTime: now, ChangeTime: now,
	}
	b.progress(func(s *Status) { s.Files++; s.Current = name })
	size, _, err := b.chunkInto(node, rd)
	if err != nil {
		if b.err() != nil {
			return nil, b.err()
		}
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("read stream %q: %w", name, err))
	}
	node.Size = size
	b.res.Summary.Files = 1
	b.res.Summary.FilesRead = 1
	b.res.Summary.BytesInTree = size
	id, err := b.saveTree(&vault.Tree{Nodes: []*vault.Node{node}})
	if err != nil {
		return nil, err
	}
	b.res.Root = id
	return b.res, nil
}

type backup struct {
	op     string
	ctx    context.Context
	cancel context.CancelCauseFunc
	store  Store
	opts   BackupOptions
	excl   []pattern
	g      errgroup.Group
	ids    idNames
	bufs   sync.Pool
	saving chan struct{} // bounds SaveBlob calls in flight across all files

	prefetchMu  sync.Mutex
	prefetched  map[vault.ID]*treeFuture // parent trees loading ahead of the walk
	prefetchSem chan struct{}            // bounds those loads

	links map[[2]uint64]*linkGroup // walker goroutine only

	mu       sync.Mutex // guards res, status, firstErr
	res      *BackupResult
	status   Status
	firstErr error
}

// linkGroup shares the content of hard-linked files: the first link reads it, the others
// wait for it.
type linkGroup struct {
	done    chan struct{}
	ok      bool
	content []vault.ID
	size    uint64
	sparse  bool
}

func newBackup(ctx context.Context, op string, store Store, opts BackupOptions) (*backup, error) {
	if store == nil {
		return nil, errs.Errorf(op, errs.Internal, "nil store")
	}
	patterns := slices.Clone(opts.Excludes)
	for _, f := range opts.ExcludeFiles {
		ps, err := readPatternFile(op, f)
		if err != nil {
			return nil, err
		}
		patterns = append(patterns, ps...)
	}
	excl, err := compilePatterns(op, patterns, true)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &backup{op: op, store: store, opts: opts, excl: excl, res: &BackupResult{}, links: map[[2]uint64]*linkGroup{}}
	b.ctx, b.cancel = context.WithCancelCause(ctx)
	b.g.SetLimit(opts.Workers)
	b.saving = make(chan struct{}, runtime.NumCPU()+1)
	b.prefetched = make(map[vault.ID]*treeFuture)
	b.prefetchSem = make(chan struct{}, runtime.NumCPU())
	return b, nil
}

// fail records a fatal error and stops the backup.
func (b *backup) fail(err error) {
	b.mu.Lock()
	if b.firstErr == nil {
		b.firstErr = err
	}
	b.mu.Unlock()
	b.cancel(err)
}

func (b *backup) err() error {
	b.mu.Lock()
	err := b.firstErr
	b.mu.Unlock()
	if err == nil && b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	}
	if err == nil {
		return nil
	}
	if errs.KindOf(err) == errs.Other {
		kind := errs.Internal
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			kind = errs.Canceled
		}
		return errs.E(b.op, kind, err)
	}
	return err
}

func (b *backup) warn(path string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Warnings = append(b.res.Warnings, Warning{Path: path, Err: err})
	b.status.Errors++
	if b.opts.Progress != nil {
		b.opts.Progress(b.status)
	}
}

func (b *backup) progress(f func(s *Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.status)
	if b.opts.Progress != nil {
		b.opts.Progress(b.status)
	}
}

func (b *backup) count(f func(s *Summary)) {
	b.mu.Lock()
	f(&b.res.Summary)
	b.mu.Unlock()
}

func (b *backup) excluded(p string) bool {
	if len(b.excl) == 0 {
		return false
	}
	return matchAny(b.excl, splitPath(p))
}

// loadParent loads a tree of the parent point; on failure the files under it are read in full.
func (b *backup) loadParent(id vault.ID, path string) *vault.Tree {
	b.prefetchMu.Lock()
	f, ok := b.prefetched[id]
	delete(b.prefetched, id)
	b.prefetchMu.Unlock()
	var t *vault.Tree
	var err error
	if ok {
		<-f.done
		t, err = f.tree, f.err
	} else {
		t, err = b.fetchTree(id)
	}
	if err == nil {
		return t
	}
	if b.ctx.Err() == nil {
		b.warn(path, fmt.Errorf("parent tree %s unreadable, reading files in full: %w", id.Short(), err))
	}
	return nil
}

// findNode returns the node called name in t (sorted by name), or nil.
func findNode(t *vault.Tree, name string) *vault.Node {
	if t == nil {
		return nil
	}
	i := sort.Search(len(t.Nodes), func(i int) bool { return string(t.Nodes[i].Name) >= name })
	if i < len(t.Nodes) && string(t.Nodes[i].Name) == name {
		return t.Nodes[i]
	}
	return nil
}

// dirState is a directory being backed up. Its tree is saved when the last child is done
// (pending counts unfinished children plus one for the walker's listing), which then releases
// the parent: trees are built bottom-up while files are still being read elsewhere.
type dirState struct {
	b       *backup
	node    *vault.Node // nil for the root tree
	nodes   []*vault.Node
	pending atomic.Int64
	parent  *dirState
	onRoot  func(vault.ID)
}

func (d *dirState) release() {
	if d.pending.Add(-1) != 0 {
		return
	}
	b := d.b
	if b.ctx.Err() != nil {
		return
	}
	t := &vault.Tree{Nodes: make([]*vault.Node, 0, len(d.nodes))}
	for _, n := range d.nodes {
		if n != nil {
			t.Nodes = append(t.Nodes, n)
		}
	}
	slices.SortFunc(t.Nodes, func(a, b *vault.Node) int { return bytes.Compare(a.Name, b.Name) })
	id, err := b.saveTree(t)
	if err != nil {
		b.fail(err)
		return
	}
	if d.parent == nil {
		d.onRoot(id)
		return
	}
	d.node.Subtree = &id
	d.parent.release()
}

func (b *backup) saveTree(t *vault.Tree) (vault.ID, error) {
	data, err := vault.EncodeTree(t)
	if err != nil {
		return vault.ID{}, errs.E(b.op, errs.Internal, fmt.Errorf("encode tree: %w", err))
	}
	id, added, err := b.store.SaveBlob(b.ctx, vault.TreeBlob, data)
	if err != nil {
		return vault.ID{}, err
	}
	if added {
		b.count(func(s *Summary) { s.NewBlobs++; s.NewBytes += uint64(len(data)) })
	}
	return id, nil
}

// visit backs up the entry p (already lstat'ed) as child i of d. It runs in the walker
// goroutine; file contents are read by workers. dev is the device of the top path.
func (b *backup) visit(d *dirState, i int, p, name string, st *unix.Stat_t, prev *vault.Node, dev uint64) {
	if b.excluded(p) {
		d.release()
		return
	}
	node := statNode(name, st, &b.ids)
	if node.Type == "" {
		b.warn(p, fmt.Errorf("unknown file type %#o, skipped", st.Mode&unix.S_IFMT))
		d.release()
		return
	}
	xattrs, err := readXattrs(p)
	if err != nil {
		b.warn(p, fmt.Errorf("extended attributes: %w", err))
	}
	node.Xattrs = xattrs
	d.nodes[i] = node

	switch node.Type {
	case vault.NodeDir:
		b.progress(func(s *Status) { s.Dirs++ })
		b.count(func(s *Summary) { s.Dirs++ })
		child := &dirState{b: b, node: node, parent: d}
		if b.opts.OneFileSystem && st.Dev != dev {
			child.pending.Store(1)
			child.release()
			return
		}
		var prevTree *vault.Tree
		if prev != nil && prev.Type == vault.NodeDir && prev.Subtree != nil {
			prevTree = b.loadParent(*prev.Subtree, p)
		}
		b.walkDir(child, p, prevTree, dev)
	case vault.NodeFile:
		b.progress(func(s *Status) { s.Files++; s.BytesTotal += node.Size })
		b.count(func(s *Summary) { s.Files++ })
		if b.unchanged(prev, node) {
			node.Content = slices.Clone(prev.Content)
			node.Sparse = prev.Sparse
			b.count(func(s *Summary) { s.FilesUnchanged++; s.BytesInTree += node.Size })
			d.release()
			return
		}
		var grp *linkGroup
		leader := false
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if grp = b.links[key]; grp == nil {
				grp = &linkGroup{done: make(chan struct{})}
				b.links[key] = grp
				leader = true
			}
		}
		want := *st
		b.g.Go(func() error {
			defer d.release()
			if !b.readFile(node, p, &want, grp, leader) {
				d.nodes[i] = nil
			}
			return nil
		})
	case vault.NodeSymlink:
		target, err := readLink(p)
		if err != nil {
			b.warn(p, err)
			d.nodes[i] = nil
		} else {
			node.LinkTarget = target
			b.count(func(s *Summary) { s.Others++ })
		}
		d.release()
	default:
		b.count(func(s *Summary) { s.Others++ })
		d.release()
	}
}

// walkDir lists directory p and visits its entries in name order.
// treeFuture is a parent tree being loaded ahead of the walk.
type treeFuture struct {
	done chan struct{}
	tree *vault.Tree
	err  error
}

func (b *backup) fetchTree(id vault.ID) (*vault.Tree, error) {
	data, err := b.store.LoadBlob(b.ctx, vault.TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	return vault.DecodeTree(data)
}

// prefetchSubtrees starts loading the parent's subdirectory trees of a directory about to
// be walked, with at most NumCPU loads in flight, so reading and decoding the parent point
// overlaps with listing and stat-ing the file system. loadParent takes the results.
func (b *backup) prefetchSubtrees(prev *vault.Tree) {
	if prev == nil {
		return
	}
	var ids []vault.ID
	b.prefetchMu.Lock()
	for _, n := range prev.Nodes {
		if n.Type != vault.NodeDir || n.Subtree == nil {
			continue
		}
		if _, ok := b.prefetched[*n.Subtree]; ok {
			continue
		}
		ids = append(ids, *n.Subtree)
		b.prefetched[*n.Subtree] = &treeFuture{done: make(chan struct{})}
	}
	futures := make([]*treeFuture, len(ids))
	for i, id := range ids {
		futures[i] = b.prefetched[id]
	}
	b.prefetchMu.Unlock()
	// At most cap(prefetchSem) goroutines per directory, each taking the next ID.
	var next atomic.Int64
	for w := 0; w < min(len(ids), cap(b.prefetchSem)); w++ {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				f := futures[i]
				select {
				case b.prefetchSem <- struct{}{}:
					f.tree, f.err = b.fetchTree(ids[i])
					<-b.prefetchSem
				case <-b.ctx.Done():
					f.err = b.ctx.Err()
				}
				close(f.done)
			}
		}()
	}
}

func (b *backup) walkDir(d *dirState, p string, prev *vault.Tree, dev uint64) {
	b.prefetchSubtrees(prev)
	names, err := readDirNames(p)
	if err != nil {
		b.warn(p, fmt.Errorf("list directory: %w", err))
	}
	sort.Strings(names)
	d.nodes = make([]*vault.Node, len(names))
	d.pending.Store(int64(len(names)) + 1)
	for i, name := range names {
		if b.ctx.Err() != nil {
			return
		}
		child := p + "/" + name
		if p == "/" {
			child = "/" + name
		}
		var st unix.Stat_t
		if err := unix.Lstat(child, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				err = errors.New("vanished during backup, not saved")
			}
			b.warn(child, err)
			d.release()
			continue
		}
		b.visit(d, i, child, name, &st, findNode(prev, name), dev)
	}
	d.release()
}

func readDirNames(p string) ([]string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// unchanged reports whether the file's content can be taken from its previous node.
func (b *backup) unchanged(prev, n *vault.Node) bool {
	if prev == nil || prev.Type != vault.NodeFile || prev.Size != n.Size || prev.Inode != n.Inode ||
		!prev.ModTime.Equal(n.ModTime) || !prev.ChangeTime.Equal(n.ChangeTime) {
		return false
	}
	if n.Size > 0 && len(prev.Content) == 0 {
		return false
	}
	var total uint64
	for _, id := range prev.Content {
		size, ok := b.store.BlobSize(vault.DataBlob, id)
		if !ok {
			return false
		}
		total += uint64(size)
	}
	return total == n.Size
}

// readFile reads and saves the content of file p into node. It returns false when the file
// is not to be saved (it vanished or could not be read: a warning says so).
func (b *backup) readFile(node *vault.Node, p string, want *unix.Stat_t, grp *linkGroup, leader bool) (ok bool) {
	if grp != nil && !leader {
		select {
		case <-grp.done:
		case <-b.ctx.Done():
			return false
		}
		if grp.ok {
			node.Content, node.Size, node.Sparse = slices.Clone(grp.content), grp.size, grp.sparse
			b.count(func(s *Summary) { s.BytesInTree += node.Size })
			return true
		}
	}
	if leader {
		defer func() {
			if ok {
				grp.ok, grp.content, grp.size, grp.sparse = true, node.Content, node.Size, node.Sparse
			}
			close(grp.done)
		}()
	}
	b.progress(func(s *Status) { s.Current = p })
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("vanished during backup, not saved: %w", err)
		}
		b.warn(p, err)
		return false
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		b.warn(p, err)
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		b.warn(p, errors.New("replaced by a non-regular file during backup, not saved"))
		return false
	}
	if st.Ino != want.Ino || st.Dev != want.Dev {
		b.warn(p, errors.New("replaced by another file during backup; saved the new file"))
		*want = st
	}
	if st.Size > 0 {
		if hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE); err == nil && hole < st.Size {
			node.Sparse = true
		}
		if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
			b.warn(p, err)
			return false
		}
	}
	size, _, err := b.chunkInto(node, f)
	if err != nil {
		if b.ctx.Err() == nil {
			b.warn(p, fmt.Errorf("read: %w; not saved", err))
		}
		return false
	}
	node.Size = size
	b.count(func(s *Summary) { s.FilesRead++; s.BytesInTree += size })
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err == nil &&
		(after.Size != want.Size || after.Mtim != want.Mtim || int64(size) != want.Size) {
		b.warn(p, fmt.Errorf("changed during backup (size %d, read %d bytes); saved what was read", want.Size, size))
	}
	return true
}

// chunkInto chunks rd, saves the chunks as data blobs and appends their IDs to node.Content.
// Errors of the store are fatal (recorded with fail); read errors are returned.
func (b *backup) chunkInto(node *vault.Node, rd io.Reader) (size uint64, sparse bool, err error) {
	// The chunker runs here; each chunk is hashed, compressed and sealed by SaveBlob in its
	// own goroutine, at most cap(b.saving) at a time across all files, so one large file
	// keeps every core busy while the next chunk is read. Content keeps chunk order.
	ch := b.store.NewChunker(rd)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards content, saveErr
		content  []vault.ID
		saveErr  error
		finished = func() error {
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			node.Content = append(node.Content, content...)
			return saveErr
		}
	)
	for i := 0; ; i++ {
		if err := b.ctx.Err(); err != nil {
			finished()
			return size, false, err
		}
		buf := b.getBuf()
		data, err := ch.Next(buf[:0])
		if err == io.EOF {
			b.putBuf(buf)
			break
		}
		if err != nil {
			b.putBuf(buf)
			finished()
			return size, false, err
		}
		mu.Lock()
		content = append(content, vault.ID{})
		failed := saveErr != nil
		mu.Unlock()
		if failed {
			b.putBuf(data)
			break
		}
		size += uint64(len(data))
		b.saving <- struct{}{}
		wg.Add(1)
		go func(i int, data []byte) {
			defer func() {
				b.putBuf(data)
				<-b.saving
				wg.Done()
			}()
			id, added, err := b.store.SaveBlob(b.ctx, vault.DataBlob, data)
			mu.Lock()
			if err != nil {
				if saveErr == nil {
					saveErr = err
				}
				mu.Unlock()
				b.fail(err)
				return
			}
			content[i] = id
			mu.Unlock()
			n := uint64(len(data))
			b.count(func(s *Summary) {
				s.BytesRead += n
				if added {
					s.NewBlobs++
					s.NewBytes += n
				}
			})
			b.progress(func(s *Status) { s.Bytes += n })
		}(i, data)
	}
	if err := finished(); err != nil {
		return size, false, err
	}
	return size, false, nil
}

// getBuf returns a chunk buffer from the pool; putBuf returns one.
func (b *backup) getBuf() []byte {
	if v, ok := b.bufs.Get().(*[]byte); ok {
		return (*v)[:0]
	}
	return nil
}

func (b *backup) putBuf(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	buf = buf[:0]
	b.bufs.Put(&buf)
}
