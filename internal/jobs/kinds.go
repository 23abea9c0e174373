package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// RestoreParams are the Params of a RESTORE job.
type RestoreParams struct {
	Point string `json:"point"` // a point ID (or unique prefix), or "latest" of the job's resource
	// Target is an absolute path (a directory; a file for SQLite and Redis), or for MySQL a
	// server URL whose password is in the file its password_file parameter names (never in
	// the URL: params are kept in the catalog).
	Target  string   `json:"target"`
	Include []string `json:"include,omitempty"` // only these paths (files.RestoreOptions.Include)
	// At is the time a database point is restored to (PostgreSQL, SQLite); nil: the newest.
	At *time.Time `json:"at,omitempty"`
}

// VerifyParams are the Params of a VERIFY job.
type VerifyParams struct {
	ReadData bool `json:"read_data"` // read and authenticate every pack, not only the structure
}

// CopyParams are the Params of a COPY job: the job copies Point from Vault to TargetVault.
type CopyParams struct {
	// Point is the source point's ID. Empty: every point of the job's resource that the
	// target vault holds no copy of (a pull rule's job).
	Point string `json:"point,omitempty"`
}

// PruneParams are the Params of a PRUNE job. Without Resource the retention of every
// resource with points in the vault is applied.
type PruneParams struct {
	Resource string `json:"resource,omitempty"`
}

func decodeParams(j *catalog.Job, v any) error {
	if len(j.Params) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(j.Params)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		return errs.Errorf("jobs.Run", errs.Invalid, "job %s: params %.200s: %v", j.ID, j.Params, err).
			WithHint("see the job kind's parameters in the API reference")
	}
	return nil
}

// execute runs a claimed job. It returns how the job ends when it did not fail.
func (r *Runner) execute(ctx context.Context, j *catalog.Job, prog *progress) (*finish, error) {
	switch j.Kind {
	case catalog.JobBackup:
		return r.backup(ctx, j, prog)
	case catalog.JobCopy:
		return r.copyJob(ctx, j, prog)
	case catalog.JobRestore:
		return r.restore(ctx, j, prog)
	case catalog.JobVerify:
		return r.verify(ctx, j, prog)
	case catalog.JobPrune:
		return r.prune(ctx, j)
	}
	return nil, errs.Errorf("jobs.Run", errs.Invalid, "job %s: unknown kind %q", j.ID, j.Kind)
}

func (r *Runner) resource(j *catalog.Job) (config.Resource, error) {
	res, ok := r.env.Config.Resources[j.Resource]
	if !ok {
		return res, errs.Errorf("jobs.Run", errs.NotFound, "job %s: resource %q is not configured", j.ID, j.Resource).
			WithHint("the resource was removed from the configuration after the job was created")
	}
	return res, nil
}

// rule returns the plan rule that made j, or nil for a job made on demand.
func (r *Runner) rule(j *catalog.Job) (*config.Rule, error) {
	if j.Plan == "" && j.Rule == "" {
		return nil, nil
	}
	p, ok := r.env.Config.Plans[j.Plan]
	if ok {
		for i := range p.Rules {
			if p.Rules[i].Name == j.Rule {
				return &p.Rules[i], nil
			}
		}
	}
	return nil, errs.Errorf("jobs.Run", errs.NotFound, "job %s: plan %q has no rule %q in the configuration", j.ID, j.Plan, j.Rule)
}

func (r *Runner) backup(ctx context.Context, j *catalog.Job, prog *progress) (*finish, error) {
	plan, err := r.backupPlan(j)
	if err != nil {
		return nil, err
	}
	if plan.host != r.env.Host {
		return nil, errs.Errorf("jobs.backup", errs.Invalid, "resource %s lives on host %s: an agent there runs its backups, not this server (%s)", plan.res.Name, plan.host, r.env.Host).
			WithHint("start `rewind agent --server URL --host " + plan.host + "` on " + plan.host)
	}
	repo, release, err := r.lockShared(ctx, plan.vault)
	if err != nil {
		return nil, err
	}
	defer release()
	vp, c, err := backupResource(ctx, repo, plan.res, plan.tags, plan.host, r.env.Now,
		func(s files.Status) { prog.set(s.Bytes, s.BytesTotal, s.Files) })
	if err != nil {
		return nil, err
	}
	return r.backupFinish(j, plan, vp, c), nil
}

