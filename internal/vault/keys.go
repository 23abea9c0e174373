package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

// KDFParams are the argon2id parameters that turn a password into a key-file key.
type KDFParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultKDF is argon2id with 19 MiB, two passes and one thread: one of OWASP's
// recommended settings for password storage. Every command pays it once, so it is kept
// small (about 50 ms here); larger memory costs mostly page faults. A vault's key files
// record their own parameters, so changing this later affects new keys only, and
// REWIND_KDF sets stronger parameters for a new key.
var DefaultKDF = KDFParams{Time: 2, Memory: 19 << 10, Threads: 1}

const (
	keyFileVersion = 1
	maxKeyFile     = 64 << 10
	// MaxKeysTried bounds how many key files Open tries (each costs one KDF run).
	MaxKeysTried = 20
	maxKDFMemory = 4 << 20 // KiB: 4 GiB
	maxKDFTime   = 64
	masterSize   = 3 * seal.KeySize
)

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.Memory < 8*uint32(p.Threads) || p.Memory > maxKDFMemory || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters time=%d memory=%d KiB threads=%d are out of range (time 1..%d, memory 8×threads..%d KiB, threads ≥ 1)",
			p.Time, p.Memory, p.Threads, maxKDFTime, maxKDFMemory)
	}
	return nil
}

// masterKey is the vault's secret material, random at Init and stored only sealed in key
// files.
type masterKey struct {
	Enc     [seal.KeySize]byte // seals every file and blob
	MAC     [seal.KeySize]byte // keys blob IDs (BLAKE3 keyed)
	Chunker [seal.KeySize]byte // keys the chunker's gear table
}

func (m *masterKey) bytes() []byte {
	out := make([]byte, 0, masterSize)
	out = append(out, m.Enc[:]...)
	out = append(out, m.MAC[:]...)
	return append(out, m.Chunker[:]...)
}

type kdfJSON struct {
	Name    string `json:"name"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory"`
	Threads uint8  `json:"threads"`
	Salt    []byte `json:"salt"`
}

type keyFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	User    string    `json:"user,omitempty"`
	KDF     kdfJSON   `json:"kdf"`
	Data    []byte    `json:"data"`
}

// KeyInfo describes one key file.
type KeyInfo struct {
	Name    string
	Created time.Time
	Host    string
	User    string
	KDF     KDFParams
	Current bool // the key this Repository was opened with
}

func decodeKeyFile(name string, b []byte) (*keyFile, error) {
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("keys/%s: %d bytes exceeds the %d-byte cap", name, len(b), maxKeyFile)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("keys/%s: %v", name, err)
	}
	if kf.Version != keyFileVersion {
		return nil, fmt.Errorf("keys/%s: version %d is not supported (this build reads %d)", name, kf.Version, keyFileVersion)
	}
	if kf.KDF.Name != "argon2id" {
		return nil, fmt.Errorf("keys/%s: unknown KDF %q", name, kf.KDF.Name)
	}
	p := KDFParams{Time: kf.KDF.Time, Memory: kf.KDF.Memory, Threads: kf.KDF.Threads}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("keys/%s: %v", name, err)
	}
	if len(kf.KDF.Salt) < 16 || len(kf.KDF.Salt) > 64 {
		return nil, fmt.Errorf("keys/%s: salt of %d bytes (want 16..64)", name, len(kf.KDF.Salt))
	}
	if len(kf.Data) != masterSize+seal.Overhead {
		return nil, fmt.Errorf("keys/%s: sealed key material of %d bytes, want %d", name, len(kf.Data), masterSize+seal.Overhead)
	}
	return &kf, nil
}

func keyContext(name string) seal.Context {
	return seal.Context{Type: seal.Key, Name: []byte(name)}
}

