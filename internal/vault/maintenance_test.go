package vault_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

// twoPoints stores two points sharing some files; "shared" is in both.
func twoPoints(t *testing.T, be backend.Backend) (*vault.Repository, *vault.Point, *vault.Point, map[string][]byte, map[string][]byte) {
	r := initVault(t, be, "pw", vault.OpenOptions{})
	c := newClock()
	f1 := map[string][]byte{"shared": randBytes(1, 150_000), "dir/one": textBytes(2, 90_000), "dir/small": []byte("x")}
	f2 := map[string][]byte{"shared": f1["shared"], "dir/two": randBytes(3, 200_000), "empty": {}}
	p1 := backupFiles(t, r, "files:/data", c.Now(), f1)
	c.Add(time.Hour)
	p2 := backupFiles(t, r, "files:/data", c.Now(), f2)
	return r, p1, p2, f1, f2
}

func hasProblem(rep *vault.CheckReport, what string) *vault.Problem {
	for i := range rep.Errors {
		if strings.Contains(rep.Errors[i].What, what) {
			return &rep.Errors[i]
		}
	}
	return nil
}

func TestCheckClean(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, _, _, _, _ := twoPoints(t, be)
	before := snapshot(t, be)
	var calls int
	rep, err := r.Check(ctx, vault.CheckOptions{ReadData: true, Progress: func(done, total int) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Warnings) != 0 {
		t.Fatalf("clean vault: %+v", rep)
	}
	if rep.Points != 2 || rep.PacksRead != rep.Packs || rep.Packs == 0 || rep.BlobsVerified == 0 || calls != rep.PacksRead || rep.Keys != 1 {
		t.Fatalf("counts %+v", rep)
	}
	sameSnapshot(t, before, snapshot(t, be))
	_, err = r.Check(ctx, vault.CheckOptions{Subset: 3, Of: 2})
	wantKind(t, err, errs.Invalid)
}

func TestCheckSubsetsCoverEveryPackOnce(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, _, _, _, _ := twoPoints(t, be)
	total := 0
	for _, n := range []int{1, 2, 3, 5} {
		sum := 0
		for i := 1; i <= n; i++ {
			rep, err := r.Check(ctx, vault.CheckOptions{ReadData: true, Subset: i, Of: n})
			if err != nil || !rep.OK() {
				t.Fatal(err, rep)
			}
			sum += rep.PacksRead
			total = rep.Packs
		}
		if sum != total {
			t.Fatalf("%d subsets read %d packs of %d", n, sum, total)
		}
	}
	for _, name := range names(t, be, backend.Pack) {
		id, _ := vault.ParseID(name)
		hits := 0
		for i := 1; i <= 4; i++ {
			if vault.InBucket(id, i, 4) {
				hits++
			}
		}
		if hits != 1 {
			t.Fatalf("pack %s in %d of 4 subsets", name, hits)
		}
	}
}

func TestCheckFindsDamage(t *testing.T) {
	ctx := context.Background()
	// findDataPack returns the pack holding the first chunk of file "dir/two" of p2.
	findPack := func(t *testing.T, r *vault.Repository, be backend.Backend, p *vault.Point) (string, vault.ID) {
		root, _ := r.LoadTree(ctx, p.Root)
		for _, n := range root.Nodes {
			if string(n.Name) != "dir" {
				continue
			}
			sub, _ := r.LoadTree(ctx, *n.Subtree)
			for _, m := range sub.Nodes {
				if string(m.Name) == "two" {
					id := m.Content[0]
					for _, name := range names(t, be, backend.Pack) {
						// Remove the pack temporarily to see whether the blob lived there.
						h := backend.Handle{Type: backend.Pack, Name: name}
						b, _ := backend.LoadAll(ctx, be, h, 0, 0)
						be.Remove(ctx, h)
						_, err := r.LoadBlob(ctx, vault.DataBlob, id, nil)
						be.Save(ctx, h, b)
						if err != nil {
							return name, id
						}
					}
				}
			}
		}
		t.Fatal("pack not found")
		return "", vault.ID{}
	}
	for _, tc := range []struct {
		name     string
		readData bool
		mut      func(be backend.Backend, h backend.Handle)
		what     string
	}{
		{"flipped bit", true, func(be backend.Backend, h backend.Handle) { mutate(t, be, h, flipAt(100)) }, "damaged"},
		{"truncated pack", false, func(be backend.Backend, h backend.Handle) {
			mutate(t, be, h, func(b []byte) []byte { return b[:len(b)/3] })
		}, "truncated pack"},
		{"missing pack", false, func(be backend.Backend, h backend.Handle) { be.Remove(ctx, h) }, "missing pack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := mem.New()
			r, p1, p2, _, _ := twoPoints(t, be)
			name, blob := findPack(t, r, be, p2)
			tc.mut(be, backend.Handle{Type: backend.Pack, Name: name})
			rep, err := r.Check(ctx, vault.CheckOptions{ReadData: tc.readData})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("damage not found")
			}
			pr := hasProblem(rep, tc.what)
			if pr == nil || !strings.Contains(pr.Object, name) && !strings.Contains(pr.Err, name[:8]) {
				t.Fatalf("no %q problem naming pack %s: %+v", tc.what, name, rep.Errors)
			}
			// The report names the affected point and file.
			var named bool
			for _, e := range rep.Errors {
				for i, pid := range e.Points {
					_ = i
					if pid == p2.ID && strings.Contains(strings.Join(e.Paths, ","), "dir/two") && strings.Contains(e.Object, blob.String()) {
						named = true
					}
					if pid == p1.ID && strings.Contains(strings.Join(e.Paths, ","), "dir/two") {
						t.Fatalf("p1 has no dir/two: %+v", e)
					}
				}
			}
			if !named {
				t.Fatalf("point %s and dir/two not named: %+v", p2.ID.Short(), rep.Errors)
			}
		})
	}
}

