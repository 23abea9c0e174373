package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

const maxLockFile = 16 << 10

// lockFile is the plaintext of locks/<id>.
type lockFile struct {
	Version   int           `json:"version"`
	Host      string        `json:"host"`
	PID       int           `json:"pid"`
	Exclusive bool          `json:"exclusive"`
	Created   time.Time     `json:"created"`
	Refreshed time.Time     `json:"refreshed"`
	TTL       time.Duration `json:"ttl_ns"`
}

// LockInfo describes a lock file.
type LockInfo struct {
	Name      string
	Host      string
	PID       int
	Exclusive bool
	Created   time.Time
	Refreshed time.Time
	TTL       time.Duration
	Stale     bool
}

// Lock is a lease on the vault: shared (backup, copy, check, restore) or exclusive (prune,
// forget). It is refreshed in the background every TTL/6 until Unlock or the Repository's
// Close. Its methods are safe for concurrent use.
type Lock struct {
	r    *Repository
	name string
	file lockFile

	mu          sync.Mutex
	lastRefresh time.Time // r.now() at the last successful write
	lost        error     // set once the lease is known lost
	stop        chan struct{}
	done        chan struct{}
	released    bool
}

func (r *Repository) decodeLock(name string, pt []byte) (*lockFile, error) {
	var lf lockFile
	if err := json.Unmarshal(pt, &lf); err != nil {
		return nil, errs.Errorf("vault.Lock", errs.Corrupt, "locks/%s: %v", name, err)
	}
	if lf.Version != 1 {
		return nil, errs.Errorf("vault.Lock", errs.Corrupt, "locks/%s: version %d is not supported", name, lf.Version)
	}
	if lf.TTL <= 0 {
		return nil, errs.Errorf("vault.Lock", errs.Corrupt, "locks/%s: lease of %s is not positive", name, lf.TTL)
	}
	return &lf, nil
}

// stale reports whether a lock no longer counts: its holder stopped refreshing it for
// longer than its lease (plus the allowed clock skew), or it was taken on this host by a
// process that no longer exists (so a killed backup does not block prune for a whole lease).
func (r *Repository) stale(lf *lockFile) bool {
	if r.now().Sub(lf.Refreshed) > lf.TTL+r.opts.ClockSkew {
		return true
	}
	return lf.Host == r.opts.Host && lf.PID > 0 && lf.PID != os.Getpid() && !processExists(lf.PID)
}

// processExists reports whether a process with this ID exists on this host. A process
// that exists but belongs to another user (EPERM) counts as existing.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Locks returns every lock file, marking stale ones.
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	infos, err := listNames(ctx, r.be, backend.Lock)
	if err != nil {
		return nil, errs.E("vault.Locks", errs.KindOf(err), fmt.Errorf("listing locks: %w", err))
	}
	var out []LockInfo
	for _, fi := range infos {
		pt, err := r.loadSealed(ctx, backend.Handle{Type: backend.Lock, Name: fi.Name}, seal.Lock, maxLockFile)
		if errs.Is(err, errs.NotFound) {
			continue // released between listing and reading
		}
		if err != nil {
			return nil, err
		}
		lf, err := r.decodeLock(fi.Name, pt)
		if err != nil {
			return nil, err
		}
		out = append(out, LockInfo{Name: fi.Name, Host: lf.Host, PID: lf.PID, Exclusive: lf.Exclusive,
			Created: lf.Created, Refreshed: lf.Refreshed, TTL: lf.TTL, Stale: r.stale(lf)})
	}
	return out, nil
}

