package postgres

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Target is where recovery stops. At most one of Time, LSN, XID and Name is set; none
// recovers to the end of the stored WAL.
type Target struct {
	Time      *time.Time
	LSN       string // "16/B374D848"
	XID       string // a transaction ID (decimal)
	Name      string // a restore point made with pg_create_restore_point
	Exclusive bool   // stop just before the target instead of just after it
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// WALDir is the directory (inside target) the WAL is written to and restore_command
	// copies from (default "rewind_wal").
	WALDir string
}

// RestoreResult says what Restore prepared.
type RestoreResult struct {
	Base        *vault.Point // the base backup restored
	Span        Span         // what that base backup can reach
	Files       uint64       // entries extracted from the archives
	Bytes       uint64       // bytes of the archives
	WALSegments int          // WAL segments written for recovery
}

func (t Target) describe() string {
	switch {
	case t.Time != nil:
		return "time " + t.Time.UTC().Format(time.RFC3339Nano)
	case t.LSN != "":
		return "LSN " + t.LSN
	case t.XID != "":
		return "transaction " + t.XID
	case t.Name != "":
		return "restore point " + strconv.Quote(t.Name)
	}
	return "the end of the WAL"
}

// Restore prepares a PostgreSQL data directory in target (which must be missing or empty)
// that recovers resource to t and stops there: it picks the newest base backup that ends
// before the target (for a transaction or restore point, whose position the manifests do
// not record, the oldest base backup from which the WAL reaches furthest), extracts its
// archives (mode 0700; owners as in the archives when running as root), writes the WAL from
// that base backup to the end of the continuous WAL into target/<WALDir> with the history
// files of its timelines, and sets restore_command to copy from there (no connection or
// password is needed at recovery time), recovery.signal, and the recovery target settings
// (recovery_target_*, recovery_target_inclusive, recovery_target_timeline = 'latest',
// recovery_target_action = 'promote') in postgresql.auto.conf. Every archive is read through
// the vault, which authenticates each blob. Starting PostgreSQL on target then replays to the
// target and promotes.
//
// Errors: errs.Invalid (several targets, a malformed one, a target outside the restorable
// range — the message names the range — or a non-empty target directory), errs.NotFound (no
// base backup), errs.Corrupt (a damaged archive or manifest, or an archive entry that would
// escape target), and the vault's errors.
func Restore(ctx context.Context, v Vault, resource, target string, t Target, opts RestoreOptions) (*RestoreResult, error) {
	const op = "postgres.Restore"
	if opts.WALDir == "" {
		opts.WALDir = "rewind_wal"
	}
	n := 0
	for _, set := range []bool{t.Time != nil, t.LSN != "", t.XID != "", t.Name != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errs.Errorf(op, errs.Invalid, "give at most one recovery target (time, LSN, transaction or restore point)")
	}
	var lsn LSN
	if t.LSN != "" {
		var err error
		if lsn, err = ParseLSN(t.LSN); err != nil {
			return nil, errs.E(op, errs.Invalid, err)
		}
	}
	if t.XID != "" {
		if x, err := strconv.ParseUint(t.XID, 10, 64); err != nil || x < 3 {
			return nil, errs.Errorf(op, errs.Invalid, "transaction ID %q: want a normal transaction ID (a number ≥ 3)", t.XID)
		}
	}
	if len(t.Name) > 63 || strings.ContainsAny(t.Name, "\n\r") {
		return nil, errs.Errorf(op, errs.Invalid, "restore point name %q: at most 63 bytes on one line", t.Name)
	}
	abs, err := filepath.Abs(target)
	if err != nil || target == "" {
		return nil, errs.Errorf(op, errs.Invalid, "target directory %q is not valid", target)
	}
	if strings.ContainsAny(abs, "'%\"\n\r\\$`") {
		return nil, errs.Errorf(op, errs.Invalid, "target directory %q contains a character that restore_command cannot quote", abs).
			WithHint("choose a path without quotes, %, $, backslashes or backticks")
	}
	if !filepath.IsLocal(opts.WALDir) {
		return nil, errs.Errorf(op, errs.Invalid, "WAL directory %q must be a relative path inside the target", opts.WALDir)
	}

	cat, err := loadCatalog(ctx, v, op, resource)
	if err != nil {
		return nil, err
	}
	rep, err := cat.report(ctx, v, op)
	if err != nil {
		return nil, err
	}
	sp, err := chooseSpan(op, rep, t, lsn)
	if err != nil {
		return nil, err
	}
	if err := prepareTarget(op, abs); err != nil {
		return nil, err
	}
	res := &RestoreResult{Base: sp.Base, Span: sp}

	base, err := loadTree(ctx, v, op, sp.Base, sp.Base.Root)
	if err != nil {
		return nil, err
	}
	owner := [2]int{-1, -1}
	var tablespaces []*vault.Node
	for _, node := range base.Nodes {
		name := string(node.Name)
		switch {
		case name == "base.tar":
			x := &extractor{op: op, root: abs, skipTblspc: true, owner: &owner}
			if err := x.run(ctx, v, node); err != nil {
				return nil, err
			}
			res.Files += x.files
			res.Bytes += node.Size
		case validArchiveName(name):
			tablespaces = append(tablespaces, node)
		}
	}
	if owner[0] < 0 {
		return nil, errs.Errorf(op, errs.Corrupt, "base backup %s holds no base.tar", sp.Base.ID.Short())
	}
	for _, node := range tablespaces {
		// A tablespace is restored as a directory in pg_tblspc (PostgreSQL reads it there as
		// it would through the symlink), so the restore stays inside target.
		oid := strings.TrimSuffix(string(node.Name), ".tar")
		dir := filepath.Join(abs, "pg_tblspc", oid)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, errs.E(op, errs.Unavailable, err)
		}
		chown(dir, owner)
		x := &extractor{op: op, root: dir, owner: &[2]int{owner[0], owner[1]}}
		if err := x.run(ctx, v, node); err != nil {
			return nil, err
		}
		res.Files += x.files
		res.Bytes += node.Size
	}
	for _, f := range []string{"postmaster.pid", "standby.signal", "recovery.signal"} {
		os.Remove(filepath.Join(abs, f))
	}

	walDir := filepath.Join(abs, opts.WALDir)
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	chown(walDir, owner)
	for _, w := range sp.wal {
		if w.tli > 1 {
			name := historyName(w.tli)
			if _, ok := cat.files[name]; ok {
				b, err := cat.readFile(ctx, v, op, name)
				if err != nil {
					return nil, err
				}
				if err := writeOwned(op, filepath.Join(walDir, name), b, owner); err != nil {
					return nil, err
				}
			}
		}
		for s := segStart(w.begin, cat.segSize); s < w.end; s += LSN(cat.segSize) {
			buf, prefix, _, err := cat.segment(ctx, v, op, w.tli, s)
			if err != nil {
				return nil, err
			}
			if prefix == 0 {
				continue
			}
			clear(buf[prefix:])
			if err := writeOwned(op, filepath.Join(walDir, SegmentName(w.tli, s, cat.segSize)), buf, owner); err != nil {
				return nil, err
			}
			res.WALSegments++
		}
	}
	if err := writeRecoveryConfig(op, abs, walDir, t, owner); err != nil {
		return nil, err
	}
	return res, nil
}