// backupPlan is what a backup job will do: which resource, into which vault, on which
// host, with which tags, under which rule.
type backupPlanT struct {
	res   config.Resource
	rule  *config.Rule
	vault string
	host  string
	tags  map[string]string
}

func (r *Runner) backupPlan(j *catalog.Job) (*backupPlanT, error) {
	const op = "jobs.backup"
	res, err := r.resource(j)
	if err != nil {
		return nil, err
	}
	if _, err := pointKindOf(res.Kind); err != nil {
		return nil, err
	}
	rule, err := r.rule(j)
	if err != nil {
		return nil, err
	}
	vaultName := j.Vault
	if vaultName == "" && rule != nil {
		vaultName = rule.Vault
	}
	if vaultName == "" {
		return nil, errs.Errorf(op, errs.Invalid, "backup job %s names no vault", j.ID)
	}
	tags := map[string]string{}
	maps.Copy(tags, res.Tags)
	if rule != nil {
		maps.Copy(tags, rule.Tags)
	}
	return &backupPlanT{res: res, rule: rule, vault: vaultName, host: r.hostOf(j), tags: tags}, nil
}

// backupFiles backs res up into repo (locked by the caller) as host and saves the point:
// the part of a backup job that reads the resource, run by the server or by an agent.
func backupFiles(ctx context.Context, repo *vault.Repository, res config.Resource, tags map[string]string, host string,
	start time.Time, now func() time.Time, progress files.Progress) (*vault.Point, *files.BackupResult, error) {
	parent, err := repo.FindPoint(ctx, "latest", res.Name)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, nil, err
	}
	if parent != nil && (parent.Kind != vault.KindFiles || parent.Host != host) {
		parent = nil
	}
	opts := files.BackupOptions{Excludes: res.Excludes, OneFileSystem: res.OneFileSystem, Progress: progress}
	if parent != nil {
		opts.Parent = parent.Root
	}
	br, err := files.Backup(ctx, files.FromVault(repo), res.Paths, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := repo.Flush(ctx); err != nil {
		return nil, nil, err
	}
	vp := &vault.Point{
		Kind: vault.KindFiles, Time: start.UTC(), Host: host, Resource: res.Name, Paths: res.Paths,
		Tags: tags, Root: br.Root,
		Summary: vault.Summary{
			Files: br.Summary.Files, Dirs: br.Summary.Dirs, Bytes: br.Summary.BytesInTree,
			BlobsAdded: br.Summary.NewBlobs, BytesAdded: br.Summary.NewBytes, Duration: now().Sub(start),
		},
	}
	if parent != nil {
		pid := parent.ID
		vp.Parent = &pid
	}
	id, err := repo.SavePoint(ctx, vp)
	if err != nil {
		return nil, nil, err
	}
	vp.ID = id
	return vp, br, nil
}

// Counts are a finished job's counters and warnings, as the server or an agent saw them.
type Counts struct {
	BytesRead  int64  `json:"bytesRead"`
	BytesTotal int64  `json:"bytesTotal"`
	Files      int64  `json:"files"`
	Warnings   int    `json:"warnings"` // how many items failed
	Warning    string `json:"warning"`  // the first, as text
}

func backupCounts(br *files.BackupResult) Counts {
	c := Counts{BytesRead: int64(br.Summary.BytesRead), BytesTotal: int64(br.Summary.BytesInTree), Files: int64(br.Summary.Files), Warnings: len(br.Warnings)}
	if len(br.Warnings) > 0 {
		c.Warning = br.Warnings[0].String()
	}
	return c
}

