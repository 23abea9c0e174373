package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newBackupCmd() *cobra.Command {
	var (
		vo            vaultOpts
		tags          []string
		resource      string
		host          string
		excludes      []string
		excludeFiles  []string
		oneFileSystem bool
		stdin         bool
		stdinName     string
	)
	cmd := &cobra.Command{
		Use:   "backup [flags] PATH...",
		Short: "Back up files and directories (or a stream) into a vault",
		Long: `Back up files and directories into a vault as a new recovery point.

A second backup of the same resource reads only files that changed since the last point
(compared by size, mtime, ctime and inode); everything else is reused. A file that changes
or vanishes while it is read gives a warning and the backup still completes (exit code 3).

The resource names what is protected; by default it is HOST:PATH[,PATH…]. With --stdin
the standard input is stored as one file (for database dumps); --resource is required.`,
		Example: `  rewind backup --vault /srv/vaults/main --tag app=shop /srv/shop/data /etc/shop
  rewind backup --vault /srv/vaults/main --exclude '*.tmp' --one-file-system /
  pg_dump shop | rewind backup --vault /srv/vaults/main --stdin --resource shop-dump --stdin-name shop.sql`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if stdin == (len(args) > 0) {
				if stdin {
					return errs.Errorf("backup", errs.Invalid, "--stdin takes no paths")
				}
				return errs.Errorf("backup", errs.Invalid, "nothing to back up").WithHint("give one or more paths, or --stdin")
			}
			if stdin && resource == "" {
				return errs.Errorf("backup", errs.Invalid, "--stdin needs --resource NAME").WithHint("name the stream, e.g. --resource shop-dump")
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			if host == "" {
				host = hostname()
			}
			var paths []string
			for _, p := range args {
				abs, err := filepath.Abs(p)
				if err != nil {
					return errs.E("backup", errs.Invalid, err)
				}
				if _, err := os.Lstat(abs); err != nil {
					return errs.Errorf("backup", errs.NotFound, "%s: %v", p, err).WithHint("check the path; nothing was written")
				}
				paths = append(paths, abs)
			}
			if resource == "" {
				resource = host + ":" + strings.Join(paths, ",")
			}
			for _, f := range excludeFiles {
				if _, err := os.Stat(f); err != nil {
					return errs.Errorf("backup", errs.Invalid, "--exclude-file %s: %v", f, err)
				}
			}

			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			lock, err := r.Lock(ctx, false)
			if err != nil {
				return err
			}
			defer lock.Unlock(ctx)

			start := time.Now()
			kind := vault.KindFiles
			if stdin {
				kind = vault.KindStream
			}
			var parent *vault.Point
			if !stdin {
				parent, err = r.FindPoint(ctx, "latest", resource)
				if err != nil && !errs.Is(err, errs.NotFound) {
					return err
				}
				if parent != nil && (parent.Kind != kind || parent.Host != host) {
					parent = nil
				}
			}

			prog := newProgress("backup", vo.json)
			opts := files.BackupOptions{
				Excludes: excludes, ExcludeFiles: excludeFiles, OneFileSystem: oneFileSystem,
				Progress: prog.update,
			}
			if parent != nil {
				opts.Parent = parent.Root
			}
			var res *files.BackupResult
			if stdin {
				res, err = files.BackupStream(ctx, files.FromVault(r), os.Stdin, stdinName, opts)
			} else {
				res, err = files.Backup(ctx, files.FromVault(r), paths, opts)
			}
			prog.done()
			if err != nil {
				return err
			}
			if err := r.Flush(ctx); err != nil {
				return err
			}
			p := &vault.Point{
				Kind: kind, Time: start.UTC(), Host: host, Resource: resource, Paths: paths,
				Tags: tagMap, Root: res.Root,
				Summary: vault.Summary{
					Files: res.Summary.Files, Dirs: res.Summary.Dirs, Bytes: res.Summary.BytesInTree,
					BlobsAdded: res.Summary.NewBlobs, BytesAdded: res.Summary.NewBytes,
					Duration: time.Since(start),
				},
			}
			if stdin {
				p.Paths = []string{stdinName}
			}
			if parent != nil {
				id := parent.ID
				p.Parent = &id
			}
			id, err := r.SavePoint(ctx, p)
			if err != nil {
				return err
			}
			return reportBackup(cmd.OutOrStdout(), vo.json, id, p, res, time.Since(start))
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print progress and the summary as JSON lines")
	f := cmd.Flags()
	f.StringArrayVar(&tags, "tag", nil, "add a tag key=value to the point (repeatable)")
	f.StringVar(&resource, "resource", "", "name of the protected resource (default HOST:PATHS)")
	f.StringVar(&host, "host", "", "host name recorded in the point (default this machine's)")
	f.StringArrayVar(&excludes, "exclude", nil, "exclude paths matching this pattern (repeatable; * ? [..] and ** across directories)")
	f.StringArrayVar(&excludeFiles, "exclude-file", nil, "read exclude patterns from a file, one per line (repeatable)")
	f.BoolVarP(&oneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	f.BoolVar(&stdin, "stdin", false, "back up standard input as one file")
	f.StringVar(&stdinName, "stdin-name", "stdin", "file name for --stdin data")
	return cmd
}

func reportBackup(w io.Writer, jsonOut bool, id vault.ID, p *vault.Point, res *files.BackupResult, took time.Duration) error {
	for _, warn := range res.Warnings {
		fmt.Fprintf(os.Stderr, "warning: %s\n", warn)
	}
	s := res.Summary
	if jsonOut {
		warnings := make([]map[string]string, 0, len(res.Warnings))
		for _, warn := range res.Warnings {
			warnings = append(warnings, map[string]string{"path": warn.Path, "error": warn.Err.Error()})
		}
		if err := writeJSONLine(w, map[string]any{
			"message_type": "summary", "point": id.String(), "short_id": id.Short(),
			"resource": p.Resource, "host": p.Host, "time": p.Time,
			"files": s.Files, "dirs": s.Dirs, "others": s.Others,
			"files_read": s.FilesRead, "files_unchanged": s.FilesUnchanged,
			"bytes_read": s.BytesRead, "bytes_in_tree": s.BytesInTree,
			"blobs_added": s.NewBlobs, "bytes_added": s.NewBytes,
			"seconds": took.Seconds(), "warnings": warnings,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "point %s saved (%s)\n", id.Short(), p.Resource)
		fmt.Fprintf(w, "  %d files, %d dirs, %d other; %d read, %d unchanged\n", s.Files, s.Dirs, s.Others, s.FilesRead, s.FilesUnchanged)
		fmt.Fprintf(w, "  %s in the tree, %s read, %s new in the vault, in %s\n",
			humanBytes(s.BytesInTree), humanBytes(s.BytesRead), humanBytes(s.NewBytes), took.Round(time.Millisecond))
	}
	if len(res.Warnings) > 0 {
		return exitWith(exitPartial, fmt.Errorf("backup completed with %d warnings; the point was saved", len(res.Warnings)))
	}
	return nil
}
