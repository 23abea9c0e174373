package vault

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/chunker"
	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

// InitOptions configure a new vault. Zero fields take the documented defaults.
type InitOptions struct {
	KDF           KDFParams      // default DefaultKDF
	PackSize      int            // bytes; default DefaultPackSize
	ChunkerParams chunker.Params // default chunker.DefaultParams
	Host, User    string         // recorded in the first key file; default this machine's
	// Runtime configures the returned Repository as OpenOptions configure an opened one.
	Runtime OpenOptions
}

// OpenOptions configure an opened Repository. Zero fields take the documented defaults.
type OpenOptions struct {
	Host     string        // recorded in locks and new keys; default os.Hostname
	User     string        // recorded in new keys; default the current user
	LockWait time.Duration // how long Lock retries a conflicting lock; default 0 (fail at once)
	LockTTL  time.Duration // lease of a lock; default 30 minutes
	// ClockSkew is how far another host's clock may be off before its lock counts as
	// stale: a lock is stale when now - refreshed > its TTL + ClockSkew. Default 2 minutes;
	// negative means zero.
	ClockSkew time.Duration
	Now       func() time.Time // default time.Now
	Uploaders int              // concurrent pack uploads; default 4
	// Progress, if set, is called (from upload goroutines, not concurrently) after each
	// pack is stored, with cumulative counters.
	Progress func(SaveStats)
	// Hooks are for tests only.
	Hooks Hooks
}

// Hooks let tests corrupt data at precise points; production code leaves them nil.
type Hooks struct {
	AfterSeal    func(t BlobType, id ID, sealed []byte) // a blob was sealed, before verification
	BeforeUpload func(h backend.Handle, data []byte)    // a pack is about to be stored
}

// Repository is an open vault. Its methods are safe for concurrent use unless noted.
type Repository struct {
	be      backend.Backend
	opts    OpenOptions
	cfg     *config
	key     *masterKey
	keyMu   sync.Mutex // guards keyName
	keyName string
	kdf     KDFParams
	vault   [32]byte

	idxMu    sync.Mutex
	idx      atomic.Pointer[index.Index]
	idxFiles map[ID]bool // index files loaded (superseded ones excluded)
	// refreshMu serializes refreshIndex (reading index files written by others).
	refreshMu sync.Mutex

	hashers sync.Pool
	save    *saver

	lockMu sync.Mutex
	locks  map[*Lock]struct{}

	ctx    context.Context // lifetime of background work; canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

func (o *OpenOptions) defaults() {
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.User == "" {
		if u, err := user.Current(); err == nil {
			o.User = u.Username
		}
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Minute
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = 2 * time.Minute
	} else if o.ClockSkew < 0 {
		o.ClockSkew = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Uploaders <= 0 {
		o.Uploaders = 4
	}
}

// Init creates a vault on be: a first key file for password, then the config. It returns
// Exists if be already holds a config or key files.
func Init(ctx context.Context, be backend.Backend, password string, opts InitOptions) (*Repository, error) {
	const op = "vault.Init"
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config}); err == nil {
		return nil, errs.Errorf(op, errs.Exists, "a vault already exists at %s", be.Location()).
			WithHint("open it, or choose an empty location")
	} else if !errs.Is(err, errs.NotFound) {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("checking %s: %w", be.Location(), err))
	}
	keys, err := listNames(ctx, be, backend.Key)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	if len(keys) > 0 {
		return nil, errs.Errorf(op, errs.Exists, "%s holds key files but no config (an interrupted init?)", be.Location()).
			WithHint("remove the keys/ directory of the half-created vault, or choose an empty location")
	}
	if opts.KDF == (KDFParams{}) {
		opts.KDF = DefaultKDF
	}
	if opts.PackSize == 0 {
		opts.PackSize = DefaultPackSize
	}
	if opts.ChunkerParams == (chunker.Params{}) {
		opts.ChunkerParams = chunker.DefaultParams
	}
	rt := opts.Runtime
	if opts.Host != "" {
		rt.Host = opts.Host
	}
	if opts.User != "" {
		rt.User = opts.User
	}
	rt.defaults()
	vid := randomID()
	cfg := &config{Version: FormatVersion, ID: vid.String(), Created: rt.Now().UTC(),
		Chunker:  chunkerJSON{Min: opts.ChunkerParams.Min, Avg: opts.ChunkerParams.Avg, Max: opts.ChunkerParams.Max},
		PackSize: opts.PackSize, Compression: "zstd"}
	cb, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	if _, _, err := decodeConfig(cb); err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	var m masterKey
	for _, k := range []*[32]byte{&m.Enc, &m.MAC, &m.Chunker} {
		*k = randomID()
	}
	name, kb, err := newKeyFile(&m, password, opts.KDF, rt.Host, rt.User, rt.Now())
	if err != nil {
		return nil, err
	}
	sealedCfg, err := seal.Seal(nil, &m.Enc, configContext(), cb)
	if err != nil {
		return nil, err
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.Key, Name: name}, kb); err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("saving the first key: %w", err))
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.Config}, sealedCfg); err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("saving the config: %w", err))
	}
	return Open(ctx, be, password, rt)
}