// backupFinish is how a backup job that saved vp ends: the point recorded in the catalog
// with its event, the rule's copies and retention created as follow-up jobs.
func (r *Runner) backupFinish(j *catalog.Job, plan *backupPlanT, vp *vault.Point, c Counts) *finish {
	cp := catalogPoint(plan.vault, vp)
	fin := &finish{state: catalog.StateCompleted, update: catalog.JobUpdate{
		PointID: &cp.ID, BytesDone: catalog.Ptr(c.BytesRead), BytesTotal: catalog.Ptr(c.BytesTotal), FilesDone: catalog.Ptr(c.Files),
	}}
	if c.Warnings > 0 {
		fin.state = catalog.StatePartial
		fin.warning = fmt.Sprintf("%d files or directories could not be read; the first: %s", c.Warnings, c.Warning)
	}
	var copies []config.Copy
	if plan.rule != nil {
		copies = plan.rule.CopyTo
	}
	vaultName := plan.vault
	fin.extra = func(ctx context.Context, tx catalog.Tx, _ *catalog.Job) error {
		if err := tx.UpsertPoint(ctx, cp); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, catalog.PointStateEvent(cp, catalog.PointAvailable, r.env.Site)); err != nil {
			return err
		}
		fin.followUps = fin.followUps[:0]
		for _, c := range copies {
			params := CopyParams{Point: cp.ID}
			if plan.res.Continuous {
				// The copy takes the log shipped since the last copy too, so the other site
				// can restore to any time up to this backup, not only to the backups.
				params = CopyParams{}
			}
			cj := &catalog.Job{
				Kind: catalog.JobCopy, State: catalog.StatePending, Resource: j.Resource, Vault: vaultName,
				TargetVault: c.Vault, Plan: j.Plan, Rule: j.Rule, Params: mustParams(params),
				DedupKey: "copy/" + j.ID + "/" + c.Vault,
			}
			if err := catalog.CreateJobWithEvent(ctx, tx, cj, r.jobEvent); err != nil {
				return err
			}
			fin.followUps = append(fin.followUps, cj.ID)
		}
		pid, err := r.retentionJob(ctx, tx, j, vaultName)
		if err != nil {
			return err
		}
		if pid != "" {
			fin.followUps = append(fin.followUps, pid)
		}
		return nil
	}
	return fin
}

// retentionJob creates the PRUNE job that applies the retention of j's resource in vault
// after j, when some configured retention applies there; it returns its ID or "".
func (r *Runner) retentionJob(ctx context.Context, tx catalog.Tx, j *catalog.Job, vaultName string) (string, error) {
	pols, _ := r.policies(vaultName, j.Resource)
	if len(pols) == 0 {
		return "", nil
	}
	pj := &catalog.Job{
		Kind: catalog.JobPrune, State: catalog.StatePending, Resource: j.Resource, Vault: vaultName,
		Plan: j.Plan, Rule: j.Rule, Params: mustParams(PruneParams{Resource: j.Resource}),
		DedupKey: "retention/" + j.ID + "/" + vaultName,
	}
	if err := catalog.CreateJobWithEvent(ctx, tx, pj, r.jobEvent); err != nil {
		return "", err
	}
	return pj.ID, nil
}

func mustParams(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("jobs: marshal params: " + err.Error()) // plain structs always marshal
	}
	return b
}

// catalogPoint is the catalog record of a vault point.
func catalogPoint(vaultName string, p *vault.Point) *catalog.Point {
	cp := &catalog.Point{
		ID: p.ID.String(), Vault: vaultName, Resource: p.Resource, Kind: p.Kind, Time: p.Time,
		Host: p.Host, Paths: p.Paths, Tags: p.Tags, SizeBytes: int64(p.Summary.Bytes),
		CopiedFrom: p.Meta[vault.MetaCopiedFrom],
	}
	if p.Parent != nil {
		cp.Parent = p.Parent.String()
	}
	if p.Range != nil {
		from, to := p.Range.From, p.Range.To
		cp.RangeFrom, cp.RangeTo = &from, &to
	}
	return cp
}

