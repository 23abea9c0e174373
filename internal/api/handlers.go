package api

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// read runs fn in a catalog transaction.
func (s *Server) read(ctx context.Context, fn func(catalog.Tx) error) error {
	return s.store.Tx(ctx, fn)
}

func (s *Server) listSites(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var out []catalog.Site
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListSites(r.Context()); return })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[catalog.Site]{Items: nonNil(out)})
	return nil
}

func (s *Server) listVaults(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var out []catalog.Vault
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListVaults(r.Context()); return })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[catalog.Vault]{Items: nonNil(out)})
	return nil
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var out []catalog.Resource
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListResources(r.Context()); return })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[catalog.Resource]{Items: nonNil(out)})
	return nil
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	now := s.now()
	names := make([]string, 0, len(s.cfg.Plans))
	for n := range s.cfg.Plans {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Plan, 0, len(names))
	for _, n := range names {
		p := s.cfg.Plans[n]
		v := Plan{Name: p.Name, Resources: nonNil(p.Resources), Rules: []Rule{}}
		if len(p.Select.Tags) > 0 {
			v.Tags = p.Select.Tags
		}
		for _, rl := range p.Rules {
			rv := Rule{Name: rl.Name, Schedule: rl.Schedule.String(), Vault: rl.Vault, PullFrom: rl.PullFrom, Continuous: rl.Continuous}
			if next := rl.Schedule.Next(now); !next.IsZero() {
				next = next.UTC()
				rv.NextRun = &next
			}
			if !rl.Retention.IsZero() {
				rv.Retention = rl.Retention.String()
			}
			if rl.Window.Start > 0 {
				rv.StartWindow = rl.Window.Start.String()
			}
			if rl.Window.Completion > 0 {
				rv.CompletionWindow = rl.Window.Completion.String()
			}
			for _, c := range rl.CopyTo {
				cv := Copy{Vault: c.Vault}
				if !c.Retention.IsZero() {
					cv.Retention = c.Retention.String()
				}
				rv.CopyTo = append(rv.CopyTo, cv)
			}
			v.Rules = append(v.Rules, rv)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, List[Plan]{Items: out})
	return nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q, err := newQuery(r, "kind", "state", "resource", "vault", "since", "limit", "after")
	if err != nil {
		return err
	}
	f := catalog.JobFilter{Resource: q.name("resource"), Vault: q.name("vault"), Since: q.time("since"),
		Limit: q.limit(), After: q.cursor(), Newest: true}
	if k := q.str("kind"); k != nil && q.err == nil {
		kind := catalog.JobKind(strings.ToUpper(*k))
		if !kind.Valid() {
			return errs.Errorf(q.op, errs.Invalid, "kind=%.40q is not one of backup, restore, verify, prune, copy", *k)
		}
		f.Kind = &kind
	}
	if st := q.str("state"); st != nil && q.err == nil {
		state := catalog.State(strings.ToUpper(*st))
		if !state.Valid() {
			return errs.Errorf(q.op, errs.Invalid, "state=%.40q is not a job state", *st).
				WithHint("one of CREATED, PENDING, RUNNING, COMPLETED, PARTIAL, FAILED, ABORTED, EXPIRED")
		}
		f.State = &state
	}
	if q.err != nil {
		return q.err
	}
	var out []*catalog.Job
	err = s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListJobs(r.Context(), f); return })
	if err != nil {
		return err
	}
	page := List[*catalog.Job]{Items: nonNil(out)}
	if len(out) == f.Limit {
		page.Next = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	var j *catalog.Job
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { j, err = tx.GetJob(r.Context(), id); return })
	if err != nil {
		return withHint(err, "GET /v1/jobs lists the jobs")
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) startJob(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/jobs"
	if err := noQuery(r); err != nil {
		return err
	}
	if err := checkContentType(op, r); err != nil {
		return err
	}
	req, err := DecodeJobRequest(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		return err
	}
	sj, err := s.resolve(r.Context(), req)
	if err != nil {
		return err
	}
	j, err := s.jobs.Start(r.Context(), sj)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	writeJSON(w, http.StatusCreated, j)
	return nil
}