func TestPruneRemovesUnreferenced(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, p1, p2, f1, f2 := twoPoints(t, be)
	storedBefore := names(t, be, backend.Pack)
	if err := r.DeletePoint(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	dry, err := r.Prune(ctx, vault.PruneOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.PacksDeleted+dry.PacksRepacked == 0 || len(names(t, be, backend.Pack)) != len(storedBefore) {
		t.Fatalf("dry run: %+v", dry)
	}
	rep, err := r.Prune(ctx, vault.PruneOptions{MaxUnused: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PacksDeleted+rep.PacksRepacked == 0 || rep.BytesDeleted == 0 || rep.IndexFilesWritten == 0 {
		t.Fatalf("nothing pruned: %+v", rep)
	}
	if rep.PacksRepacked == 0 || rep.BlobsRepacked == 0 {
		t.Fatalf("partly used packs not repacked: %+v", rep)
	}
	sameFiles(t, f2, restoreFiles(t, r, p2))
	r2 := openVault(t, be, "pw", vault.OpenOptions{})
	sameFiles(t, f2, restoreFiles(t, r2, p2))
	chk, err := r2.Check(ctx, vault.CheckOptions{ReadData: true})
	if err != nil || !chk.OK() || len(chk.Warnings) != 0 {
		t.Fatalf("check after prune: %+v %v", chk, err)
	}
	// Data only p1 had is gone: its file "dir/one" no longer loads.
	if _, err := tryRestore(r2, p1); err == nil {
		t.Fatal("deleted point still fully restorable")
	}
	// A second prune has nothing to do.
	rep2, err := r2.Prune(ctx, vault.PruneOptions{MaxUnused: -1})
	if err != nil || rep2.PacksDeleted+rep2.PacksRepacked+rep2.PacksUnreferenced != 0 {
		t.Fatalf("second prune: %+v %v", rep2, err)
	}
	_ = f1
}

func TestPruneRemovesLeftoverPacks(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, _, p2, _, f2 := twoPoints(t, be)
	// An interrupted backup: a pack stored, never indexed.
	f := &faulty{Backend: be, fail: func(op string, h backend.Handle) bool { return op == "save" && h.Type == backend.Index }}
	r3 := openVault(t, f, "pw", vault.OpenOptions{})
	r3.SaveBlob(ctx, vault.DataBlob, randBytes(99, 100_000))
	if err := r3.Flush(ctx); err == nil {
		t.Fatal("index save did not fail")
	}
	r3.Close()
	_, _, err := r3.SaveBlob(ctx, vault.DataBlob, []byte("after close"))
	wantKind(t, err, errs.Invalid, "closed")
	chk, _ := r.Check(ctx, vault.CheckOptions{})
	if len(chk.Warnings) == 0 || !chk.OK() {
		t.Fatalf("unreferenced pack not a warning: %+v", chk)
	}
	rep, err := r.Prune(ctx, vault.PruneOptions{})
	if err != nil || rep.PacksUnreferenced == 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	sameFiles(t, f2, restoreFiles(t, r, p2))
}

func TestPruneFailsClosed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fail func(op string, h backend.Handle) bool
	}{
		{"point listing", func(op string, h backend.Handle) bool { return op == "list" && h.Type == backend.Point }},
		{"pack listing", func(op string, h backend.Handle) bool { return op == "list" && h.Type == backend.Pack }},
		{"index listing", func(op string, h backend.Handle) bool { return op == "list" && h.Type == backend.Index }},
		{"point read", func(op string, h backend.Handle) bool { return op == "load" && h.Type == backend.Point }},
		{"tree read", func(op string, h backend.Handle) bool { return op == "load" && h.Type == backend.Pack }},
		{"index read", func(op string, h backend.Handle) bool { return op == "load" && h.Type == backend.Index }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faulty{Backend: mem.New()}
			r, p1, _, _, _ := twoPoints(t, f)
			if err := r.DeletePoint(ctx, p1.ID); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, f, backend.Lock)
			f.set(tc.fail)
			_, err := r.Prune(ctx, vault.PruneOptions{MaxUnused: -1})
			f.set(nil)
			wantKind(t, err, errs.Unavailable, "nothing was deleted", "injected")
			sameSnapshot(t, before, snapshot(t, f, backend.Lock))
		})
	}
}

