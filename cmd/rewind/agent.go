package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api/client"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newAgentCmd() *cobra.Command {
	var (
		serverURL, host string
		poll            time.Duration
		once            bool
	)
	cmd := &cobra.Command{
		Use:   "agent --server URL [--host NAME]",
		Short: "Run the backups and restores of this data host for a rewind server",
		Long: `Run, on a data host, the backup and restore jobs of the resources the server's config
places on this host (host: NAME). The agent asks the server for work every --poll, runs
each job here (reading and writing this host's files, straight to the vault), reports its
progress as a heartbeat and its end; the server records the point and runs the copies and
retention that follow. A job whose agent stops reporting for the server's --agent-lease is
taken back: a backup runs again, a restore fails.

The token ($REWIND_TOKEN) needs the role agent (or admin). The server hands the agent the
vault's password with each job, so talk to the server over TLS outside loopback.` + serverHelp,
		Example: `  REWIND_TOKEN=$(cat /etc/rewind/agent.token) rewind agent --server https://backup.example.com:8420 --host db1
  rewind agent --server http://127.0.0.1:8420 --host web1 --once   # run what is waiting, then exit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newServerClient(serverURL)
			if err != nil {
				return err
			}
			if host == "" {
				host = hostname()
			}
			if poll <= 0 {
				return errs.Errorf("agent", errs.Invalid, "--poll must be positive, not %s", poll)
			}
			a := &agent{c: c, host: host, out: cmd.ErrOrStderr()}
			return a.run(cmd.Context(), poll, once)
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", "", "URL of the rewind server (default $"+envServer+")")
	f.StringVar(&host, "host", "", "this host's name, as resources name it (default $REWIND_HOST or the host name)")
	f.DurationVar(&poll, "poll", 5*time.Second, "how often to ask for work when there is none")
	f.BoolVar(&once, "once", false, "run the jobs waiting now, then exit")
	return cmd
}

type agent struct {
	c    *client.Client
	host string
	out  io.Writer
}

// run claims and runs jobs until ctx ends (or, with once, until none is waiting). A server
// that cannot be reached is asked again at the next poll.
func (a *agent) run(ctx context.Context, poll time.Duration, once bool) error {
	fmt.Fprintf(a.out, "rewind agent: host %s\n", a.host)
	for {
		var w jobs.AgentWork
		ok, err := a.c.ClaimAgentJob(ctx, a.host, &w)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !errs.Is(err, errs.Unavailable):
			return err // a wrong token or host: asking again will not help
		case err != nil:
			fmt.Fprintf(a.out, "rewind agent: %v; asking again in %s\n", err, poll)
		case ok:
			a.runJob(ctx, &w)
			continue // there may be more waiting
		case once:
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// runJob runs one claimed job and reports its end. When the agent is stopping, the job is
// reported as interrupted (retryable), so the server runs it again.
func (a *agent) runJob(ctx context.Context, w *jobs.AgentWork) {
	id := w.Job.ID
	fmt.Fprintf(a.out, "rewind agent: %s job %s of %s\n", w.Job.Kind, id, w.Job.Resource)
	res := jobs.RunAgentWork(ctx, w, vault.OpenOptions{Host: a.host, LockWait: 10 * time.Minute},
		func(ctx context.Context, p jobs.AgentProgress) error { return a.c.AgentHeartbeat(ctx, a.host, id, p) })
	if ctx.Err() != nil && res.Error != "" {
		res = jobs.AgentResult{Error: "interrupted: the agent on " + a.host + " stopped while the job ran", Retryable: true}
	}
	// The end is reported even when the agent is stopping, a few times if the server does
	// not answer; a job never reported is taken back by the server after its lease.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := a.c.FinishAgentJob(rctx, a.host, id, &res)
		if err == nil {
			if res.Error != "" {
				fmt.Fprintf(a.out, "rewind agent: job %s failed: %s\n", id, res.Error)
			} else {
				fmt.Fprintf(a.out, "rewind agent: job %s done\n", id)
			}
			return
		}
		if !errs.Is(err, errs.Unavailable) || attempt == 5 || rctx.Err() != nil {
			fmt.Fprintf(a.out, "rewind agent: reporting the end of job %s: %v\n", id, err)
			return
		}
		time.Sleep(time.Duration(attempt) * time.Second)
	}
}