// resolve checks that the names of a well-formed request exist and fills what the request
// left to the server: a backup's vault from the plans, a restore's "latest" point.
func (s *Server) resolve(ctx context.Context, req JobRequest) (StartJob, error) {
	const op = "POST /v1/jobs"
	sj := StartJob{Kind: req.JobKind(), Resource: req.Resource, Vault: req.Vault, TargetVault: req.TargetVault,
		Point: req.Point, Target: req.Target}
	if sj.Kind == catalog.JobBackup && sj.Vault == "" {
		v, err := s.planVault(op, sj.Resource)
		if err != nil {
			return StartJob{}, err
		}
		sj.Vault = v
	}
	err := s.read(ctx, func(tx catalog.Tx) error {
		if sj.Resource != "" {
			if _, err := tx.GetResource(ctx, sj.Resource); err != nil {
				return withHint(err, "GET /v1/resources lists the resources")
			}
		}
		for _, v := range []string{sj.Vault, sj.TargetVault} {
			if v != "" {
				if _, err := tx.GetVault(ctx, v); err != nil {
					return withHint(err, "GET /v1/vaults lists the vaults")
				}
			}
		}
		switch {
		case sj.Point == "latest":
			f := catalog.PointFilter{Resource: nonEmpty(sj.Resource), Vault: nonEmpty(sj.Vault),
				State: catalog.Ptr(catalog.PointAvailable), Newest: true, Limit: 1}
			ps, err := tx.ListPoints(ctx, f)
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return errs.Errorf(op, errs.NotFound, "no available point of resource %q%s", sj.Resource, inVault(sj.Vault)).
					WithHint("GET /v1/points lists the points; run a backup first")
			}
			sj.Point, sj.Vault = ps[0].ID, ps[0].Vault
		case sj.Point != "":
			p, err := tx.GetPoint(ctx, sj.Point)
			if err != nil {
				return withHint(err, "GET /v1/points lists the points")
			}
			if p.State != catalog.PointAvailable {
				return errs.Errorf(op, errs.Conflict, "point %s is %s", p.ID, p.State).
					WithHint("choose an AVAILABLE point")
			}
			if sj.Resource != "" && p.Resource != sj.Resource {
				return errs.Errorf(op, errs.Invalid, "point %s is of resource %q, not %q", p.ID, p.Resource, sj.Resource)
			}
			if sj.Vault != "" && p.Vault != sj.Vault {
				return errs.Errorf(op, errs.Invalid, "point %s is in vault %q, not %q", p.ID, p.Vault, sj.Vault)
			}
			sj.Vault = p.Vault
		}
		return nil
	})
	return sj, err
}

// planVault picks the vault a backup of resource goes to when the request names none: the
// vault of the first rule (by plan name, then rule order) of a plan that selects it.
func (s *Server) planVault(op, resource string) (string, error) {
	names := make([]string, 0, len(s.cfg.Plans))
	for n := range s.cfg.Plans {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.cfg.Plans[n]
		for _, res := range p.Resources {
			if res == resource && len(p.Rules) > 0 {
				return p.Rules[0].Vault, nil
			}
		}
	}
	return "", errs.Errorf(op, errs.Invalid, "no plan selects resource %q, so the backup needs field \"vault\"", resource).
		WithHint(`send {"kind": "backup", "resource": "` + resource + `", "vault": "<vault>"}`)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	j, err := s.jobs.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) listPoints(w http.ResponseWriter, r *http.Request) error {
	q, err := newQuery(r, "resource", "vault", "state", "limit", "after")
	if err != nil {
		return err
	}
	f := catalog.PointFilter{Resource: q.name("resource"), Vault: q.name("vault"), Limit: q.limit(),
		After: q.cursor(), Newest: true}
	if st := q.str("state"); st != nil && q.err == nil {
		state := catalog.PointState(strings.ToUpper(*st))
		if !state.Valid() {
			return errs.Errorf(q.op, errs.Invalid, "state=%.40q is not one of AVAILABLE, DELETED, MISSING", *st)
		}
		f.State = &state
	}
	if q.err != nil {
		return q.err
	}
	var out []*catalog.Point
	err = s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListPoints(r.Context(), f); return })
	if err != nil {
		return withHint(err, "pass the \"next\" value of the previous page as after")
	}
	page := List[*catalog.Point]{Items: nonNil(out)}
	if len(out) == f.Limit {
		page.Next = out[len(out)-1].Cursor()
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getPoint(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var p *catalog.Point
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { p, err = tx.GetPoint(r.Context(), r.PathValue("id")); return })
	if err != nil {
		return withHint(err, "GET /v1/points lists the points")
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := newQuery(r, "since", "until", "source", "limit", "after")
	if err != nil {
		return err
	}
	f := catalog.EventFilter{Since: q.time("since"), Until: q.time("until"), Source: q.str("source"),
		Limit: q.limit(), After: q.cursor()}
	if q.err != nil {
		return q.err
	}
	var out []*catalog.Event
	err = s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListEvents(r.Context(), f); return })
	if err != nil {
		return err
	}
	page := List[*catalog.Event]{Items: nonNil(out)}
	if len(out) == f.Limit {
		page.Next = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func inVault(v string) string {
	if v == "" {
		return ""
	}
	return " in vault " + `"` + v + `"`
}

// withHint adds hint to a NotFound error that has none.
func withHint(err error, hint string) error {
	if errs.Is(err, errs.NotFound) && errs.HintOf(err) == "" {
		return errs.E("api", errs.NotFound, err).WithHint(hint)
	}
	return err
}