func TestPruneRestartable(t *testing.T) {
	ctx := context.Background()
	// Crash prune at each removal it makes: the vault stays consistent and a second prune
	// finishes the job.
	for crashAt := 0; crashAt < 6; crashAt++ {
		f := &faulty{Backend: mem.New()}
		r, p1, p2, _, f2 := twoPoints(t, f)
		r.DeletePoint(ctx, p1.ID)
		removes := 0
		f.set(func(op string, h backend.Handle) bool {
			if op == "remove" && h.Type != backend.Lock {
				removes++
				return removes > crashAt
			}
			return false
		})
		r.Prune(ctx, vault.PruneOptions{MaxUnused: -1})
		f.set(nil)
		r2 := openVault(t, f, "pw", vault.OpenOptions{})
		sameFiles(t, f2, restoreFiles(t, r2, p2))
		chk, err := r2.Check(ctx, vault.CheckOptions{ReadData: true})
		if err != nil || !chk.OK() {
			t.Fatalf("crash at %d: %+v %v", crashAt, chk, err)
		}
		if _, err := r2.Prune(ctx, vault.PruneOptions{MaxUnused: -1}); err != nil {
			t.Fatal(err)
		}
		chk, err = r2.Check(ctx, vault.CheckOptions{ReadData: true})
		if err != nil || !chk.OK() || len(chk.Warnings) != 0 {
			t.Fatalf("crash at %d, after second prune: %+v %v", crashAt, chk, err)
		}
	}
}

