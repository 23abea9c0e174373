package jobs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/location"
	"github.com/rewind-dr/rewind/internal/vault/backend/retry"
)

// Vaults opens the configured vaults, each with its own password file (and S3 credential
// files), and keeps them open: jobs on a vault share one *vault.Repository while the
// vault's index is unchanged, so its index is loaded once per change. Safe for concurrent
// use; Close closes them all. Its Open method is what Env.OpenVault wants.
type Vaults struct {
	cfg  *config.Config
	opts vault.OpenOptions

	mu      sync.Mutex
	open    map[string]*cached
	opening map[string]*sync.Mutex // one opener per vault name at a time
	retired []*cached              // replaced repositories, closed once surely unused
	closed  bool
}

// cached is an open repository and the vault's index files when it was opened.
type cached struct {
	repo    *vault.Repository
	index   string // the sorted index file names, joined
	retired time.Time
}

// RetireAfter is how long a repository replaced by a fresher one stays open for the jobs
// that may still use it. Jobs must finish within this time (see QueueOptions.RescueAfter).
const RetireAfter = 24 * time.Hour

// NewVaults returns a cache of the vaults cfg configures, opened with opts (Host, Uploaders,
// LockWait…).
func NewVaults(cfg *config.Config, opts vault.OpenOptions) *Vaults {
	return &Vaults{cfg: cfg, opts: opts, open: map[string]*cached{}, opening: map[string]*sync.Mutex{}}
}

// Open returns an open repository of the configured vault name. A repository opened
// before is reused while the vault's index files are those it loaded; when they changed (a
// backup or prune here or by another server or command wrote the vault), the vault is
// opened again, so the returned repository's index is current as of the call. To work on
// a current index under a lock, lock and then call Open again (the Runner does). Errors:
// errs.NotFound for a vault the configuration does not name (or a location holding no
// vault), errs.Invalid for an unreadable or empty password file, errs.Unauthorized for a
// wrong password, errs.Unavailable when the storage cannot be reached (retryable), and
// errs.Canceled after Close. The storage is reached through the retry decorator.
func (v *Vaults) Open(ctx context.Context, name string) (*vault.Repository, error) {
	const op = "jobs.OpenVault"
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil, errs.Errorf(op, errs.Canceled, "vault %s: the vault cache is closed", name)
	}
	m, ok := v.opening[name]
	if !ok {
		m = &sync.Mutex{}
		v.opening[name] = m
	}
	c := v.open[name]
	v.mu.Unlock()

	m.Lock()
	defer m.Unlock()
	if c != nil {
		index, err := indexNames(ctx, c.repo.Backend())
		if err != nil {
			return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("vault %s: listing its index: %w", name, err))
		}
		if index == c.index {
			return c.repo, nil
		}
	}
	nc, err := v.openVault(ctx, op, name)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		nc.repo.Close()
		return nil, errs.Errorf(op, errs.Canceled, "vault %s: the vault cache is closed", name)
	}
	now := time.Now()
	if old := v.open[name]; old != nil {
		old.retired = now
		v.retired = append(v.retired, old)
	}
	keep := v.retired[:0]
	for _, r := range v.retired {
		if now.Sub(r.retired) > RetireAfter {
			r.repo.Close()
		} else {
			keep = append(keep, r)
		}
	}
	v.retired = keep
	v.open[name] = nc
	return nc.repo, nil
}

func indexNames(ctx context.Context, be backend.Backend) (string, error) {
	var names []string
	err := be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	sort.Strings(names)
	return strings.Join(names, "\n"), err
}

func (v *Vaults) openVault(ctx context.Context, op, name string) (*cached, error) {
	rbe, pw, err := v.connect(ctx, op, name)
	if err != nil {
		return nil, err
	}
	// Listed before opening: a change made meanwhile makes the next Open reload.
	index, err := indexNames(ctx, rbe)
	if err != nil {
		rbe.Close()
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("vault %s: listing its index: %w", name, err))
	}
	r, err := vault.Open(ctx, rbe, pw, v.opts)
	if err != nil {
		rbe.Close()
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("vault %s: %w", name, err))
	}
	return &cached{repo: r, index: index}, nil
}