func (r *Runner) copyJob(ctx context.Context, j *catalog.Job, prog *progress) (*finish, error) {
	const op = "jobs.copy"
	var params CopyParams
	if err := decodeParams(j, &params); err != nil {
		return nil, err
	}
	if j.Vault == "" || j.TargetVault == "" || (params.Point == "" && j.Resource == "") {
		return nil, errs.Errorf(op, errs.Invalid, "copy job %s needs a source vault, a target vault and params.point or a resource", j.ID)
	}
	src, releaseSrc, err := r.lockShared(ctx, j.Vault)
	if err != nil {
		return nil, err
	}
	defer releaseSrc()
	dst, releaseDst, err := r.lockShared(ctx, j.TargetVault)
	if err != nil {
		return nil, err
	}
	defer releaseDst()
	var points []*vault.Point
	if params.Point != "" {
		p, err := src.FindPoint(ctx, params.Point, "")
		if err != nil {
			return nil, err
		}
		points = []*vault.Point{p}
	} else if points, err = missingPoints(ctx, src, dst, j.Resource); err != nil {
		return nil, err
	}
	var rep *vault.CopyReport
	if len(points) > 0 {
		copyFn := vault.Copy
		if r.env.Config.Vaults[j.Vault].ReadOnly {
			copyFn = vault.CopyFromReadOnly
		}
		rep, err = copyFn(ctx, src, dst, points, func(c vault.CopyProgress) {
			prog.set(c.BytesCopied, 0, uint64(c.PointsDone))
		})
		if err != nil {
			return nil, err
		}
		if len(rep.Points) != len(points) {
			return nil, errs.Errorf(op, errs.Internal, "copy of %d points reported %d", len(points), len(rep.Points))
		}
	} else {
		rep = &vault.CopyReport{}
	}
	var cps []*catalog.Point
	var files, bytes int64
	for _, c := range rep.Points {
		dp, err := dst.LoadPoint(ctx, c.Dst)
		if err != nil {
			return nil, err
		}
		cp := catalogPoint(j.TargetVault, dp)
		cp.CopiedFrom = c.Src.String()
		cps = append(cps, cp)
		files += int64(dp.Summary.Files)
		bytes += int64(dp.Summary.Bytes)
	}
	fin := &finish{state: catalog.StateCompleted, update: catalog.JobUpdate{
		BytesDone: catalog.Ptr(int64(rep.BytesCopied)), FilesDone: &files, BytesTotal: &bytes,
	}}
	if n := len(cps); n > 0 {
		fin.update.PointID = &cps[n-1].ID
	}
	fin.extra = func(ctx context.Context, tx catalog.Tx, _ *catalog.Job) error {
		for _, cp := range cps {
			if err := tx.UpsertPoint(ctx, cp); err != nil {
				return err
			}
			if err := tx.AppendEvent(ctx, catalog.PointStateEvent(cp, catalog.PointAvailable, r.env.Site)); err != nil {
				return err
			}
		}
		fin.followUps = fin.followUps[:0]
		pid, err := r.retentionJob(ctx, tx, j, j.TargetVault)
		if pid != "" {
			fin.followUps = append(fin.followUps, pid)
		}
		return err
	}
	return fin, nil
}

// missingPoints returns resource's points in src that dst holds no copy of (no dst point
// names it as copied_from), oldest first.
func missingPoints(ctx context.Context, src, dst *vault.Repository, resource string) ([]*vault.Point, error) {
	have := map[string]bool{}
	dps, err := dst.Points(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range dps {
		if from := p.Meta[vault.MetaCopiedFrom]; from != "" {
			have[from] = true
		}
	}
	sps, err := src.Points(ctx)
	if err != nil {
		return nil, err
	}
	var out []*vault.Point
	for _, p := range sps {
		if p.Resource == resource && !have[p.ID.String()] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Time.Before(out[k].Time) })
	return out, nil
}

func (r *Runner) restore(ctx context.Context, j *catalog.Job, prog *progress) (*finish, error) {
	params, err := restoreParams(j)
	if err != nil {
		return nil, err
	}
	if host := r.hostOf(j); host != r.env.Host {
		return nil, errs.Errorf("jobs.restore", errs.Invalid, "resource %s lives on host %s: an agent there runs its restores, not this server (%s)", j.Resource, host, r.env.Host).
			WithHint("start `rewind agent --server URL --host " + host + "` on " + host)
	}
	if err := r.checkPasswordFile(params.Target); err != nil {
		return nil, err
	}
	repo, release, err := r.lockShared(ctx, j.Vault)
	if err != nil {
		return nil, err
	}
	defer release()
	p, c, err := restoreResource(ctx, repo, j.Resource, params, func(s files.Status) { prog.set(s.Bytes, s.BytesTotal, s.Files) })
	if err != nil {
		return nil, err
	}
	return r.restoreFinish(p.ID.String(), p.Resource, p.Tags, params.Target, c), nil
}

func restoreParams(j *catalog.Job) (RestoreParams, error) {
	var params RestoreParams
	if err := decodeParams(j, &params); err != nil {
		return params, err
	}
	if params.Point == "" || !validRestoreTarget(params.Target) || j.Vault == "" {
		return params, errs.Errorf("jobs.restore", errs.Invalid, "restore job %s needs a vault, params.point and an absolute params.target or a mysql:// server URL (got %q)", j.ID, displayTarget(params.Target))
	}
	if u, err := url.Parse(params.Target); err == nil && isServerURL(params.Target) && u.User != nil {
		if _, has := u.User.Password(); has {
			return params, errs.Errorf("jobs.restore", errs.Invalid, "restore job %s: the target URL carries a password, which the job would keep in the catalog", j.ID).
				WithHint("put the password in a file the server can read and name it in the URL: mysql://user@host:3306/?password_file=/etc/rewind/restore-target.pw")
		}
	}
	return params, nil
}