// chooseSpan picks the base backup for target t and checks that t is restorable.
func chooseSpan(op string, rep *Report, t Target, lsn LSN) (Span, error) {
	var best *Span
	for i := range rep.Spans {
		s := &rep.Spans[i]
		switch {
		case t.Time != nil:
			if !s.From.After(*t.Time) && !s.To.Before(*t.Time) && (best == nil || s.From.After(best.From)) {
				best = s
			}
		case t.LSN != "":
			if s.FromLSN <= lsn && lsn <= s.ToLSN && (best == nil || s.FromLSN > best.FromLSN) {
				best = s
			}
		default:
			if best == nil || s.To.After(best.To) || s.ToLSN > best.ToLSN && s.Timeline >= best.Timeline {
				best = s
			}
		}
	}
	if best == nil {
		hint := "choose a target inside the range, or restore without one to recover all stored WAL"
		if len(rep.Gaps) > 0 {
			hint += "; WAL is missing: " + rep.Gaps[0].String()
		}
		return Span{}, errs.Errorf(op, errs.Invalid, "%s is outside what resource %q can restore: %s", t.describe(), rep.Resource, rep.describeSpans()).
			WithHint(hint)
	}
	return *best, nil
}

// prepareTarget creates target (0700) or checks that it is an empty directory.
func prepareTarget(op, dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return errs.E(op, errs.Invalid, fmt.Errorf("create target %s: %w", dir, err))
		}
	case err != nil:
		return errs.E(op, errs.Invalid, fmt.Errorf("target %s: %w", dir, err)).WithHint("the target must be a directory")
	case len(entries) > 0:
		return errs.Errorf(op, errs.Invalid, "target %s is not empty", dir).
			WithHint("restore into a new or empty directory; a data directory is never overwritten")
	}
	return os.Chmod(dir, 0o700)
}

func chown(p string, owner [2]int) {
	if os.Geteuid() == 0 && owner[0] >= 0 {
		_ = os.Lchown(p, owner[0], owner[1])
	}
}

