package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// TestEnsureReadOnly: a missing vault is created, except a read_only one, which this
// server must never write: that is a NotFound naming the vault, and nothing is written.
func TestEnsureReadOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	for _, ro := range []bool{false, true} {
		loc := filepath.Join(f.dir, "vaults", "new-"+map[bool]string{false: "rw", true: "ro"}[ro])
		if err := os.MkdirAll(loc, 0o700); err != nil {
			t.Fatal(err)
		}
		f.cfg.Vaults["new"] = config.Vault{Name: "new", Site: "paris", URL: loc, PasswordFile: f.cfg.Vaults["main"].PasswordFile, ReadOnly: ro}
		vs := jobs.NewVaults(f.cfg, vault.OpenOptions{Host: "srv"})
		created, err := vs.Ensure(ctx, "new")
		vs.Close()
		ents, _ := os.ReadDir(loc)
		switch {
		case !ro && (err != nil || !created || len(ents) == 0):
			t.Errorf("read-write: created %v, %v, %d entries", created, err, len(ents))
		case ro && (!errs.Is(err, errs.NotFound) || created || len(ents) != 0 || errs.HintOf(err) == ""):
			t.Errorf("read-only: created %v, %v, %d entries", created, err, len(ents))
		}
	}
}