// restoreFiles restores files point p from repo (locked by the caller) into
// params.Target. A restore where some paths failed returns the point and counts with
// Warnings set.
func restoreFiles(ctx context.Context, repo *vault.Repository, p *vault.Point, params RestoreParams, progress files.Progress) (*vault.Point, Counts, error) {
	rr, err := files.Restore(ctx, files.FromVault(repo), p.Root, params.Target, files.RestoreOptions{
		Include: params.Include, Progress: progress,
	})
	if err != nil && (rr == nil || len(rr.Failed) == 0) {
		return nil, Counts{}, err
	}
	c := Counts{BytesRead: int64(rr.Bytes), Files: int64(rr.Files), Warnings: len(rr.Failed)}
	if len(rr.Failed) > 0 {
		c.Warning = fmt.Sprint(rr.Failed[0])
	}
	return p, c, nil
}

// restoreFinish is how a restore job of point (of resource source, with tags) into target
// ends; its event names the created resource and the original resource's tags.
func (r *Runner) restoreFinish(point, source string, tags map[string]string, target string, c Counts) *finish {
	if res, ok := r.env.Config.Resources[source]; ok && len(res.Tags) > 0 {
		tags = res.Tags
	}
	target = displayTarget(target) // a server URL's password is not for the catalog
	fin := &finish{state: catalog.StateCompleted, update: catalog.JobUpdate{
		PointID: &point, CreatedResource: &target, BytesDone: catalog.Ptr(c.BytesRead), FilesDone: catalog.Ptr(c.Files),
	}}
	if c.Warnings > 0 {
		fin.state = catalog.StatePartial
		fin.warning = fmt.Sprintf("%d paths could not be restored; the first: %s", c.Warnings, c.Warning)
	}
	fin.event = func(j *catalog.Job) *catalog.Event { return restoreEvent(j, r.env.Site, source, tags) }
	return fin
}

// restoreEvent is the job event of a restore: the detail also names the resource the point
// came from and its tags, so a rule can match restores of, say, every app=shop resource.
func restoreEvent(j *catalog.Job, site, source string, tags map[string]string) *catalog.Event {
	e := catalog.JobStateEvent(j, site)
	var d map[string]any
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		panic("jobs: decode job detail: " + err.Error()) // the catalog built it from a struct
	}
	d["sourceResource"] = source
	d["resourceTags"] = tags
	e.Detail = mustParams(d)
	return e
}

func (r *Runner) verify(ctx context.Context, j *catalog.Job, prog *progress) (*finish, error) {
	const op = "jobs.verify"
	var params VerifyParams
	if err := decodeParams(j, &params); err != nil {
		return nil, err
	}
	repo, release, err := r.lockShared(ctx, j.Vault)
	if err != nil {
		return nil, err
	}
	defer release()
	rep, err := repo.Check(ctx, vault.CheckOptions{ReadData: params.ReadData,
		Progress: func(done, total int) { prog.set(uint64(done), uint64(total), 0) }})
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		return nil, errs.Errorf(op, errs.Corrupt, "vault %s: check found %d problems; the first: %s", j.Vault, len(rep.Errors), rep.Errors[0]).
			WithHint("run `rewind check` on the vault for the full list and `rewind repair` where it applies")
	}
	return &finish{state: catalog.StateCompleted, update: catalog.JobUpdate{
		BytesDone: catalog.Ptr(int64(rep.PacksRead)), BytesTotal: catalog.Ptr(int64(rep.Packs)),
		FilesDone: catalog.Ptr(int64(rep.Points)),
	}}, nil
}

func (r *Runner) prune(ctx context.Context, j *catalog.Job) (*finish, error) {
	var params PruneParams
	if err := decodeParams(j, &params); err != nil {
		return nil, err
	}
	if params.Resource == "" {
		params.Resource = j.Resource
	}
	if j.Vault == "" {
		return nil, errs.Errorf("jobs.prune", errs.Invalid, "prune job %s names no vault", j.ID)
	}
	deleted, err := r.applyRetention(ctx, j.Vault, params.Resource, r.env.Now())
	if err != nil {
		return nil, err
	}
	return &finish{state: catalog.StateCompleted, update: catalog.JobUpdate{FilesDone: catalog.Ptr(int64(deleted))}}, nil
}

