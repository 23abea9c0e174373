package mysql_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/testenv/mariadb"
)

// A physical backup on the database host, restored into a directory: the prepared data
// directory holds the table, and the binlog after the backup is written beside it with
// the command that replays it.
func TestPhysical(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := mariadb.StartWith(t, mariadb.Options{LogBin: true})
	sdb := rootDB(t, src)
	_, err := sdb.Exec("CREATE DATABASE shop")
	must(t, err)
	_, err = sdb.Exec("CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64))")
	must(t, err)
	insert(t, sdb, 1)
	u := url.URL{Scheme: "mysql", User: url.User("root"), Path: "/", RawQuery: url.Values{"socket": {src.Socket}}.Encode()}
	v := newVault(t)
	const resource = "shop-physical"
	b, err := mysql.Backup(ctx, v, u.String(), mysql.BackupOptions{Resource: resource, Physical: true})
	if err != nil {
		t.Fatalf("physical Backup: %v", err)
	}
	file, pos := masterStatus(t, sdb)
	if b.Point.Kind != mysql.KindPhysical || b.BinlogFile != file || b.BinlogPos != pos {
		t.Fatalf("Backup: %s at %s:%d, server at %s:%d", b.Point.Kind, b.BinlogFile, b.BinlogPos, file, pos)
	}
	st, err := mysql.OpenStream(ctx, v, u.String(), mysql.StreamOptions{Resource: resource})
	must(t, err)
	defer st.Close()
	insert(t, sdb, 2)
	tick(t, st)

	dir := filepath.Join(t.TempDir(), "restore")
	res, err := mysql.Restore(ctx, v, resource, dir, mysql.Target{}, mysql.RestoreOptions{})
	if err != nil {
		t.Fatalf("Restore into a directory: %v", err)
	}
	if res.BinlogFiles != 1 {
		t.Errorf("binlog files written: %d, want 1", res.BinlogFiles)
	}
	for _, p := range []string{"shop/items.ibd", "shop/items.frm", "ibdata1", "rewind-binlog/" + file} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("restored directory lacks %s: %v", p, err)
		}
	}
	replay, err := os.ReadFile(filepath.Join(dir, "rewind-binlog", "REPLAY"))
	must(t, err)
	if !strings.Contains(string(replay), "--start-position="+itoa(pos)) {
		t.Errorf("REPLAY does not start at the backup's position %d:\n%s", pos, replay)
	}
	// A second restore into the now non-empty directory is refused.
	if _, err := mysql.Restore(ctx, v, resource, dir, mysql.Target{}, mysql.RestoreOptions{}); !errs.Is(err, errs.Conflict) {
		t.Errorf("Restore into a non-empty directory: %v, want Conflict", err)
	}
	// A server URL target needs a logical backup.
	if _, err := mysql.Restore(ctx, v, resource, src.URL, mysql.Target{}, mysql.RestoreOptions{}); !errs.Is(err, errs.NotFound) {
		t.Errorf("logical Restore from physical points only: %v, want NotFound", err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