// openKeyFile derives the key-file key from password and unseals the master key.
func openKeyFile(name string, kf *keyFile, password string) (*masterKey, error) {
	kk := argon2.IDKey([]byte(password), kf.KDF.Salt, kf.KDF.Time, kf.KDF.Memory, kf.KDF.Threads, seal.KeySize)
	var k [seal.KeySize]byte
	copy(k[:], kk)
	pt, err := seal.Open(nil, &k, keyContext(name), kf.Data)
	if err != nil {
		return nil, err
	}
	var m masterKey
	copy(m.Enc[:], pt[0:32])
	copy(m.MAC[:], pt[32:64])
	copy(m.Chunker[:], pt[64:96])
	return &m, nil
}

// newKeyFile seals m under password and returns the file's name and bytes.
func newKeyFile(m *masterKey, password string, p KDFParams, host, user string, now time.Time) (string, []byte, error) {
	if password == "" {
		return "", nil, errs.Errorf("vault.AddKey", errs.Invalid, "empty password").WithHint("choose a non-empty password")
	}
	if err := p.validate(); err != nil {
		return "", nil, errs.E("vault.AddKey", errs.Invalid, err)
	}
	name := randomID().String()
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return "", nil, errs.E("vault.AddKey", errs.Internal, err)
	}
	kk := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, seal.KeySize)
	var k [seal.KeySize]byte
	copy(k[:], kk)
	sealed, err := seal.Seal(nil, &k, keyContext(name), m.bytes())
	if err != nil {
		return "", nil, err
	}
	kf := keyFile{Version: keyFileVersion, Created: now.UTC(), Host: host, User: user,
		KDF:  kdfJSON{Name: "argon2id", Time: p.Time, Memory: p.Memory, Threads: p.Threads, Salt: salt},
		Data: sealed}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return "", nil, errs.E("vault.AddKey", errs.Internal, err)
	}
	return name, append(b, '\n'), nil
}

func randomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the runtime guarantees it does not
	}
	return id
}