// connect reads the password (and S3 credential) files of the configured vault name and
// returns its storage behind the retry decorator.
func (v *Vaults) connect(ctx context.Context, op, name string) (backend.Backend, string, error) {
	sec, err := v.Secrets(name)
	if errs.Is(err, errs.NotFound) {
		return nil, "", errs.Errorf(op, errs.NotFound, "vault %q is not configured", name).
			WithHint("add it under vaults: in the server configuration, or fix the plan naming it")
	}
	if err != nil {
		return nil, "", err
	}
	be, err := location.Open(ctx, sec.URL, location.Credentials{AccessKey: sec.AccessKey, SecretKey: sec.SecretKey, Region: sec.Region})
	if err != nil {
		return nil, "", errs.E(op, errs.KindOf(err), fmt.Errorf("vault %s: %w", name, err))
	}
	return retry.New(be, retry.Policy{}), sec.Password, nil
}

// Secrets returns the configured vault name's location and secrets (read from its files
// now), for an agent that runs a job of a resource on another host. Errors: errs.NotFound
// for an unknown vault, errs.Invalid for an unreadable or empty secret file.
func (v *Vaults) Secrets(name string) (AgentVault, error) {
	const op = "jobs.VaultSecrets"
	vc, ok := v.cfg.Vaults[name]
	if !ok {
		return AgentVault{}, errs.Errorf(op, errs.NotFound, "vault %q is not configured", name)
	}
	out := AgentVault{Name: name, URL: vc.URL}
	var err error
	if out.Password, err = readSecret(op, "password file of vault "+name, vc.PasswordFile); err != nil {
		return AgentVault{}, err
	}
	if vc.S3 != nil {
		out.Region = vc.S3.Region
		if vc.S3.AccessKeyFile != "" {
			if out.AccessKey, err = readSecret(op, "access key file of vault "+name, vc.S3.AccessKeyFile); err != nil {
				return AgentVault{}, err
			}
		}
		if vc.S3.SecretKeyFile != "" {
			if out.SecretKey, err = readSecret(op, "secret key file of vault "+name, vc.S3.SecretKeyFile); err != nil {
				return AgentVault{}, err
			}
		}
	}
	return out, nil
}

// Ensure creates the configured vault name with its password file when its location holds
// no vault yet (a new directory, an empty S3 prefix), and otherwise checks that it opens
// with that password. A read_only vault is never created: errs.NotFound when missing. It
// reports whether it created the vault. Errors as Open's.
func (v *Vaults) Ensure(ctx context.Context, name string) (created bool, err error) {
	const op = "jobs.Ensure"
	be, pw, err := v.connect(ctx, op, name)
	if err != nil {
		return false, err
	}
	defer be.Close()
	r, err := vault.Open(ctx, be, pw, v.opts)
	if errs.Is(err, errs.NotFound) && v.cfg.Vaults[name].ReadOnly {
		return false, errs.E(op, errs.NotFound, fmt.Errorf("vault %s: %w", name, err)).
			WithHint("the vault is read_only for this server, which never creates it: check its url, or create it from the server that owns it")
	}
	if errs.Is(err, errs.NotFound) {
		r, err = vault.Init(ctx, be, pw, vault.InitOptions{Host: v.opts.Host, Runtime: v.opts})
		created = err == nil
	}
	if err != nil {
		return false, errs.E(op, errs.KindOf(err), fmt.Errorf("vault %s: %w", name, err))
	}
	return created, r.Close()
}

// readSecret reads a password or key file, without its trailing newline.
func readSecret(op, what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", errs.Errorf(op, errs.Invalid, "%s: %v", what, err).
			WithHint("check that the file exists and that the server may read it")
	}
	s := string(bytes.TrimRight(b, "\r\n"))
	if s == "" {
		return "", errs.Errorf(op, errs.Invalid, "%s %s is empty", what, path)
	}
	return s, nil
}

// Close closes every open vault; later Opens fail. It returns the first error.
func (v *Vaults) Close() error {
	v.mu.Lock()
	v.closed = true
	all := v.retired
	for _, n := range sortedKeys(v.open) {
		all = append(all, v.open[n])
	}
	v.open, v.retired = map[string]*cached{}, nil
	v.mu.Unlock()
	var first error
	for _, c := range all {
		if err := c.repo.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