// policies returns the retention policies configured for resource's points in vault: those
// of every rule backing it up into vault and of every copy_to naming vault. ok is false
// when one of them keeps every point (no retention).
func (r *Runner) policies(vaultName, resource string) (pols []policy, ok bool) {
	for _, pn := range sortedKeys(r.env.Config.Plans) {
		p := r.env.Config.Plans[pn]
		selected := false
		for _, rn := range p.Resources {
			selected = selected || rn == resource
		}
		if !selected {
			continue
		}
		for _, rule := range p.Rules {
			if rule.Vault == vaultName {
				if rule.Retention.IsZero() {
					return nil, false
				}
				pols = append(pols, policy{name: pn + "/" + rule.Name, ret: rule.Retention})
			}
			for _, c := range rule.CopyTo {
				if c.Vault == vaultName {
					if c.Retention.IsZero() {
						return nil, false
					}
					pols = append(pols, policy{name: pn + "/" + rule.Name + " copy", ret: c.Retention})
				}
			}
		}
	}
	return pols, true
}

func (r *Runner) applyRetention(ctx context.Context, vaultName, resource string, now time.Time) (int, error) {
	repo, err := r.env.OpenVault(ctx, vaultName)
	if err != nil {
		return 0, err
	}
	lock, err := repo.Lock(ctx, true)
	if err != nil {
		return 0, err
	}
	locked := true
	defer func() {
		if locked {
			lock.Unlock(context.WithoutCancel(ctx))
		}
	}()
	all, err := repo.Points(ctx)
	if err != nil {
		return 0, err
	}
	remove := r.selectRemovals(all, vaultName, resource, now)
	deleted := 0
	for _, p := range remove {
		if err := repo.DeletePoint(ctx, p.ID); err != nil && !errs.Is(err, errs.NotFound) {
			return deleted, fmt.Errorf("removing point %s (%d of %d removed so far): %w", p.ID.Short(), deleted, len(remove), err)
		}
		if err := r.markDeleted(ctx, vaultName, p); err != nil {
			return deleted, err
		}
		deleted++
	}
	if deleted == 0 {
		return 0, nil
	}
	// Prune takes its own exclusive lock.
	locked = false
	if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
		return deleted, err
	}
	if _, err := repo.Prune(ctx, vault.PruneOptions{}); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// markDeleted records in the catalog that p was deleted from its vault, with its event.
func (r *Runner) markDeleted(ctx context.Context, vaultName string, p *vault.Point) error {
	ctx = context.WithoutCancel(ctx) // the point is gone from the vault: record it regardless
	return r.env.Store.Tx(ctx, func(tx catalog.Tx) error {
		cp, err := tx.MarkPointDeleted(ctx, p.ID.String())
		if errs.Is(err, errs.NotFound) {
			// Indexed by no one yet (a catalog rebuilt since): record it as history.
			cp = catalogPoint(vaultName, p)
			cp.State = catalog.PointDeleted
			err = tx.UpsertPoint(ctx, cp)
		}
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, catalog.PointStateEvent(cp, catalog.PointDeleted, r.env.Site))
	})
}

// lockShared opens vault name and takes a shared lock on it, with a repository whose index
// is current under the lock: a prune may have finished between opening and locking, so
// the vault is asked for again once locked (Env.OpenVault reopens it when its index
// changed), and the lock moves to the fresher repository. No prune can run while the lock
// is held. A read_only vault is opened without a lock (this server writes nothing there,
// not even a lock; a prune by its owner meanwhile makes a read fail loudly, never wrong).
// release drops the lock.
func (r *Runner) lockShared(ctx context.Context, name string) (repo *vault.Repository, release func(), err error) {
	repo, err = r.env.OpenVault(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if v, ok := r.env.Config.Vaults[name]; ok && v.ReadOnly {
		return repo, func() {}, nil
	}
	lock, err := repo.Lock(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	unlock := func(l *vault.Lock) func() {
		return func() { l.Unlock(context.WithoutCancel(ctx)) }
	}
	fresh, err := r.env.OpenVault(ctx, name)
	if err != nil || fresh == repo {
		if err != nil {
			lock.Unlock(context.WithoutCancel(ctx))
			return nil, nil, err
		}
		return repo, unlock(lock), nil
	}
	// Loaded under the first lock, so after any prune; lock it before letting go.
	flock, err := fresh.Lock(ctx, false)
	lock.Unlock(context.WithoutCancel(ctx))
	if err != nil {
		return nil, nil, err
	}
	return fresh, unlock(flock), nil
}