func TestPruneExcludesBackups(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, _, _, _, _ := twoPoints(t, be)
	other := openVault(t, be, "pw", vault.OpenOptions{Host: "backup-host"})
	l, err := other.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Prune(ctx, vault.PruneOptions{})
	wantKind(t, err, errs.Locked, "backup-host")
	l.Unlock(ctx)
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	srcBe, dstBe := mem.New(), mem.New()
	src, p1, p2, f1, f2 := twoPoints(t, srcBe)
	dst := initVault(t, dstBe, "another password", vault.OpenOptions{})
	pts, err := src.Points(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last vault.CopyProgress
	rep, err := vault.Copy(ctx, src, dst, pts, func(p vault.CopyProgress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if rep.PointsCopied != 2 || rep.BlobsCopied == 0 || last.PointsDone != 2 {
		t.Fatalf("copy report %+v, progress %+v", rep, last)
	}
	// Restore from the copy alone.
	d := openVault(t, dstBe, "another password", vault.OpenOptions{})
	dpts, err := d.Points(ctx)
	if err != nil || len(dpts) != 2 {
		t.Fatal(dpts, err)
	}
	for i, want := range []map[string][]byte{f1, f2} {
		sameFiles(t, want, restoreFiles(t, d, dpts[i]))
		if dpts[i].Meta[vault.MetaCopiedFrom] != []*vault.Point{p1, p2}[i].ID.String() || dpts[i].Resource != "files:/data" {
			t.Fatalf("copied point %+v", dpts[i])
		}
	}
	// Different keys: different blob IDs.
	if dpts[0].Root == p1.Root {
		t.Fatal("copied root has the source's ID")
	}
	chk, err := d.Check(ctx, vault.CheckOptions{ReadData: true})
	if err != nil || !chk.OK() {
		t.Fatalf("%+v %v", chk, err)
	}
	before := snapshot(t, dstBe, backend.Lock)
	rep, err = vault.Copy(ctx, src, dst, pts, nil)
	if err != nil || rep.PointsCopied != 0 || rep.PointsSkipped != 2 || rep.BlobsCopied != 0 {
		t.Fatalf("second copy %+v %v", rep, err)
	}
	sameSnapshot(t, before, snapshot(t, dstBe, backend.Lock))
	_, err = vault.Copy(ctx, src, src, pts, nil)
	wantKind(t, err, errs.Invalid)
}

// TestCopyFromReadOnly: a pull from a vault this process may only read writes nothing
// there, not even a lock, so it runs while the owner holds an exclusive lock.
func TestCopyFromReadOnly(t *testing.T) {
	ctx := context.Background()
	srcBe, dstBe := mem.New(), mem.New()
	src, p1, _, f1, _ := twoPoints(t, srcBe)
	dst := initVault(t, dstBe, "another password", vault.OpenOptions{})
	owner := openVault(t, srcBe, "pw", vault.OpenOptions{Host: "owner"})
	l, err := owner.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	_, err = vault.Copy(ctx, src, dst, []*vault.Point{p1}, nil)
	wantKind(t, err, errs.Locked, "owner")
	before := snapshot(t, srcBe)
	rep, err := vault.CopyFromReadOnly(ctx, src, dst, []*vault.Point{p1}, nil)
	if err != nil || rep.PointsCopied != 1 {
		t.Fatalf("copy from a read-only source: %+v %v", rep, err)
	}
	sameSnapshot(t, before, snapshot(t, srcBe))
	d := openVault(t, dstBe, "another password", vault.OpenOptions{})
	dpts, err := d.Points(ctx)
	if err != nil || len(dpts) != 1 {
		t.Fatal(dpts, err)
	}
	sameFiles(t, f1, restoreFiles(t, d, dpts[0]))
}

// TestConcurrentBackupsFromSeveralHosts: two hosts back up overlapping data into one vault
// at the same time; both points restore and the vault checks clean.
func TestConcurrentBackupsFromSeveralHosts(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	initVault(t, be, "pw", vault.OpenOptions{})
	shared := randBytes(50, 300_000)
	points := map[string]*vault.Point{}
	files := map[string]map[string][]byte{}
	var mu sync.Mutex
	t.Run("group", func(t *testing.T) {
		for i, host := range []string{"host-a", "host-b"} {
			t.Run(host, func(t *testing.T) {
				t.Parallel()
				r := openVault(t, be, "pw", vault.OpenOptions{Host: host})
				f := map[string][]byte{"shared": shared, "own": textBytes(uint64(60+i), 200_000)}
				p := backupFiles(t, r, "files:"+host, newClock().Now(), f)
				mu.Lock()
				points[host], files[host] = p, f
				mu.Unlock()
			})
		}
	})
	r := openVault(t, be, "pw", vault.OpenOptions{})
	for host, p := range points {
		sameFiles(t, files[host], restoreFiles(t, r, p))
	}
	rep, err := r.Check(ctx, vault.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() || rep.Points != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
}

// TestBreakLocks: the locks of a host known to be gone are removed, not this process's
// own nor other hosts'; the host's client, alive after all, cannot commit.
func TestBreakLocks(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	srv := initVault(t, be, "pw", vault.OpenOptions{Host: "server"})
	agent := openVault(t, be, "pw", vault.OpenOptions{Host: "agent1"})
	other := openVault(t, be, "pw", vault.OpenOptions{Host: "agent2"})
	al, err := agent.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Lock(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Lock(ctx, false); err != nil {
		t.Fatal(err)
	}
	removed, err := srv.BreakLocks(ctx, "agent1")
	if err != nil || len(removed) != 1 || removed[0].Host != "agent1" {
		t.Fatalf("removed %+v, %v", removed, err)
	}
	left, err := srv.Locks(ctx)
	if err != nil || len(left) != 2 {
		t.Fatalf("locks left: %+v %v", left, err)
	}
	// The agent's next commit finds its lease gone.
	root, err := agent.SaveTree(ctx, &vault.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = agent.SavePoint(ctx, &vault.Point{Kind: vault.KindFiles, Time: time.Now(), Resource: "r", Root: root})
	wantKind(t, err, errs.Locked)
	al.Unlock(ctx)
	if _, err := srv.BreakLocks(ctx, ""); !errs.Is(err, errs.Invalid) {
		t.Fatalf("no host: %v", err)
	}
}
