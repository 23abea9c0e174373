package vault_test

import (
	"context"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

func TestLockExclusion(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	a := initVault(t, be, "pw", vault.OpenOptions{Host: "host-a"})
	b := openVault(t, be, "pw", vault.OpenOptions{Host: "host-b"})

	s1, err := a.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Lock(ctx, false)
	if err != nil {
		t.Fatalf("two shared locks conflict: %v", err)
	}
	s2.Unlock(ctx)
	_, err = b.Lock(ctx, true)
	wantKind(t, err, errs.Locked, "host-a", "shared")
	s1.Unlock(ctx)

	x, err := a.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, false)
	wantKind(t, err, errs.Locked, "host-a", "exclusive", "pid")
	_, err = b.Lock(ctx, true)
	wantKind(t, err, errs.Locked)
	if n := names(t, be, backend.Lock); len(n) != 1 {
		t.Fatalf("failed attempts left lock files: %v", n)
	}
	x.Unlock(ctx)
	if _, err := b.Lock(ctx, true); err != nil {
		t.Fatal(err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	a := initVault(t, be, "pw", vault.OpenOptions{})
	b := openVault(t, be, "pw", vault.OpenOptions{LockWait: 30 * time.Second})
	x, err := a.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		l, err := b.Lock(ctx, false)
		if err == nil {
			err = l.Unlock(ctx)
		}
		done <- err
	}()
	x.Unlock(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	c := newClock()
	opts := vault.OpenOptions{Host: "dead-host", Now: c.Now, LockTTL: time.Minute, ClockSkew: -1}
	a := initVault(t, be, "pw", opts)
	if _, err := a.Lock(ctx, true); err != nil {
		t.Fatal(err)
	}
	c2 := newClock()
	c2.Add(2 * time.Minute) // the other host's view: a's lock was last refreshed 2 min ago
	b := openVault(t, be, "pw", vault.OpenOptions{Host: "live", Now: c2.Now, LockTTL: time.Minute, ClockSkew: -1})
	locks, err := b.Locks(ctx)
	if err != nil || len(locks) != 1 || !locks[0].Stale || locks[0].Host != "dead-host" {
		t.Fatalf("locks %+v %v", locks, err)
	}
	l, err := b.Lock(ctx, true)
	if err != nil {
		t.Fatalf("stale lock not ignored: %v", err)
	}
	if n := names(t, be, backend.Lock); len(n) != 2 {
		t.Fatalf("stale lock removed by Lock: %v", n)
	}
	l.Unlock(ctx)
	// Only the explicit API removes it.
	removed, err := b.Unlock(ctx, false)
	if err != nil || len(removed) != 0 || len(names(t, be, backend.Lock)) != 1 {
		t.Fatal("Unlock(false) removed locks")
	}
	removed, err = b.Unlock(ctx, true)
	if err != nil || len(removed) != 1 || len(names(t, be, backend.Lock)) != 0 {
		t.Fatalf("Unlock(true): %v %v", removed, err)
	}
}

func TestLostLeaseBlocksSavePoint(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"lock removed", "refresh missed"} {
		t.Run(how, func(t *testing.T) {
			be := mem.New()
			c := newClock()
			r := initVault(t, be, "pw", vault.OpenOptions{Now: c.Now, LockTTL: 10 * time.Minute})
			lock, err := r.Lock(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			root, _ := r.SaveTree(ctx, &vault.Tree{})
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := lock.Validate(); err != nil {
				t.Fatal(err)
			}
			c.Add(5 * time.Minute)
			if err := lock.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "lock removed":
				for _, n := range names(t, be, backend.Lock) {
					be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: n})
				}
			case "refresh missed":
				c.Add(10 * time.Minute)
				wantKind(t, lock.Validate(), errs.Locked, "lease lost")
			}
			_, err = r.SavePoint(ctx, &vault.Point{Kind: "files", Time: c.Now(), Root: root})
			wantKind(t, err, errs.Locked, "nothing was written")
			if n := names(t, be, backend.Point); len(n) != 0 {
				t.Fatalf("point written: %v", n)
			}
			if how == "lock removed" {
				wantKind(t, lock.Refresh(ctx), errs.Locked, "removed")
				if n := names(t, be, backend.Lock); len(n) != 0 {
					t.Fatal("refresh re-created a removed lock")
				}
			}
		})
	}
}

func TestCloseReleasesLocks(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := vault.Init(ctx, be, "pw", vault.InitOptions{KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := names(t, be, backend.Lock); len(n) != 0 {
		t.Fatalf("locks left after Close: %v", n)
	}
}