func listNames(ctx context.Context, be backend.Backend, t backend.FileType) ([]backend.FileInfo, error) {
	var out []backend.FileInfo
	err := be.List(ctx, t, func(fi backend.FileInfo) error {
		out = append(out, fi)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// findKey tries up to MaxKeysTried key files and returns the first that opens with password.
func findKey(ctx context.Context, be backend.Backend, password string) (*masterKey, string, *keyFile, error) {
	const op = "vault.Open"
	infos, err := listNames(ctx, be, backend.Key)
	if err != nil {
		return nil, "", nil, errs.E(op, errs.KindOf(err), fmt.Errorf("listing key files: %w", err))
	}
	if len(infos) == 0 {
		return nil, "", nil, errs.Errorf(op, errs.Corrupt, "vault at %s has a config but no key files", be.Location()).
			WithHint("restore the keys/ directory from a copy of the vault")
	}
	var problems []string
	for i, fi := range infos {
		if i == MaxKeysTried {
			problems = append(problems, fmt.Sprintf("%d more key files not tried (at most %d are)", len(infos)-i, MaxKeysTried))
			break
		}
		b, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Key, Name: fi.Name}, 0, 0)
		if err != nil {
			if errs.Is(err, errs.Canceled) {
				return nil, "", nil, err
			}
			problems = append(problems, fmt.Sprintf("keys/%s: %v", fi.Name, err))
			continue
		}
		kf, err := decodeKeyFile(fi.Name, b)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		m, err := openKeyFile(fi.Name, kf, password)
		if err == nil {
			return m, fi.Name, kf, nil
		}
	}
	msg := fmt.Sprintf("wrong password for the vault at %s: no key file opens with it (%d tried)", be.Location(), min(len(infos), MaxKeysTried))
	if len(problems) > 0 {
		msg += "; also: " + strings.Join(problems, "; ")
	}
	return nil, "", nil, errs.Errorf(op, errs.Unauthorized, "%s", msg).
		WithHint("check the password (REWIND_PASSWORD or the password file); a damaged key file also looks like a wrong password")
}

// AddKey adds a key file that opens the vault with password and verifies it opens before
// returning. Zero kdf means the parameters of the key in use.
func (r *Repository) AddKey(ctx context.Context, password string, kdf KDFParams) (KeyInfo, error) {
	const op = "vault.AddKey"
	if kdf == (KDFParams{}) {
		kdf = r.kdf
	}
	now := r.now()
	name, b, err := newKeyFile(r.key, password, kdf, r.opts.Host, r.opts.User, now)
	if err != nil {
		return KeyInfo{}, err
	}
	h := backend.Handle{Type: backend.Key, Name: name}
	if err := r.be.Save(ctx, h, b); err != nil {
		return KeyInfo{}, errs.E(op, errs.KindOf(err), fmt.Errorf("saving %v: %w", h, err))
	}
	back, err := backend.LoadAll(ctx, r.be, h, 0, 0)
	if err == nil {
		var kf *keyFile
		if kf, err = decodeKeyFile(name, back); err == nil {
			var m *masterKey
			if m, err = openKeyFile(name, kf, password); err == nil && !bytes.Equal(m.bytes(), r.key.bytes()) {
				err = fmt.Errorf("key material differs")
			}
		}
	}
	if err != nil {
		_ = r.be.Remove(ctx, h)
		return KeyInfo{}, errs.Errorf(op, errs.Corrupt, "new key %s does not open the vault after writing (%v); it was removed", name, err)
	}
	return KeyInfo{Name: name, Created: now.UTC(), Host: r.opts.Host, User: r.opts.User, KDF: kdf}, nil
}

// ListKeys returns every key file, sorted by creation time.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	const op = "vault.ListKeys"
	infos, err := listNames(ctx, r.be, backend.Key)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), err)
	}
	var out []KeyInfo
	for _, fi := range infos {
		b, err := backend.LoadAll(ctx, r.be, backend.Handle{Type: backend.Key, Name: fi.Name}, 0, 0)
		if err != nil {
			return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("keys/%s: %w", fi.Name, err))
		}
		kf, err := decodeKeyFile(fi.Name, b)
		if err != nil {
			return nil, errs.E(op, errs.Corrupt, err)
		}
		out = append(out, KeyInfo{Name: fi.Name, Created: kf.Created, Host: kf.Host, User: kf.User,
			KDF: KDFParams{Time: kf.KDF.Time, Memory: kf.KDF.Memory, Threads: kf.KDF.Threads}, Current: fi.Name == r.currentKey()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// RemoveKey deletes key file name. It refuses the key in use and the last key.
func (r *Repository) RemoveKey(ctx context.Context, name string) error {
	const op = "vault.RemoveKey"
	if name == r.currentKey() {
		return errs.Errorf(op, errs.Conflict, "key %s is the key in use", name).
			WithHint("open the vault with another key's password to remove this one")
	}
	if _, err := hex.DecodeString(name); err != nil || name == "" {
		return errs.Errorf(op, errs.Invalid, "%q is not a key name", name).WithHint("see 'rewind key list'")
	}
	infos, err := listNames(ctx, r.be, backend.Key)
	if err != nil {
		return errs.E(op, errs.KindOf(err), err)
	}
	found := false
	for _, fi := range infos {
		found = found || fi.Name == name
	}
	if !found {
		return errs.Errorf(op, errs.NotFound, "key %s does not exist", name).WithHint("see 'rewind key list'")
	}
	if len(infos) < 2 {
		return errs.Errorf(op, errs.Conflict, "key %s is the last key of the vault", name)
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.Key, Name: name}); err != nil {
		return errs.E(op, errs.KindOf(err), err)
	}
	return nil
}

// ChangePassword adds a key for newPassword, verifies it, then removes the key in use. The
// Repository continues with the new key.
func (r *Repository) ChangePassword(ctx context.Context, newPassword string) (KeyInfo, error) {
	old := r.currentKey()
	ki, err := r.AddKey(ctx, newPassword, KDFParams{})
	if err != nil {
		return KeyInfo{}, err
	}
	r.keyMu.Lock()
	r.keyName = ki.Name
	r.keyMu.Unlock()
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.Key, Name: old}); err != nil {
		return ki, errs.E("vault.ChangePassword", errs.KindOf(err),
			fmt.Errorf("new key %s added, but removing the old key %s failed: %w", ki.Name, old, err)).
			WithHint("remove the old key with 'rewind key remove'")
	}
	ki.Current = true
	return ki, nil
}
