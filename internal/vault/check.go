package vault

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"sort"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/pack"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

// CheckOptions select how much Check reads.
type CheckOptions struct {
	// ReadData reads every selected pack whole: its name hash, its header, and every blob
	// (authenticated, decompressed, ID recomputed).
	ReadData bool
	// Subset and Of select packs for ReadData: the packs whose bucket (first four ID bytes,
	// big-endian, modulo Of) is Subset-1. Subsets 1..Of together read every pack exactly
	// once. Zero Of reads every pack.
	Subset, Of int
	// Progress, if set, is called after each pack read with the packs read so far and the
	// number selected.
	Progress func(done, total int)
}

// Problem is one finding of Check.
type Problem struct {
	What   string   // e.g. "missing pack", "damaged blob", "unreadable point"
	Object string   // the file or blob concerned, e.g. "packs/ab12..."
	Err    string   // details
	Blobs  []ID     // blobs affected
	Points []ID     // points affected
	Paths  []string // paths inside those points (trees, files) affected
}

func (p Problem) String() string {
	s := p.What + ": " + p.Object
	if p.Err != "" {
		s += ": " + p.Err
	}
	return s
}

// CheckReport lists what Check found. Errors are damage; Warnings are harmless leftovers
// (unreferenced packs, superseded index files) that prune removes.
type CheckReport struct {
	Errors        []Problem
	Warnings      []Problem
	Keys          int
	IndexFiles    int
	Packs         int // packs listed by the index
	PacksRead     int
	Points        int
	Trees         int
	BlobsVerified int
}

// OK reports whether no errors were found.
func (c *CheckReport) OK() bool { return len(c.Errors) == 0 }

func (c *CheckReport) errorf(what, object string, err error) *Problem {
	p := Problem{What: what, Object: object}
	if err != nil {
		p.Err = err.Error()
	}
	c.Errors = append(c.Errors, p)
	return &c.Errors[len(c.Errors)-1]
}

// InBucket reports whether pack id falls in subset (1-based) of of.
func InBucket(id [32]byte, subset, of int) bool {
	if of <= 0 {
		return true
	}
	return int(binary.BigEndian.Uint32(id[:4])%uint32(of)) == subset-1
}