// Open opens the vault on be with password and loads its index. It returns NotFound if be
// holds no vault, Unauthorized if no key file opens with password, Corrupt if the config or
// an index file is damaged. It writes nothing.
func Open(ctx context.Context, be backend.Backend, password string, opts OpenOptions) (*Repository, error) {
	const op = "vault.Open"
	opts.defaults()
	cb, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config}, 0, 0)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Errorf(op, errs.NotFound, "no vault at %s (no config file)", be.Location()).
			WithHint("check the location, or create a vault with 'rewind init'")
	}
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("reading the config: %w", err))
	}
	m, keyName, kf, err := findKey(ctx, be, password)
	if err != nil {
		return nil, err
	}
	pt, err := seal.Open(nil, &m.Enc, configContext(), cb)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("config: %w", err)).
			WithHint("the config file is damaged or does not belong to these keys; restore it from a copy of the vault")
	}
	cfg, vid, err := decodeConfig(pt)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, err)
	}
	r := &Repository{be: be, opts: opts, cfg: cfg, key: m, keyName: keyName, vault: vid,
		kdf:   KDFParams{Time: kf.KDF.Time, Memory: kf.KDF.Memory, Threads: kf.KDF.Threads},
		locks: make(map[*Lock]struct{})}
	r.hashers.New = func() any {
		h, err := blake3.NewKeyed(r.key.MAC[:])
		if err != nil {
			panic(err) // the key is always 32 bytes
		}
		return h
	}
	idx, files, err := r.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	r.idx.Store(idx)
	r.idxFiles = files
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.save = newSaver(r)
	return r, nil
}

// Close stops background work, releases this Repository's locks and discards blobs saved
// since the last Flush (their packs, if stored, are left unreferenced for prune). It returns
// the first error met releasing locks.
func (r *Repository) Close() error {
	r.lockMu.Lock()
	if r.closed {
		r.lockMu.Unlock()
		return nil
	}
	r.closed = true
	locks := make([]*Lock, 0, len(r.locks))
	for l := range r.locks {
		locks = append(locks, l)
	}
	r.lockMu.Unlock()
	var first error
	for _, l := range locks {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := l.Unlock(ctx); err != nil && first == nil {
			first = err
		}
		cancel()
	}
	r.cancel()
	r.wg.Wait()
	r.save.close()
	return first
}

// ID returns the vault ID (64 hex characters).
func (r *Repository) ID() string { return hex.EncodeToString(r.vault[:]) }

// Backend returns the storage backend.
func (r *Repository) Backend() backend.Backend { return r.be }

// PackSize returns the target pack size in bytes.
func (r *Repository) PackSize() int { return r.cfg.PackSize }

// ChunkerParams returns the vault's chunker parameters.
func (r *Repository) ChunkerParams() chunker.Params { return r.cfg.chunkerParams() }

// NewChunker returns a chunker over rd keyed with the vault's chunker secret.
func (r *Repository) NewChunker(rd io.Reader) *chunker.Chunker {
	return chunker.New(rd, r.key.Chunker, r.cfg.chunkerParams())
}

// currentKey returns the name of the key file this Repository was opened with.
func (r *Repository) currentKey() string {
	r.keyMu.Lock()
	defer r.keyMu.Unlock()
	return r.keyName
}

// blobIndex returns the in-memory index (prune replaces it).
func (r *Repository) blobIndex() *index.Index { return r.idx.Load() }

func (r *Repository) now() time.Time { return r.opts.Now() }

// blobID computes the keyed ID of a plaintext.
func (r *Repository) blobID(data []byte) ID {
	h := r.hashers.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	r.hashers.Put(h)
	return id
}

func (r *Repository) sealCtx(t seal.Type, name string) seal.Context {
	return seal.Context{Type: t, Vault: r.vault, Name: []byte(name)}
}

// saveSealed seals plaintext for file h and stores it.
func (r *Repository) saveSealed(ctx context.Context, h backend.Handle, t seal.Type, plaintext []byte) error {
	b, err := seal.Seal(nil, &r.key.Enc, r.sealCtx(t, h.Name), plaintext)
	if err != nil {
		return err
	}
	// Verify before storing: the bytes must open to what was sealed.
	if pt, err := seal.Open(nil, &r.key.Enc, r.sealCtx(t, h.Name), b); err != nil || string(pt) != string(plaintext) {
		return errs.Errorf("vault.save", errs.Corrupt, "%v: corruption detected before upload", h).
			WithHint("check this machine's memory; nothing was stored")
	}
	if err := r.be.Save(ctx, h, b); err != nil {
		return errs.E("vault.save", errs.KindOf(err), fmt.Errorf("saving %v: %w", h, err))
	}
	return nil
}

// loadSealed reads file h, authenticates it and returns its plaintext (at most max bytes).
func (r *Repository) loadSealed(ctx context.Context, h backend.Handle, t seal.Type, max int) ([]byte, error) {
	b, err := backend.LoadAll(ctx, r.be, h, 0, 0)
	if err != nil {
		return nil, errs.E("vault.load", errs.KindOf(err), fmt.Errorf("reading %v: %w", h, err))
	}
	if len(b) > max+seal.Overhead {
		return nil, errs.Errorf("vault.load", errs.Corrupt, "%v: %d bytes exceeds the %d-byte cap", h, len(b), max+seal.Overhead)
	}
	pt, err := seal.Open(nil, &r.key.Enc, r.sealCtx(t, h.Name), b)
	if err != nil {
		return nil, errs.E("vault.load", errs.Corrupt, fmt.Errorf("%v: %w", h, err)).
			WithHint("run 'rewind check' to see what is affected")
	}
	return pt, nil
}
