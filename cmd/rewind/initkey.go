package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// kdfParams returns the argon2id parameters for new keys: vault.DefaultKDF, or
// REWIND_KDF="time,memoryKiB,threads" (for small machines and tests).
func kdfParams() (vault.KDFParams, error) {
	v := os.Getenv("REWIND_KDF")
	if v == "" {
		return vault.DefaultKDF, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return vault.KDFParams{}, errs.Errorf("REWIND_KDF", errs.Invalid, "%q is not time,memoryKiB,threads", v)
	}
	var n [3]uint64
	for i, p := range parts {
		x, err := strconv.ParseUint(strings.TrimSpace(p), 10, 32)
		if err != nil {
			return vault.KDFParams{}, errs.Errorf("REWIND_KDF", errs.Invalid, "%q: %v", v, err)
		}
		n[i] = x
	}
	if n[2] > 255 {
		return vault.KDFParams{}, errs.Errorf("REWIND_KDF", errs.Invalid, "%q: at most 255 threads", v)
	}
	return vault.KDFParams{Time: uint32(n[0]), Memory: uint32(n[1]), Threads: uint8(n[2])}, nil
}

func newInitCmd() *cobra.Command {
	var vo vaultOpts
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new vault",
		Long: `Create a new, empty vault at --vault and its first key from the password.

The location must be empty (a directory that does not exist or is empty, or an S3 prefix
with no vault). Keep the password safe: without it nothing in the vault can be read.`,
		Example: `  REWIND_PASSWORD_FILE=/etc/rewind/main.key rewind init --vault /srv/vaults/main
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… rewind init --vault s3://s3.example:9000/backups/main`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			url, err := vo.location()
			if err != nil {
				return err
			}
			kdf, err := kdfParams()
			if err != nil {
				return err
			}
			pw, err := vo.passwords().read(true)
			if err != nil {
				return err
			}
			be, err := openBackend(ctx, url, sourceCreds())
			if err != nil {
				return err
			}
			defer be.Close()
			r, err := vault.Init(ctx, be, pw, vault.InitOptions{KDF: kdf, Host: hostname()})
			if err != nil {
				return err
			}
			defer r.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "created vault %s at %s\n", r.ID()[:8], be.Location())
			return nil
		},
	}
	vo.register(cmd)
	return cmd
}

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the vault's keys (passwords)",
		Long: `A vault has one or more keys; each opens the vault with its own password. Add a key
before removing one; the key in use and the last key cannot be removed.`,
		Example: `  REWIND_NEW_PASSWORD_FILE=/etc/rewind/new.key rewind key add --vault /srv/vaults/main
  rewind key list --vault /srv/vaults/main
  rewind key remove --vault /srv/vaults/main 4f2a9c10
  REWIND_NEW_PASSWORD=… rewind key passwd --vault /srv/vaults/main`,
	}
	newPW := func(file string) passwordSource {
		return passwordSource{file: file, envVar: "REWIND_NEW_PASSWORD", fileVar: "REWIND_NEW_PASSWORD_FILE", prompt: "new password"}
	}

	var addVO vaultOpts
	var addFile string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a key with a new password",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			kdf, err := kdfParams()
			if err != nil {
				return err
			}
			r, err := addVO.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			pw, err := newPW(addFile).read(true)
			if err != nil {
				return err
			}
			ki, err := r.AddKey(ctx, pw, kdf)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added key %s\n", ki.Name)
			return nil
		},
	}
	addVO.register(add)
	add.Flags().StringVar(&addFile, "new-password-file", "", "read the new password from this file (env REWIND_NEW_PASSWORD_FILE or REWIND_NEW_PASSWORD)")

	var listVO vaultOpts
	list := &cobra.Command{
		Use:   "list",
		Short: "List the vault's keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := listVO.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			keys, err := r.ListKeys(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if listVO.json {
				type keyJSON struct {
					Name    string `json:"name"`
					Created string `json:"created"`
					Host    string `json:"host"`
					User    string `json:"user"`
					Current bool   `json:"current"`
				}
				l := make([]keyJSON, 0, len(keys))
				for _, k := range keys {
					l = append(l, keyJSON{k.Name, k.Created.UTC().Format("2006-01-02T15:04:05Z"), k.Host, k.User, k.Current})
				}
				return writeJSON(out, l)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, " \tNAME\tCREATED\tHOST\tUSER")
			for _, k := range keys {
				mark := " "
				if k.Current {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, k.Name, formatTime(k.Created), k.Host, k.User)
			}
			return tw.Flush()
		},
	}
	listVO.register(list)
	listVO.registerJSON(list, "print the keys as JSON")

	var rmVO vaultOpts
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a key (not the one in use, not the last)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := rmVO.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			name, err := resolveKeyName(cmd, r, args[0])
			if err != nil {
				return err
			}
			if err := r.RemoveKey(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed key %s\n", name)
			return nil
		},
	}
	rmVO.register(remove)

	var pwVO vaultOpts
	var pwFile string
	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password of the key in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := pwVO.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			pw, err := newPW(pwFile).read(true)
			if err != nil {
				return err
			}
			ki, err := r.ChangePassword(ctx, pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password changed; the key is now %s\n", ki.Name)
			return nil
		},
	}
	pwVO.register(passwd)
	passwd.Flags().StringVar(&pwFile, "new-password-file", "", "read the new password from this file (env REWIND_NEW_PASSWORD_FILE or REWIND_NEW_PASSWORD)")

	cmd.AddCommand(add, list, remove, passwd)
	return cmd
}

// resolveKeyName expands a unique prefix of a key name.
func resolveKeyName(cmd *cobra.Command, r *vault.Repository, prefix string) (string, error) {
	keys, err := r.ListKeys(cmd.Context())
	if err != nil {
		return "", err
	}
	var found []string
	for _, k := range keys {
		if k.Name == prefix {
			return k.Name, nil
		}
		if strings.HasPrefix(k.Name, prefix) {
			found = append(found, k.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", errs.Errorf("key remove", errs.NotFound, "no key %q", prefix).WithHint("see 'rewind key list'")
	case 1:
		return found[0], nil
	}
	return "", errs.Errorf("key remove", errs.Invalid, "%q matches %d keys: %s", prefix, len(found), strings.Join(found, ", "))
}