func writeOwned(op, p string, data []byte, owner [2]int) error {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("write %s: %w", p, err))
	}
	chown(p, owner)
	return nil
}

func confQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// writeRecoveryConfig appends the recovery settings to postgresql.auto.conf and creates
// recovery.signal.
func writeRecoveryConfig(op, dir, walDir string, t Target, owner [2]int) error {
	var b strings.Builder
	b.WriteString("\n# Recovery settings written by rewind restore.\n")
	fmt.Fprintf(&b, "restore_command = %s\n", confQuote(fmt.Sprintf(`cp "%s/%%f" "%%p"`, walDir)))
	switch {
	case t.Time != nil:
		fmt.Fprintf(&b, "recovery_target_time = %s\n", confQuote(t.Time.UTC().Format("2006-01-02 15:04:05.999999-07")))
	case t.LSN != "":
		fmt.Fprintf(&b, "recovery_target_lsn = %s\n", confQuote(t.LSN))
	case t.XID != "":
		fmt.Fprintf(&b, "recovery_target_xid = %s\n", confQuote(t.XID))
	case t.Name != "":
		fmt.Fprintf(&b, "recovery_target_name = %s\n", confQuote(t.Name))
	}
	if t.Time != nil || t.LSN != "" || t.XID != "" || t.Name != "" {
		fmt.Fprintf(&b, "recovery_target_inclusive = %s\n", confQuote(strconv.FormatBool(!t.Exclusive)))
		b.WriteString("recovery_target_action = 'promote'\n")
	}
	b.WriteString("recovery_target_timeline = 'latest'\n")
	p := filepath.Join(dir, "postgresql.auto.conf")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.WriteString(b.String())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("write %s: %w", p, err))
	}
	chown(p, owner)
	return writeOwned(op, filepath.Join(dir, "recovery.signal"), nil, owner)
}

// extractor unpacks one tar archive from the vault under root.
type extractor struct {
	op         string
	root       string
	skipTblspc bool    // skip pg_tblspc/<oid> symlinks (tablespaces are restored in place)
	owner      *[2]int // set from the first entry when unset
	files      uint64
	symlinks   map[string]bool
}

func (x *extractor) run(ctx context.Context, v Vault, node *vault.Node) error {
	x.symlinks = map[string]bool{}
	tr := tar.NewReader(bufio.NewReaderSize(newNodeReader(ctx, v, node), 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if k := errs.KindOf(err); k != errs.Other {
				return err
			}
			return errs.E(x.op, errs.Corrupt, fmt.Errorf("%s: %w", node.Name, err))
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
		x.files++
	}
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	name := strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")
	if name == "" || name == "." {
		return nil
	}
	if !filepath.IsLocal(name) {
		return errs.Errorf(x.op, errs.Corrupt, "archive entry %q would escape the target", h.Name)
	}
	for p := filepath.Dir(name); p != "."; p = filepath.Dir(p) {
		if x.symlinks[p] {
			return errs.Errorf(x.op, errs.Corrupt, "archive entry %q lies under the symlink %q", h.Name, p)
		}
	}
	if x.skipTblspc && h.Typeflag == tar.TypeSymlink && filepath.Dir(name) == "pg_tblspc" {
		return nil
	}
	if x.owner[0] < 0 {
		x.owner[0], x.owner[1] = h.Uid, h.Gid
		chown(x.root, *x.owner)
	}
	p := filepath.Join(x.root, name)
	mode := os.FileMode(h.Mode & 0o7777)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return errs.E(x.op, errs.Unavailable, err)
		}
	case tar.TypeReg:
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscallNoFollow, 0o600)
		if err != nil {
			return errs.E(x.op, errs.Unavailable, err)
		}
		n, err := io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if k := errs.KindOf(err); k != errs.Other {
				return err
			}
			return errs.E(x.op, errs.Unavailable, fmt.Errorf("%s: %w", name, err))
		}
		if n != h.Size {
			return errs.Errorf(x.op, errs.Corrupt, "%s: %d bytes written, the archive says %d", name, n, h.Size)
		}
	case tar.TypeSymlink:
		if err := os.Symlink(h.Linkname, p); err != nil {
			return errs.E(x.op, errs.Unavailable, err)
		}
		x.symlinks[name] = true
	default:
		return errs.Errorf(x.op, errs.Corrupt, "archive entry %q has unsupported type %q", h.Name, h.Typeflag)
	}
	if os.Geteuid() == 0 {
		_ = os.Lchown(p, h.Uid, h.Gid)
	}
	if h.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(p, mode); err != nil {
			return errs.E(x.op, errs.Unavailable, err)
		}
		_ = os.Chtimes(p, h.ModTime, h.ModTime)
	}
	return nil
}
