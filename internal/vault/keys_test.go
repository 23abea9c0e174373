package vault_test

import (
	"context"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

func TestInitAndOpen(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	_, err := vault.Open(ctx, be, "pw", vault.OpenOptions{})
	wantKind(t, err, errs.NotFound, "no vault")
	r := initVault(t, be, "pw", vault.OpenOptions{})
	if r.PackSize() != testPackSize || r.ChunkerParams() != smallChunks {
		t.Fatalf("config not kept: %d %+v", r.PackSize(), r.ChunkerParams())
	}
	_, err = vault.Init(ctx, be, "pw", vault.InitOptions{KDF: cheapKDF})
	wantKind(t, err, errs.Exists)
	r2 := openVault(t, be, "pw", vault.OpenOptions{})
	if r2.ID() != r.ID() {
		t.Fatal("reopened vault has another ID")
	}
	_, err = vault.Init(ctx, mem.New(), "", vault.InitOptions{KDF: cheapKDF})
	wantKind(t, err, errs.Invalid, "empty password")
	_, err = vault.Init(ctx, mem.New(), "pw", vault.InitOptions{KDF: cheapKDF, PackSize: 10})
	wantKind(t, err, errs.Invalid, "pack size")
}

func TestWrongPasswordWritesNothing(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "right", vault.OpenOptions{})
	backupFiles(t, r, "files:/data", newClock().Now(), map[string][]byte{"a": textBytes(1, 5000)})
	before := snapshot(t, be)
	_, err := vault.Open(ctx, be, "wrong", vault.OpenOptions{})
	wantKind(t, err, errs.Unauthorized, "wrong password")
	if errs.HintOf(err) == "" {
		t.Fatal("no hint")
	}
	sameSnapshot(t, before, snapshot(t, be))
}

func TestSeveralKeys(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "first", vault.OpenOptions{})
	k2, err := r.AddKey(ctx, "second", vault.KDFParams{})
	if err != nil {
		t.Fatal(err)
	}
	if k2.KDF != cheapKDF {
		t.Fatalf("new key did not inherit the KDF parameters: %+v", k2.KDF)
	}
	r2 := openVault(t, be, "second", vault.OpenOptions{})
	if r2.ID() != r.ID() {
		t.Fatal("second key opens another vault")
	}
	keys, err := r.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v %v", keys, err)
	}
	var current, other string
	for _, k := range keys {
		if k.Current {
			current = k.Name
		} else {
			other = k.Name
		}
	}
	if current == "" || other != k2.Name {
		t.Fatalf("current key not marked: %+v", keys)
	}
	wantKind(t, r.RemoveKey(ctx, current), errs.Conflict, "in use")
	wantKind(t, r.RemoveKey(ctx, "00"), errs.NotFound)
	wantKind(t, r.RemoveKey(ctx, "../config"), errs.Invalid)
	if err := r.RemoveKey(ctx, k2.Name); err != nil {
		t.Fatal(err)
	}
	_, err = vault.Open(ctx, be, "second", vault.OpenOptions{})
	wantKind(t, err, errs.Unauthorized)
	// The only key left is the one in use: it cannot go either way.
	wantKind(t, r.RemoveKey(ctx, current), errs.Conflict)
	if len(names(t, be, backend.Key)) != 1 {
		t.Fatal("a key was removed")
	}
	_, err = r.AddKey(ctx, "", vault.KDFParams{})
	wantKind(t, err, errs.Invalid)
}

func TestLastKeyCannotBeRemoved(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "first", vault.OpenOptions{})
	k2, err := r.AddKey(ctx, "second", vault.KDFParams{})
	if err != nil {
		t.Fatal(err)
	}
	r2 := openVault(t, be, "second", vault.OpenOptions{})
	// r removes r2's key; r2 now holds the last reference to nothing but r's key remains.
	if err := r.RemoveKey(ctx, k2.Name); err != nil {
		t.Fatal(err)
	}
	keys := names(t, be, backend.Key)
	if len(keys) != 1 {
		t.Fatal(keys)
	}
	wantKind(t, r2.RemoveKey(ctx, keys[0]), errs.Conflict, "last key")
}

func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "old", vault.OpenOptions{})
	ki, err := r.ChangePassword(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}
	_, err = vault.Open(ctx, be, "old", vault.OpenOptions{})
	wantKind(t, err, errs.Unauthorized)
	openVault(t, be, "new", vault.OpenOptions{})
	keys, err := r.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Name != ki.Name || !keys[0].Current {
		t.Fatalf("keys after password change: %+v %v", keys, err)
	}
}

func TestKeyTriesBounded(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "pw", vault.OpenOptions{})
	for i := 0; i < vault.MaxKeysTried; i++ {
		if _, err := r.AddKey(ctx, "other", vault.KDFParams{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := vault.Open(ctx, be, "nothing opens", vault.OpenOptions{})
	wantKind(t, err, errs.Unauthorized, "not tried")
}