// Lock takes a shared or exclusive lock. It writes its lock file, then lists the others; on
// a conflict with a lock that is not stale it removes its own and retries until LockWait has
// passed, then returns Locked naming the holder. Stale locks are ignored (never removed; see
// Unlock).
func (r *Repository) Lock(ctx context.Context, exclusive bool) (*Lock, error) {
	const op = "vault.Lock"
	deadline := r.now().Add(r.opts.LockWait)
	backoff := 50 * time.Millisecond
	for {
		l, conflict, err := r.tryLock(ctx, exclusive)
		if err != nil {
			return nil, err
		}
		if conflict == nil {
			return l, nil
		}
		if !r.now().Before(deadline) {
			kind := "shared"
			if conflict.Exclusive {
				kind = "exclusive"
			}
			return nil, errs.Errorf(op, errs.Locked, "vault at %s is locked: %s lock held by %s (pid %d), refreshed %s ago",
				r.be.Location(), kind, conflict.Host, conflict.PID, r.now().Sub(conflict.Refreshed).Round(time.Second)).
				WithHint("wait for the other operation to finish; if its process is gone, run 'rewind unlock --remove-stale' once the lock is stale")
		}
		wait := backoff/2 + rand.N(backoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errs.E(op, errs.Canceled, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *Repository) tryLock(ctx context.Context, exclusive bool) (*Lock, *LockInfo, error) {
	now := r.now()
	l := &Lock{r: r, name: randomID().String(), file: lockFile{Version: 1, Host: r.opts.Host, PID: os.Getpid(),
		Exclusive: exclusive, Created: now.UTC(), Refreshed: now.UTC(), TTL: r.opts.LockTTL}}
	if err := l.write(ctx); err != nil {
		return nil, nil, err
	}
	l.lastRefresh = now
	others, err := r.Locks(ctx)
	if err != nil {
		_ = r.be.Remove(ctx, l.handle())
		return nil, nil, err
	}
	for i := range others {
		o := &others[i]
		if o.Name == l.name || o.Stale || (!exclusive && !o.Exclusive) {
			continue
		}
		if err := r.be.Remove(ctx, l.handle()); err != nil {
			return nil, nil, errs.E("vault.Lock", errs.KindOf(err), fmt.Errorf("removing own lock after a conflict: %w", err))
		}
		return nil, o, nil
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	r.lockMu.Lock()
	if r.closed {
		r.lockMu.Unlock()
		_ = r.be.Remove(ctx, l.handle())
		return nil, nil, errs.Errorf("vault.Lock", errs.Invalid, "repository is closed")
	}
	r.locks[l] = struct{}{}
	r.lockMu.Unlock()
	r.wg.Add(1)
	go l.refresher()
	return l, nil, nil
}

func (l *Lock) handle() backend.Handle { return backend.Handle{Type: backend.Lock, Name: l.name} }

func (l *Lock) write(ctx context.Context) error {
	b, err := json.Marshal(l.file)
	if err != nil {
		return errs.E("vault.Lock", errs.Internal, err)
	}
	return l.r.saveSealed(ctx, l.handle(), seal.Lock, b)
}

func (l *Lock) refresher() {
	defer l.r.wg.Done()
	defer close(l.done)
	t := time.NewTicker(max(l.file.TTL/6, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.r.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(l.r.ctx, l.file.TTL/6+time.Second)
			_ = l.Refresh(ctx) // a failed refresh shows up in Validate once the lease runs out
			cancel()
		}
	}
}

// Refresh extends the lease now: it checks the lock file still exists (if another process
// removed it, the lease is lost for good) and rewrites it with a new refresh time. The
// background refresher calls it every TTL/6; tests call it directly.
func (l *Lock) Refresh(ctx context.Context) error {
	const op = "vault.Lock.Refresh"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if l.released {
		return errs.Errorf(op, errs.Invalid, "lock %s was released", l.name[:8])
	}
	if _, err := l.r.be.Stat(ctx, l.handle()); err != nil {
		if errs.Is(err, errs.NotFound) {
			l.lost = errs.Errorf(op, errs.Locked, "lock %s was removed by another process; the lease is lost", l.name[:8]).
				WithHint("another 'rewind unlock --remove-stale' or prune judged this operation dead; run it again")
			return l.lost
		}
		return errs.E(op, errs.KindOf(err), err)
	}
	now := l.r.now()
	l.file.Refreshed = now.UTC()
	if err := l.write(ctx); err != nil {
		return err
	}
	l.lastRefresh = now
	return nil
}

// Validate reports whether the lease is still held, from what this process knows: the lock
// was not found removed and the last successful refresh is younger than the TTL. It does no
// I/O; the vault checks the lock file itself before committing (SavePoint, prune deletes).
func (l *Lock) Validate() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if l.released {
		return errs.Errorf("vault.Lock.Validate", errs.Locked, "lock %s was released", l.name[:8])
	}
	if age := l.r.now().Sub(l.lastRefresh); age >= l.file.TTL {
		return errs.Errorf("vault.Lock.Validate", errs.Locked, "lease lost: the lock was last refreshed %s ago, beyond its %s TTL", age.Round(time.Second), l.file.TTL).
			WithHint("the vault could not be reached to refresh the lock, or this process was suspended; run the operation again")
	}
	return nil
}

// revalidate checks the lease before a commit: Validate, then the lock file still exists.
func (l *Lock) revalidate(ctx context.Context) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if _, err := l.r.be.Stat(ctx, l.handle()); err != nil {
		if errs.Is(err, errs.NotFound) {
			l.mu.Lock()
			l.lost = errs.Errorf("vault.Lock.Validate", errs.Locked, "lock %s was removed by another process; the lease is lost", l.name[:8])
			l.mu.Unlock()
			return l.lost
		}
		return errs.E("vault.Lock.Validate", errs.KindOf(err), err)
	}
	return nil
}

// Exclusive reports whether l is an exclusive lock.
func (l *Lock) Exclusive() bool { return l.file.Exclusive }

// Unlock stops refreshing and removes the lock file.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.r.lockMu.Lock()
	delete(l.r.locks, l)
	l.r.lockMu.Unlock()
	err := l.r.be.Remove(ctx, l.handle())
	if err != nil && !errs.Is(err, errs.NotFound) {
		return errs.E("vault.Unlock", errs.KindOf(err), fmt.Errorf("removing %v: %w", l.handle(), err))
	}
	return nil
}

// heldLocks returns this Repository's locks.
func (r *Repository) heldLocks() []*Lock {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	out := make([]*Lock, 0, len(r.locks))
	for l := range r.locks {
		out = append(out, l)
	}
	return out
}

// requireLease re-validates every lock this Repository holds and requires at least one
// (exclusive, if asked).
func (r *Repository) requireLease(ctx context.Context, op string, exclusive bool) error {
	locks := r.heldLocks()
	found := false
	for _, l := range locks {
		if err := l.revalidate(ctx); err != nil {
			return errs.E(op, errs.Locked, fmt.Errorf("nothing was written: %w", err)).WithHint(errs.HintOf(err))
		}
		found = found || !exclusive || l.Exclusive()
	}
	if !found {
		what := "a lock"
		if exclusive {
			what = "an exclusive lock"
		}
		return errs.Errorf(op, errs.Internal, "%s needs %s on the vault; none is held", strings.TrimPrefix(op, "vault."), what)
	}
	return nil
}

// Unlock removes lock files of other processes: with removeStale, every stale lock;
// without, nothing (it lists them). It returns the locks removed.
func (r *Repository) Unlock(ctx context.Context, removeStale bool) ([]LockInfo, error) {
	all, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	if !removeStale {
		return nil, nil
	}
	var removed []LockInfo
	for _, li := range all {
		if !li.Stale {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: li.Name}); err != nil && !errs.Is(err, errs.NotFound) {
			return removed, errs.E("vault.Unlock", errs.KindOf(err), err)
		}
		removed = append(removed, li)
	}
	return removed, nil
}

// BreakLocks removes every lock file that host holds in the vault (never this Repository's
// own): for a server that knows that host's client is gone, such as an agent that stopped
// reporting, so that a prune does not wait out the lock's lease. It is safe even when the
// client is alive after all: before committing anything (a point, a deletion) a holder
// re-validates its lease and aborts without writing when its lock is gone. It returns the
// locks removed.
func (r *Repository) BreakLocks(ctx context.Context, host string) ([]LockInfo, error) {
	const op = "vault.BreakLocks"
	if host == "" {
		return nil, errs.Errorf(op, errs.Invalid, "no host given")
	}
	all, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	r.lockMu.Lock()
	own := make(map[string]bool, len(r.locks))
	for l := range r.locks {
		own[l.name] = true
	}
	r.lockMu.Unlock()
	var removed []LockInfo
	for _, li := range all {
		if li.Host != host || own[li.Name] {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: li.Name}); err != nil && !errs.Is(err, errs.NotFound) {
			return removed, errs.E(op, errs.KindOf(err), err)
		}
		removed = append(removed, li)
	}
	return removed, nil
}