// Check verifies the vault's structure and, with ReadData, its contents. It takes a shared
// lock and writes nothing else. The error is non-nil only if Check itself could not run (a
// lock, a listing, bad options); damage is reported in CheckReport.
func (r *Repository) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	const op = "vault.Check"
	if opts.Of < 0 || (opts.Of > 0 && (opts.Subset < 1 || opts.Subset > opts.Of)) {
		return nil, errs.Errorf(op, errs.Invalid, "subset %d/%d: want 1 ≤ subset ≤ of", opts.Subset, opts.Of)
	}
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))
	rep := &CheckReport{}

	// Config and keys.
	if cb, err := backend.LoadAll(ctx, r.be, backend.Handle{Type: backend.Config}, 0, 0); err != nil {
		rep.errorf("unreadable config", "config", err)
	} else if pt, err := seal.Open(nil, &r.key.Enc, configContext(), cb); err != nil {
		rep.errorf("damaged config", "config", err)
	} else if _, _, err := decodeConfig(pt); err != nil {
		rep.errorf("damaged config", "config", err)
	}
	keyInfos, err := listNames(ctx, r.be, backend.Key)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	for _, fi := range keyInfos {
		b, err := backend.LoadAll(ctx, r.be, backend.Handle{Type: backend.Key, Name: fi.Name}, 0, 0)
		if err == nil {
			_, err = decodeKeyFile(fi.Name, b)
		}
		if err != nil {
			rep.errorf("damaged key file", "keys/"+fi.Name, err)
			continue
		}
		rep.Keys++
	}

	// Index files.
	idxInfos, err := listNames(ctx, r.be, backend.Index)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	files := make(map[ID]*index.File)
	for _, fi := range idxInfos {
		id, err := ParseID(fi.Name)
		if err != nil {
			rep.errorf("stray file", "index/"+fi.Name, fmt.Errorf("not an index file name"))
			continue
		}
		pt, err := r.loadSealed(ctx, backend.Handle{Type: backend.Index, Name: fi.Name}, seal.Index, index.MaxFileSize)
		if err != nil {
			rep.errorf("damaged index file", "index/"+fi.Name, err)
			continue
		}
		f, err := index.Decode(pt)
		if err != nil {
			rep.errorf("damaged index file", "index/"+fi.Name, err)
			continue
		}
		files[id] = f
		rep.IndexFiles++
	}
	superseded := supersededSet(files)
	idx := index.New()
	packBlobs := make(map[[32]byte][]pack.Blob)
	for id, f := range files {
		if superseded[id] {
			rep.Warnings = append(rep.Warnings, Problem{What: "superseded index file still present", Object: "index/" + id.String()})
			continue
		}
		idx.AddFile(f)
		for _, p := range f.Packs {
			packBlobs[p.ID] = append(packBlobs[p.ID], p.Blobs...)
		}
	}
	rep.Packs = len(packBlobs)

	// Packs: existence and size, then contents.
	stored := make(map[string]int64)
	packInfos, err := listNames(ctx, r.be, backend.Pack)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	for _, fi := range packInfos {
		stored[fi.Name] = fi.Size
	}
	damaged := make(map[index.Key]string) // blob -> why
	markPack := func(pid [32]byte, why string) {
		for _, b := range packBlobs[pid] {
			damaged[index.Key{Type: b.Type, ID: b.ID}] = why
		}
	}
	var toRead [][32]byte
	for pid, blobs := range packBlobs {
		name := hex.EncodeToString(pid[:])
		size, ok := stored[name]
		var end int64
		for _, b := range blobs {
			end = max(end, int64(b.Offset)+int64(b.Length))
		}
		switch {
		case !ok:
			p := rep.errorf("missing pack", "packs/"+name, fmt.Errorf("listed by the index but not stored"))
			p.Blobs = blobIDs(blobs)
			markPack(pid, "pack "+name[:8]+" is missing")
			continue
		case size < end+int64(seal.Overhead)+pack.TrailerSize:
			p := rep.errorf("truncated pack", "packs/"+name, fmt.Errorf("%d bytes stored, its blobs alone need %d", size, end+int64(seal.Overhead)+pack.TrailerSize))
			p.Blobs = blobIDs(blobs)
			markPack(pid, "pack "+name[:8]+" is truncated")
			continue
		}
		if opts.ReadData && InBucket(pid, opts.Subset, opts.Of) {
			toRead = append(toRead, pid)
		}
	}
	for _, fi := range packInfos {
		id, err := ParseID(fi.Name)
		if err != nil {
			rep.errorf("stray file", "packs/"+fi.Name, fmt.Errorf("not a pack name"))
			continue
		}
		if _, ok := packBlobs[id]; !ok {
			rep.Warnings = append(rep.Warnings, Problem{What: "unreferenced pack", Object: "packs/" + fi.Name,
				Err: "not listed by any index (left by an interrupted backup or prune); prune removes it"})
		}
	}
	sort.Slice(toRead, func(i, j int) bool { return string(toRead[i][:]) < string(toRead[j][:]) })
	for i, pid := range toRead {
		if err := ctx.Err(); err != nil {
			return nil, errs.E(op, errs.Canceled, err)
		}
		r.checkPack(ctx, rep, pid, packBlobs[pid], damaged)
		rep.PacksRead++
		if opts.Progress != nil {
			opts.Progress(i+1, len(toRead))
		}
	}

	// Points and the trees under them.
	pointInfos, err := listNames(ctx, r.be, backend.Point)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	// Walk with the index just read, not the one loaded at Open.
	walker := &Repository{be: r.be, opts: r.opts, cfg: r.cfg, key: r.key, vault: r.vault}
	walker.idx.Store(idx)
	walker.hashers.New = r.hashers.New
	affected := make(map[string]*Problem)
	addRef := func(what, object, why string, p ID, where string, blob ID) {
		pr, ok := affected[what+object]
		if !ok {
			pr = &Problem{What: what, Object: object, Err: why, Blobs: []ID{blob}}
			affected[what+object] = pr
		}
		if len(pr.Points) == 0 || pr.Points[len(pr.Points)-1] != p {
			pr.Points = append(pr.Points, p)
		}
		if len(pr.Paths) < 100 {
			pr.Paths = append(pr.Paths, where)
		}
	}
	for _, fi := range pointInfos {
		id, err := ParseID(fi.Name)
		if err != nil {
			rep.errorf("stray file", "points/"+fi.Name, fmt.Errorf("not a point name"))
			continue
		}
		pt, err := r.LoadPoint(ctx, id)
		if err != nil {
			rep.errorf("unreadable point", "points/"+fi.Name, err).Points = []ID{id}
			continue
		}
		rep.Points++
		seen := make(map[ID]bool)
		err = walker.walkTrees(ctx, pt.Root, "/", seen, func(dir string, tid ID, t *Tree, terr error) error {
			if terr != nil {
				if errs.Is(terr, errs.Canceled) {
					return terr
				}
				addRef("unreadable tree", "tree "+tid.String(), terr.Error(), id, dir, tid)
				return nil
			}
			rep.Trees++
			for _, n := range t.Nodes {
				for _, c := range n.Content {
					k := index.Key{Type: uint8(DataBlob), ID: c}
					where := path.Join(dir, string(n.Name))
					if why, bad := damaged[k]; bad {
						addRef("damaged data blob", "data blob "+c.String(), why, id, where, c)
					} else if !idx.Has(k.Type, k.ID) {
						addRef("missing data blob", "data blob "+c.String(), "not in the index", id, where, c)
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, errs.E(op, errs.KindOf(err), err)
		}
	}
	keys := make([]string, 0, len(affected))
	for k := range affected {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rep.Errors = append(rep.Errors, *affected[k])
	}
	return rep, nil
}

func blobIDs(blobs []pack.Blob) []ID {
	out := make([]ID, len(blobs))
	for i, b := range blobs {
		out[i] = ID(b.ID)
	}
	return out
}

// checkPack reads one pack whole and verifies its name, header and every blob.
func (r *Repository) checkPack(ctx context.Context, rep *CheckReport, pid [32]byte, indexed []pack.Blob, damaged map[index.Key]string) {
	name := hex.EncodeToString(pid[:])
	obj := "packs/" + name
	fail := func(what string, err error) {
		p := rep.errorf(what, obj, err)
		p.Blobs = blobIDs(indexed)
		for _, b := range indexed {
			damaged[index.Key{Type: b.Type, ID: b.ID}] = "pack " + name[:8] + ": " + what
		}
	}
	data, err := backend.LoadAll(ctx, r.be, packHandle(pid), 0, 0)
	if err != nil {
		fail("unreadable pack", err)
		return
	}
	if pack.ID(data) != pid {
		fail("damaged pack", fmt.Errorf("content does not hash to its name (storage corruption)"))
		// Still try the blobs, to name exactly which ones are lost.
	}
	header, err := pack.Parse(&r.key.Enc, r.vault, data)
	if err != nil {
		fail("damaged pack header", err)
		return
	}
	inHeader := make(map[index.Key]pack.Blob, len(header))
	for _, b := range header {
		inHeader[index.Key{Type: b.Type, ID: b.ID}] = b
	}
	var buf []byte
	for _, b := range indexed {
		k := index.Key{Type: b.Type, ID: b.ID}
		if h, ok := inHeader[k]; !ok || h != b {
			p := rep.errorf("index disagrees with pack header", obj, fmt.Errorf("%v blob %s", BlobType(b.Type), ID(b.ID)))
			p.Blobs = []ID{ID(b.ID)}
			damaged[k] = "index and pack header disagree"
			continue
		}
		out, err := r.openBlob(buf, &b, data[b.Offset:b.Offset+b.Length])
		if err != nil {
			p := rep.errorf("damaged blob", fmt.Sprintf("%v blob %s in %s", BlobType(b.Type), ID(b.ID), obj), err)
			p.Blobs = []ID{ID(b.ID)}
			damaged[k] = "fails authentication in pack " + name[:8]
			continue
		}
		buf = out
		rep.BlobsVerified++
	}
}
