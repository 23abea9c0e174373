package postgres

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// BaseOptions configures BaseBackup.
type BaseOptions struct {
	Resource string            // the resource name the point is filed under (required)
	Host     string            // recorded in the point (default: the source's host)
	Tags     map[string]string // recorded in the point
	Now      func() time.Time  // clock (default time.Now); dates the point and its end
	// Progress, when set, receives the archive being read and the bytes read so far,
	// from the backup's goroutine.
	Progress func(archive string, bytes uint64)
}

// BaseBackup takes a base backup of the cluster at src (a postgres:// URL of a role with
// REPLICATION, on a primary or a standby) over the replication protocol and stores it in v
// as a KindBase point: each tablespace's tar archive as one chunked, deduplicated file
// ("base.tar" holds the data directory, backup_label and the WAL from the backup's start
// to its end, so the point alone restores to its end), with the start and end LSN, timeline,
// system identifier, server version, backup label and times in Meta and Range = the end
// time. Every archive is parsed as it arrives; a malformed one fails the backup. The point
// is saved after Flush made the data durable. The caller holds the vault's shared lock.
//
// Errors: errs.Invalid (bad options or URL, server older than 15), errs.Unauthorized,
// errs.Conflict (the resource already holds another cluster's points), errs.Unavailable
// (connection or server failure), errs.Corrupt (a malformed archive), errs.Canceled, and
// the vault's errors.
func BaseBackup(ctx context.Context, v Vault, src string, opts BaseOptions) (*vault.Point, error) {
	const op = "postgres.BaseBackup"
	if opts.Resource == "" {
		return nil, errs.Errorf(op, errs.Invalid, "no resource name").WithHint("name the resource with --resource")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cat, err := loadCatalog(ctx, v, op, opts.Resource)
	if err != nil {
		return nil, err
	}
	s, err := connect(ctx, op, src)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := cat.checkSystem(op, s.systemID, s.segSize); err != nil {
		return nil, err
	}
	began := opts.Now()
	label := fmt.Sprintf("rewind %s %s", opts.Resource, began.UTC().Format(time.RFC3339))
	res, err := runBaseBackup(ctx, v, s, label, opts, began)
	if err != nil {
		return nil, err
	}
	end := opts.Now()
	if opts.Host == "" {
		opts.Host = s.conn.Conn().RemoteAddr().String()
	}
	meta := map[string]string{
		MetaSystemID:    s.systemID,
		MetaTimeline:    strconv.FormatUint(uint64(res.startTLI), 10),
		MetaStartLSN:    res.start.String(),
		MetaEndLSN:      res.end.String(),
		MetaEndTimeline: strconv.FormatUint(uint64(res.endTLI), 10),
		MetaSegmentSize: strconv.FormatUint(s.segSize, 10),
		MetaPGVersion:   strconv.Itoa(s.version),
		MetaLabel:       res.label,
		MetaEndTime:     end.UTC().Format(time.RFC3339Nano),
		MetaFromStandby: strconv.FormatBool(strings.Contains(res.label, "BACKUP FROM: standby")),
	}
	if st, ok := labelStartTime(res.label); ok {
		meta[MetaStartTime] = st.UTC().Format(time.RFC3339)
	}
	root, err := saveTree(ctx, v, res.nodes, &res.added)
	if err != nil {
		return nil, err
	}
	if err := v.Flush(ctx); err != nil {
		return nil, err
	}
	p := &vault.Point{
		Kind: KindBase, Time: end.UTC(), Host: opts.Host, Resource: opts.Resource, Tags: opts.Tags,
		Root: root, Range: &vault.TimeRange{From: end.UTC(), To: end.UTC()}, Meta: meta,
		Summary: vault.Summary{Files: res.files, Bytes: res.bytes, BlobsAdded: res.added.blobs,
			BytesAdded: res.added.bytes, Duration: end.Sub(began)},
	}
	if prev := cat.newestBase(); prev != nil {
		id := prev.p.ID
		p.Parent = &id
	}
	if _, err := v.SavePoint(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

type baseResult struct {
	start, end       LSN
	startTLI, endTLI uint32
	label            string
	nodes            []*vault.Node
	files, bytes     uint64
	added            added
}

// archive is one tar archive being received: its bytes go to the chunker (saveStream) and
// to a tar parser, each in its own goroutine.
type archive struct {
	name         string
	pw, tw       *io.PipeWriter
	saved        chan saveResult
	parsed       chan parseResult
	bytes        uint64
	wantLabel    bool
	progress     func(string, uint64)
	lastProgress uint64
}

type saveResult struct {
	node  *vault.Node
	added added
	err   error
}

type parseResult struct {
	files uint64
	label string
	err   error
}

func startArchive(ctx context.Context, v Vault, name string, now time.Time, progress func(string, uint64)) *archive {
	a := &archive{name: name, saved: make(chan saveResult, 1), parsed: make(chan parseResult, 1),
		wantLabel: name == "base.tar", progress: progress}
	pr, pw := io.Pipe()
	tr, tw := io.Pipe()
	a.pw, a.tw = pw, tw
	go func() {
		var add added
		node, err := saveStream(ctx, v, name, pr, now, &add)
		pr.CloseWithError(errors.New("archive save stopped"))
		a.saved <- saveResult{node, add, err}
	}()
	go func() {
		r := parseTar(tr, a.wantLabel)
		io.Copy(io.Discard, tr) // keep the writer unblocked after a parse error
		a.parsed <- r
	}()
	return a
}

func parseTar(rd io.Reader, wantLabel bool) parseResult {
	var r parseResult
	t := tar.NewReader(bufio.NewReaderSize(rd, 1<<20))
	for {
		h, err := t.Next()
		if err == io.EOF {
			return r
		}
		if err != nil {
			r.err = err
			return r
		}
		r.files++
		if wantLabel && strings.TrimPrefix(h.Name, "./") == "backup_label" {
			b, err := io.ReadAll(io.LimitReader(t, 64<<10))
			if err != nil {
				r.err = err
				return r
			}
			r.label = string(b)
		}
	}
}

func (a *archive) write(b []byte) error {
	a.bytes += uint64(len(b))
	if a.progress != nil && a.bytes-a.lastProgress >= 4<<20 {
		a.lastProgress = a.bytes
		a.progress(a.name, a.bytes)
	}
	if _, err := a.tw.Write(b); err != nil {
		return err
	}
	_, err := a.pw.Write(b)
	return err
}

// finish closes the archive and waits for its node and parse.
func (a *archive) finish(op string) (*vault.Node, parseResult, added, error) {
	a.pw.Close()
	a.tw.Close()
	s := <-a.saved
	p := <-a.parsed
	if a.progress != nil {
		a.progress(a.name, a.bytes)
	}
	if s.err != nil {
		return nil, p, s.added, s.err
	}
	if p.err != nil {
		return nil, p, s.added, errs.Errorf(op, errs.Corrupt, "archive %s from the server is not a valid tar archive: %v", a.name, p.err)
	}
	return s.node, p, s.added, nil
}

// abort stops the archive's goroutines.
func (a *archive) abort(err error) {
	a.pw.CloseWithError(err)
	a.tw.CloseWithError(err)
	<-a.saved
	<-a.parsed
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// runBaseBackup sends BASE_BACKUP (PostgreSQL 15 syntax) and stores the archives. The
// response is: a result set with the start position, one listing the tablespaces, a
// CopyOutResponse whose CopyData messages are typed ('n' new archive: name and tablespace
// path; 'd' data; 'p' progress; 'm' manifest), CopyDone, a result set with the end position,
// CommandComplete and ReadyForQuery.
func runBaseBackup(ctx context.Context, v Vault, s *source, label string, opts BaseOptions, now time.Time) (*baseResult, error) {
	const op = "postgres.BaseBackup"
	cmd := "BASE_BACKUP (LABEL " + quoteLiteral(label) + ", CHECKPOINT 'fast', WAL true, WAIT false, MANIFEST 'no', TABLESPACE_MAP false)"
	s.conn.Frontend().SendQuery(&pgproto3.Query{String: cmd})
	if err := s.conn.Frontend().Flush(); err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("send BASE_BACKUP: %w", err))
	}
	res := &baseResult{}
	var cur *archive
	defer func() {
		if cur != nil {
			cur.abort(errors.New("base backup stopped"))
		}
	}()
	closeArchive := func() error {
		if cur == nil {
			return nil
		}
		a := cur
		cur = nil
		node, p, add, err := a.finish(op)
		res.added.blobs += add.blobs
		res.added.bytes += add.bytes
		if err != nil {
			return err
		}
		res.nodes = append(res.nodes, node)
		res.files += p.files
		res.bytes += a.bytes
		if a.wantLabel {
			res.label = p.label
		}
		return nil
	}
	resultSet := 0 // 0: start position, 1: tablespaces, 2: end position
	var rows [][][]byte
	for {
		msg, err := s.conn.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, errs.E(op, errs.Canceled, ctx.Err())
			}
			return nil, errs.E(op, errs.Unavailable, fmt.Errorf("base backup: %w", err))
		}
		switch m := msg.(type) {
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		case *pgproto3.ErrorResponse:
			pe := pgconnError(m)
			return nil, errs.E(op, pgErrKind(pe), fmt.Errorf("base backup refused by the server: %w", pe)).
				WithHint("check max_wal_senders and that the role has REPLICATION")
		case *pgproto3.RowDescription:
			rows = nil
		case *pgproto3.DataRow:
			rows = append(rows, copyRow(m.Values))
		case *pgproto3.CommandComplete:
			switch resultSet {
			case 0, 2:
				if len(rows) != 1 || len(rows[0]) != 2 {
					return nil, errs.Errorf(op, errs.Unavailable, "base backup: unexpected position result (%d rows)", len(rows))
				}
				lsn, err1 := ParseLSN(string(rows[0][0]))
				tli, err2 := strconv.ParseUint(string(rows[0][1]), 10, 32)
				if err1 != nil || err2 != nil {
					return nil, errs.Errorf(op, errs.Unavailable, "base backup: bad position %q/%q", rows[0][0], rows[0][1])
				}
				if resultSet == 0 {
					res.start, res.startTLI = lsn, uint32(tli)
				} else {
					res.end, res.endTLI = lsn, uint32(tli)
				}
			}
			if resultSet < 3 {
				resultSet++
			}
			rows = nil
		case *pgproto3.CopyOutResponse:
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				return nil, errs.Errorf(op, errs.Unavailable, "base backup: empty CopyData message")
			}
			switch m.Data[0] {
			case 'n':
				if err := closeArchive(); err != nil {
					return nil, err
				}
				name, _, ok := cutCString(m.Data[1:])
				if !ok || !validArchiveName(name) {
					return nil, errs.Errorf(op, errs.Corrupt, "base backup: the server sent an archive named %q", name)
				}
				cur = startArchive(ctx, v, name, now, opts.Progress)
			case 'm':
				if err := closeArchive(); err != nil {
					return nil, err
				}
				cur = startArchive(ctx, v, "backup_manifest", now, opts.Progress)
			case 'd':
				if cur == nil {
					return nil, errs.Errorf(op, errs.Corrupt, "base backup: data before any archive")
				}
				if err := cur.write(m.Data[1:]); err != nil {
					a := cur
					cur = nil
					_, _, _, ferr := a.finish(op)
					if ferr != nil {
						return nil, ferr
					}
					return nil, errs.E(op, errs.Internal, err)
				}
			case 'p':
				if len(m.Data) != 9 {
					return nil, errs.Errorf(op, errs.Corrupt, "base backup: malformed progress message")
				}
				_ = binary.BigEndian.Uint64(m.Data[1:])
			default:
				return nil, errs.Errorf(op, errs.Corrupt, "base backup: unknown message type %q", m.Data[0])
			}
		case *pgproto3.CopyDone:
			if err := closeArchive(); err != nil {
				return nil, err
			}
		case *pgproto3.ReadyForQuery:
			if resultSet < 3 {
				return nil, errs.Errorf(op, errs.Unavailable, "base backup ended early (after %d of 3 result sets)", resultSet)
			}
			if err := closeArchive(); err != nil {
				return nil, err
			}
			if res.label == "" {
				return nil, errs.Errorf(op, errs.Corrupt, "base backup: base.tar holds no backup_label")
			}
			return res, nil
		default:
			return nil, errs.Errorf(op, errs.Unavailable, "base backup: unexpected message %T", msg)
		}
	}
}

func copyRow(vals [][]byte) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = append([]byte(nil), v...)
	}
	return out
}

func cutCString(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// validArchiveName accepts "base.tar" and "<oid>.tar".
func validArchiveName(name string) bool {
	if name == "base.tar" {
		return true
	}
	oid, ok := strings.CutSuffix(name, ".tar")
	_, err := strconv.ParseUint(oid, 10, 32)
	return ok && err == nil
}

// labelStartTime reads START TIME from a backup label.
func labelStartTime(label string) (time.Time, bool) {
	for _, line := range strings.Split(label, "\n") {
		if v, ok := strings.CutPrefix(line, "START TIME: "); ok {
			t, err := time.Parse("2006-01-02 15:04:05 MST", strings.TrimSpace(v))
			return t, err == nil
		}
	}
	return time.Time{}, false
}
