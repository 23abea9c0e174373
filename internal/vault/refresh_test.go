package vault_test

import (
	"context"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

// TestReaderSeesDataIndexedLater: a Repository opened before another client (a continuous
// stream, another host) stored a point restores that point: a blob missing from its index
// makes it read the index files written since. After a prune by another client, it reads
// the whole index again.
func TestReaderSeesDataIndexedLater(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	writer := initVault(t, be, "pw", vault.OpenOptions{Host: "writer"})
	reader := openVault(t, be, "pw", vault.OpenOptions{Host: "reader"})
	want := map[string][]byte{"a.txt": []byte("written after the reader opened"), "b.bin": make([]byte, 3<<20)}
	p := backupFiles(t, writer, "app", time.Now(), want)
	points, err := reader.Points(ctx)
	if err != nil || len(points) != 1 || points[0].ID != p.ID {
		t.Fatalf("reader's points: %v %v", points, err)
	}
	sameFiles(t, want, restoreFiles(t, reader, points[0]))

	// The writer forgets the point and prunes; a second point's data lands in new packs
	// under an index that supersedes the old ones.
	want2 := map[string][]byte{"c.txt": []byte("after the prune")}
	p2 := backupFiles(t, writer, "app", time.Now(), want2)
	if err := writer.DeletePoint(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Prune(ctx, vault.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	p3 := backupFiles(t, writer, "app", time.Now(), map[string][]byte{"d.txt": []byte("after the prune, new")})
	for _, id := range []vault.ID{p2.ID, p3.ID} {
		pt, err := reader.LoadPoint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		restoreFiles(t, reader, pt)
	}
	sameFiles(t, want2, restoreFiles(t, reader, p2))
}
