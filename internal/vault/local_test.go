package vault_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/local"
)

// TestLocalEndToEnd runs the whole life cycle on a real directory: backup, reopen, forget,
// prune, check, and a bit flipped on disk.
func TestLocalEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, p1, p2, _, f2 := twoPoints(t, be)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := openVault(t, be, "pw", vault.OpenOptions{})
	sameFiles(t, f2, restoreFiles(t, r2, p2))
	if err := r2.DeletePoint(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Prune(ctx, vault.PruneOptions{MaxUnused: -1}); err != nil {
		t.Fatal(err)
	}
	rep, err := r2.Check(ctx, vault.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() || len(rep.Warnings) != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	sameFiles(t, f2, restoreFiles(t, r2, p2))

	packs, _ := filepath.Glob(filepath.Join(dir, "packs", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no pack files on disk")
	}
	b, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x80
	if err := os.WriteFile(packs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = r2.Check(ctx, vault.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || hasProblem(rep, "damaged pack") == nil {
		t.Fatalf("bit flip on disk not found: %+v", rep.Errors)
	}
}
