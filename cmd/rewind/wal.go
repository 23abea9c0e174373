package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/vault"
)

// walResource returns --resource, which wal-push and wal-fetch require.
func walResource(op, resource string) (string, error) {
	if resource == "" {
		return "", errs.Errorf(op, errs.Invalid, "--resource is required").
			WithHint("name the PostgreSQL resource, e.g. --resource orders-db, the same in archive_command and restore_command")
	}
	return resource, nil
}

// walAttempts bounds how often wal-push and wal-fetch open the vault. A vault opened while
// another process (a running 'rewind protect', say) saves points can list a point whose
// index file was written after the open: its blobs then look missing (NotFound). Opening the
// vault again reads the new index files, so both commands retry a NotFound or Corrupt
// failure with a fresh open before PostgreSQL sees it (for restore_command a false "not
// there" would end recovery early).
const walAttempts = 3

// withWALVault runs fn on a freshly opened vault under its shared lock, retrying as
// walAttempts says.
func withWALVault(ctx context.Context, vo *vaultOpts, fn func(r *vault.Repository) error) error {
	for attempt := 1; ; attempt++ {
		err := withSharedLock(ctx, vo, fn)
		if err == nil || attempt == walAttempts || !(errs.Is(err, errs.NotFound) || errs.Is(err, errs.Corrupt)) {
			return err
		}
	}
}

// withSharedLock opens the vault, takes its shared lock and runs fn.
func withSharedLock(ctx context.Context, vo *vaultOpts, fn func(r *vault.Repository) error) error {
	r, err := vo.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))
	return fn(r)
}

func newWalPushCmd() *cobra.Command {
	var (
		vo       vaultOpts
		resource string
		host     string
	)
	cmd := &cobra.Command{
		Use:   "wal-push [flags] PATH",
		Short: "Store one PostgreSQL WAL file (for archive_command)",
		Long: `Store the WAL segment, timeline history file or backup history file at PATH in the vault,
for PostgreSQL's archive_command (PATH is %p). The vault comes from --vault or REWIND_VAULT
and its password from --password-file, REWIND_PASSWORD_FILE or REWIND_PASSWORD; the command
takes the vault's shared lock. A file already stored with the same content succeeds without
storing anything; different content under the same name is refused (exit 1), so an archive
never changes. Any failure exits non-zero and PostgreSQL keeps the file and retries.

Use the same --resource as 'rewind backup' and 'rewind protect' of the cluster, so restores
and 'rewind points' see the archived WAL together with the base backups.`,
		Example: `  # postgresql.conf
  archive_mode = on
  archive_command = 'rewind wal-push --vault /srv/vaults/main --password-file /etc/rewind/pw --resource orders-db %p'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := walResource("wal-push", resource)
			if err != nil {
				return err
			}
			return withWALVault(cmd.Context(), &vo, func(r *vault.Repository) error {
				return postgres.WalPush(cmd.Context(), postgres.FromVault(r), postgres.PushOptions{Resource: res, Host: hostOr(host)}, args[0])
			})
		},
	}
	vo.register(cmd)
	cmd.Flags().StringVar(&resource, "resource", "", "the PostgreSQL resource the WAL belongs to (required)")
	cmd.Flags().StringVar(&host, "host", "", "host name recorded in the point (default this machine's)")
	return cmd
}

func newWalFetchCmd() *cobra.Command {
	var (
		vo       vaultOpts
		resource string
	)
	cmd := &cobra.Command{
		Use:   "wal-fetch [flags] NAME DEST",
		Short: "Write one PostgreSQL WAL file from the vault (for restore_command)",
		Long: `Write the WAL file NAME (%f: a segment, a timeline history or a backup history file) of
--resource to DEST (%p), for PostgreSQL's restore_command. Segments are assembled from
archived (wal-push) and streamed (protect) WAL. When the vault does not hold NAME the command
exits 10 with a message; PostgreSQL takes any non-zero exit as "not there", which ends
recovery. The vault and its password come as for wal-push.`,
		Example: `  # postgresql.conf of a server being restored or a standby
  restore_command = 'rewind wal-fetch --vault /srv/vaults/main --password-file /etc/rewind/pw --resource orders-db %f %p'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := walResource("wal-fetch", resource)
			if err != nil {
				return err
			}
			return withWALVault(cmd.Context(), &vo, func(r *vault.Repository) error {
				return postgres.WalFetch(cmd.Context(), postgres.FromVault(r), res, args[0], args[1])
			})
		},
	}
	vo.register(cmd)
	cmd.Flags().StringVar(&resource, "resource", "", "the PostgreSQL resource the WAL belongs to (required)")
	return cmd
}
