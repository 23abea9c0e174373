package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// nodeJSON is one entry of `ls --json`.
type nodeJSON struct {
	Path       string    `json:"path"`
	PathBase64 []byte    `json:"path_bytes,omitempty"` // set when the path is not valid UTF-8
	Type       string    `json:"type"`
	Mode       string    `json:"mode"`
	Size       uint64    `json:"size"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	ModTime    time.Time `json:"mtime"`
	LinkTarget string    `json:"link_target,omitempty"`
}

func newLsCmd() *cobra.Command {
	var (
		vo       vaultOpts
		resource string
		long     bool
	)
	cmd := &cobra.Command{
		Use:   "ls [flags] POINT [PATH]",
		Short: "List the files in a recovery point",
		Long: `List the entries of a recovery point, recursively, below PATH (default: everything).
Paths are relative to the point as restore lays it out.`,
		Example: `  rewind ls --vault /srv/vaults/main latest
  rewind ls --vault /srv/vaults/main latest etc/nginx --long
  rewind ls --vault /srv/vaults/main 3fa9c2e1 --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			prefix := ""
			if len(args) == 2 {
				prefix = strings.Trim(args[1], "/")
			}
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.FindPoint(ctx, args[0], resource)
			if err != nil {
				return err
			}
			if prefix != "" {
				if _, err := files.Find(ctx, files.FromVault(r), p.Root, prefix); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			tw := newTable(out)
			bprefix := []byte(prefix)
			err = files.Walk(ctx, files.FromVault(r), p.Root, func(path []byte, n *vault.Node) error {
				if prefix != "" && !bytes.Equal(path, bprefix) && !(bytes.HasPrefix(path, bprefix) && len(path) > len(bprefix) && path[len(bprefix)] == '/') {
					return nil
				}
				switch {
				case vo.json:
					nj := nodeJSON{Path: string(path), Type: string(n.Type), Mode: fs.FileMode(n.Mode).String(),
						Size: n.Size, UID: n.UID, GID: n.GID, ModTime: n.ModTime, LinkTarget: string(n.LinkTarget)}
					if !isUTF8(path) {
						nj.PathBase64 = path
					}
					return writeJSONLine(out, nj)
				case long:
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", typeChar(n.Type)+fs.FileMode(n.Mode).Perm().String(),
						ownerName(n.User, n.UID), ownerName(n.Group, n.GID), n.Size, formatTime(n.ModTime), quoteName(path, n))
				default:
					fmt.Fprintln(out, quotePath(path))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if long {
				return tw.Flush()
			}
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print one JSON object per entry")
	cmd.Flags().StringVar(&resource, "resource", "", "with latest: the resource whose latest point to list")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show type, mode, owner, size and mtime")
	return cmd
}

func typeChar(t vault.NodeType) string {
	switch t {
	case vault.NodeDir:
		return "d"
	case vault.NodeSymlink:
		return "l"
	case vault.NodeFIFO:
		return "p"
	case vault.NodeDev:
		return "b"
	case vault.NodeChar:
		return "c"
	case vault.NodeSocket:
		return "s"
	}
	return "-"
}

func ownerName(name string, id uint32) string {
	if name != "" {
		return name
	}
	return fmt.Sprint(id)
}

func isUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// quotePath prints a path as is when it is printable UTF-8, else Go-quoted, so odd names
// stay unambiguous on a terminal.
func quotePath(b []byte) string {
	s := string(b)
	if isUTF8(b) && !strings.ContainsAny(s, "\n\r\t\x00") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func quoteName(path []byte, n *vault.Node) string {
	s := quotePath(path)
	if n.Type == vault.NodeSymlink {
		s += " -> " + quotePath(n.LinkTarget)
	}
	return s
}
