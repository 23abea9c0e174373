package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/location"
	"github.com/rewind-dr/rewind/internal/vault/backend/retry"
)

// vaultOpts are the flags every direct vault command shares.
type vaultOpts struct {
	url          string
	passwordFile string
	json         bool
	lockWait     time.Duration
}

func (o *vaultOpts) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.url, "vault", "", "vault location: a directory, file:///dir, s3://host:port/bucket/prefix or s3+http://… (env REWIND_VAULT)")
	f.StringVar(&o.passwordFile, "password-file", "", "read the vault password from this file (env REWIND_PASSWORD_FILE; or REWIND_PASSWORD)")
	f.DurationVar(&o.lockWait, "lock-wait", 0, "wait this long for a conflicting lock (e.g. a running prune) to go away (env REWIND_LOCK_WAIT)")
}

// lockWaitFor returns --lock-wait, or REWIND_LOCK_WAIT.
func (o *vaultOpts) lockWaitFor() (time.Duration, error) {
	if o.lockWait != 0 {
		return o.lockWait, nil
	}
	v := os.Getenv("REWIND_LOCK_WAIT")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errs.Errorf("REWIND_LOCK_WAIT", errs.Invalid, "%q is not a duration like 5m", v)
	}
	return d, nil
}

func (o *vaultOpts) registerJSON(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&o.json, "json", false, what)
}

// location returns the vault URL from the flag or REWIND_VAULT.
func (o *vaultOpts) location() (string, error) {
	if o.url != "" {
		return o.url, nil
	}
	if v := os.Getenv("REWIND_VAULT"); v != "" {
		return v, nil
	}
	return "", errs.Errorf("vault", errs.Invalid, "no vault given").
		WithHint("pass --vault /path/to/vault (or s3://host:port/bucket/prefix), or set REWIND_VAULT")
}

// sourceCreds returns the S3 credentials for --vault from the standard AWS variables.
func sourceCreds() location.Credentials {
	return location.Credentials{
		AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		Region:    os.Getenv("AWS_DEFAULT_REGION"),
	}
}

// destCreds returns the S3 credentials for a copy destination: REWIND_TO_AWS_ACCESS_KEY_ID
// and friends, so the two sites never share credentials by accident.
func destCreds() location.Credentials {
	return location.Credentials{
		AccessKey: os.Getenv("REWIND_TO_AWS_ACCESS_KEY_ID"),
		SecretKey: os.Getenv("REWIND_TO_AWS_SECRET_ACCESS_KEY"),
		Region:    os.Getenv("REWIND_TO_AWS_DEFAULT_REGION"),
	}
}

// wrapStorage, when set (by tests only), wraps every opened backend below the retry
// decorator, e.g. with a fault injector.
var wrapStorage func(backend.Backend) backend.Backend

// openBackend opens the storage at url behind the retry decorator.
func openBackend(ctx context.Context, url string, creds location.Credentials) (backend.Backend, error) {
	be, err := location.Open(ctx, url, creds)
	if err != nil {
		return nil, err
	}
	if wrapStorage != nil {
		be = wrapStorage(be)
	}
	return retry.New(be, retry.Policy{}), nil
}

// passwordSource says where a password comes from: a file flag, then an environment
// variable holding it, then one naming a file, then a prompt on a terminal.
type passwordSource struct {
	file    string // from a flag
	envVar  string // e.g. REWIND_PASSWORD
	fileVar string // e.g. REWIND_PASSWORD_FILE
	prompt  string
}

// read returns the password. With confirm, a terminal prompt asks twice.
func (s passwordSource) read(confirm bool) (string, error) {
	file := s.file
	if file == "" {
		if v, ok := os.LookupEnv(s.envVar); ok {
			if v == "" {
				return "", errs.Errorf("password", errs.Invalid, "%s is set but empty", s.envVar).
					WithHint("an empty password is not allowed")
			}
			return v, nil
		}
		file = os.Getenv(s.fileVar)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", errs.E("password", errs.Invalid, err).WithHint("check the password file path and its permissions")
		}
		pw := string(bytes.TrimRight(b, "\r\n"))
		if pw == "" {
			return "", errs.Errorf("password", errs.Invalid, "password file %s is empty", file)
		}
		return pw, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", errs.Errorf("password", errs.Invalid, "no password given and standard input is not a terminal").
			WithHint(fmt.Sprintf("set %s, or %s / --password-file to a file holding it", s.envVar, s.fileVar))
	}
	pw, err := promptPassword(s.prompt + ": ")
	if err != nil {
		return "", err
	}
	if confirm {
		again, err := promptPassword("enter it again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errs.Errorf("password", errs.Invalid, "the passwords do not match")
		}
	}
	if pw == "" {
		return "", errs.Errorf("password", errs.Invalid, "an empty password is not allowed")
	}
	return pw, nil
}

func promptPassword(prompt string) (string, error) {
	fmt.Fprint(os.Stderr, prompt)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", errs.E("password", errs.Invalid, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (o *vaultOpts) passwords() passwordSource {
	return passwordSource{file: o.passwordFile, envVar: "REWIND_PASSWORD", fileVar: "REWIND_PASSWORD_FILE", prompt: "vault password"}
}

// open opens the vault named by the flags.
func (o *vaultOpts) open(ctx context.Context) (*vault.Repository, error) {
	url, err := o.location()
	if err != nil {
		return nil, err
	}
	wait, err := o.lockWaitFor()
	if err != nil {
		return nil, err
	}
	pw, err := o.passwords().read(false)
	if err != nil {
		return nil, err
	}
	be, err := openBackend(ctx, url, sourceCreds())
	if err != nil {
		return nil, err
	}
	r, err := vault.Open(ctx, be, pw, vault.OpenOptions{Host: hostname(), LockWait: wait, Uploaders: uploadersFor(url)})
	if err != nil {
		be.Close()
		return nil, err
	}
	return r, nil
}

// uploadersFor returns how many packs are stored at once: two on a local disk (each
// upload ends in an fsync; more only hold more 16 MiB packs in memory), four on S3, where
// requests wait on the network.
func uploadersFor(url string) int {
	if spec, err := location.Parse(url, location.Credentials{}); err == nil && spec.Scheme == "local" {
		return 2
	}
	return 4
}

func hostname() string {
	if h := os.Getenv("REWIND_HOST"); h != "" {
		return h
	}
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}
