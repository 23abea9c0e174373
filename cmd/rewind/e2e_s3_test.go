package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/rewind-dr/rewind/internal/testenv/s3server"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/faulty"
)

// TestS3AndCopyToSecondSite backs up into a vault on a real S3 server, copies the points
// into a second vault (another bucket prefix, another password, other credentials
// variables), destroys the first vault, and restores from the copy alone.
func TestS3AndCopyToSecondSite(t *testing.T) {
	srv := s3server.Start(t)
	e := newEnv(t)
	e.vault = srv.URL("primary")
	e.extra = []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}
	src := filepath.Join(t.TempDir(), "src")
	makeEveryKind(t, src)
	want := snapshot(t, src)

	e.must("init")
	e.must("backup", "--resource", "shop", "--tag", "tier=gold", src)
	writeRandom(t, filepath.Join(src, "dir", "added.bin"), 1<<20, 7)
	want2 := snapshot(t, src)
	e.must("backup", "--resource", "shop", "--tag", "tier=gold", src)

	// The second site: its own prefix, password and credential variables. The primary's
	// AWS_* variables are removed so the copy can only use REWIND_TO_*.
	offsite := srv.URL("offsite")
	site2 := newEnv(t)
	site2.vault = offsite
	site2.extra = []string{"REWIND_PASSWORD=offsite password", "AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}
	site2.must("init")

	cp := newEnv(t)
	cp.vault = e.vault
	cp.extra = append(append([]string{}, e.extra...),
		"REWIND_TO_PASSWORD=offsite password",
		"REWIND_TO_AWS_ACCESS_KEY_ID="+srv.AccessKey, "REWIND_TO_AWS_SECRET_ACCESS_KEY="+srv.SecretKey)
	out := cp.must("copy", "--to", offsite, "--json")
	var rep struct {
		PointsCopied int `json:"points_copied"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.PointsCopied != 2 {
		t.Fatalf("copy: %v %s", err, out)
	}
	// A second copy transfers nothing.
	out = cp.must("copy", "--to", offsite, "--json")
	var rep2 struct {
		PointsCopied  int    `json:"points_copied"`
		PointsSkipped int    `json:"points_skipped"`
		BlobsCopied   uint64 `json:"blobs_copied"`
	}
	if err := json.Unmarshal([]byte(out), &rep2); err != nil || rep2.PointsCopied != 0 || rep2.PointsSkipped != 2 || rep2.BlobsCopied != 0 {
		t.Fatalf("second copy: %v %s", err, out)
	}

	// Destroy the primary vault.
	client := srv.Client(t)
	ctx := context.Background()
	for obj := range client.ListObjects(ctx, srv.Bucket, minioListOpts("primary/")) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if err := client.RemoveObject(ctx, srv.Bucket, obj.Key, minioRemoveOpts()); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.run("points"); r.code != exitNotFound {
		t.Fatalf("primary still opens after deletion: exit %d %s", r.code, r.stderr)
	}

	// Restore both points from the copy alone, with only the offsite key.
	var points []pointJSON
	if err := json.Unmarshal([]byte(site2.must("points", "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("offsite points: %v %d", err, len(points))
	}
	if points[0].Resource != "shop" || points[0].Tags["tier"] != "gold" || points[0].Paths[0] != src {
		t.Errorf("copied point lost its description: %+v", points[0])
	}
	for i, w := range []map[string]entry{want, want2} {
		target := t.TempDir()
		site2.must("restore", points[i].ID, "--target", target)
		compareTrees(t, w, snapshot(t, target))
	}
	if r := site2.run("check", "--read-data"); r.code != 0 {
		t.Fatalf("offsite check: %d\n%s", r.code, r.stdout)
	}
}

// TestFlakyStorage runs backups against storage that fails or stalls a share of calls:
// each backup either completes (and restores) or fails with a clear error, and no point
// ever refers to data the vault does not have.
func TestFlakyStorage(t *testing.T) {
	dir := t.TempDir()
	vaultDir := filepath.Join(dir, "vault")
	t.Setenv("REWIND_PASSWORD", "pw")
	t.Setenv("REWIND_KDF", "1,1024,1")
	t.Setenv("REWIND_VAULT", vaultDir)
	t.Setenv("REWIND_HOST", "flaky")
	if code := run(context.Background(), []string{"init"}); code != 0 {
		t.Fatalf("init: %d", code)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	completed := 0
	for seed := int64(1); seed <= 6; seed++ {
		for i := 0; i < 3; i++ {
			writeRandom(t, filepath.Join(src, "f"+string(rune('a'+i))), 3<<20, uint64(seed*10)+uint64(i))
		}
		wrapStorage = func(b backend.Backend) backend.Backend {
			f := faulty.New(b, seed)
			f.SetErrorRate(faulty.Save, 0.2)
			f.SetErrorRate(faulty.Load, 0.2)
			f.SetErrorRate(faulty.List, 0.1)
			f.SetShortRead(0.1)
			f.SetStall(0.02, 300*time.Millisecond)
			return f
		}
		code := run(context.Background(), []string{"backup", src})
		wrapStorage = nil
		// 0: completed; 3: completed with a warning (a read of the parent point gave up after
		// its retries, so files were read in full); 14: failed clearly, storage unavailable.
		switch code {
		case 0, exitPartial:
			completed++
		case exitUnavailable:
		default:
			t.Errorf("seed %d: backup exit %d, want 0, %d or %d", seed, code, exitPartial, exitUnavailable)
		}
		// Whatever happened, the vault is consistent: every point's data is there.
		if code := run(context.Background(), []string{"check", "--read-data"}); code != 0 {
			t.Fatalf("seed %d: check after a flaky backup: exit %d", seed, code)
		}
	}
	if completed == 0 {
		t.Error("no backup completed: the retries do not cope with 20% failures")
	}
	t.Logf("%d of 6 flaky backups completed", completed)
	// Every point restores.
	if code := run(context.Background(), []string{"restore", "latest", "--target", filepath.Join(dir, "r")}); code != 0 {
		t.Fatalf("restore: %d", code)
	}
	if !strings.HasPrefix(vaultDir, dir) {
		t.Fatal("vault outside the temp dir")
	}
}

func minioListOpts(prefix string) minio.ListObjectsOptions {
	return minio.ListObjectsOptions{Prefix: prefix, Recursive: true}
}

func minioRemoveOpts() minio.RemoveObjectOptions { return minio.RemoveObjectOptions{} }
