package files_test

import (
	"context"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/files/filestest"
	"github.com/rewind-dr/rewind/internal/vault"
)

// FuzzTreeFromStorage feeds arbitrary bytes as a point's root tree (tree blobs come from
// storage): Walk, Find and Restore must fail cleanly or keep every entry inside the target.
func FuzzTreeFromStorage(f *testing.F) {
	f.Add([]byte(`{"nodes":[{"name":"YQ==","type":"file","mode":420,"mtime":"2020-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"Li4=","type":"dir","mode":493,"mtime":"2020-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"eA==","type":"symlink","link_target":"Ly4u","mtime":"2020-01-01T00:00:00Z"},{"name":"eQ==","type":"fifo","mode":420,"mtime":"2020-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := filestest.New()
		id, _, err := st.SaveBlob(context.Background(), vault.TreeBlob, data)
		if err != nil {
			t.Fatal(err)
		}
		werr := files.Walk(context.Background(), st, id, func([]byte, *vault.Node) error { return nil })
		if werr != nil && errs.KindOf(werr) == errs.Other {
			t.Fatalf("Walk error without a kind: %v", werr)
		}
		_, _ = files.Find(context.Background(), st, id, "a/b")
		outer := t.TempDir()
		target := outer + "/t"
		_, _ = files.Restore(context.Background(), st, id, target, files.RestoreOptions{Workers: 1})
		ents, err := readDirNames(outer)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) > 1 || (len(ents) == 1 && ents[0] != "t") {
			t.Fatalf("restore wrote outside the target: %q", ents)
		}
	})
}
