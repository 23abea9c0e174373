package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/intake"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// EventsService is what the event routes need from the server's event machinery.
type EventsService interface {
	// Replay sends the archived events of req's window through the rules again (all, or
	// req.Rule only). errs.Invalid for a bad window or name, errs.NotFound for an unknown
	// rule. Safe for concurrent use; no retries.
	Replay(ctx context.Context, req ReplayRequest) (*ReplayResult, error)
	// Alarms lists every alarm's current state by name. Safe for concurrent use.
	Alarms() []alarm.Status
	// IntakeSecret is the shared secret Alertmanager may send as its bearer token instead
	// of an operator token; nil when none is configured.
	IntakeSecret() []byte
}

// ReplayRequest is the body of POST /v1/events/replay.
type ReplayRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Rule string    `json:"rule,omitempty"`
	Name string    `json:"name,omitempty"`
}

// ReplayResult answers POST /v1/events/replay.
type ReplayResult struct {
	Name       string `json:"name"`
	Events     int    `json:"events"`
	Deliveries int    `json:"deliveries"`
}

// RuleInfo is one rule as GET /v1/rules lists it: its spec as written, and where it comes
// from: "config" (the server's configuration file; read-only through the API) or "api"
// (stored in the catalog by PUT /v1/rules/{name}, with its times).
type RuleInfo struct {
	Name      string         `json:"name"`
	Source    string         `json:"source"`
	Spec      rules.RuleSpec `json:"spec"`
	CreatedAt *time.Time     `json:"createdAt,omitempty"`
	UpdatedAt *time.Time     `json:"updatedAt,omitempty"`
}

// MaxIntakeBody is the largest body the intake routes read: ten PutEvents entries of up
// to 256 KiB each, or an Alertmanager notification of many alerts.
const MaxIntakeBody = 4 << 20 // bytes

// Registry returns the server's Prometheus registry, the one /metrics serves, so that
// alarms can read Rewind's own metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

func (s *Server) eventsService(op string) (EventsService, error) {
	if s.events == nil {
		return nil, errs.Errorf(op, errs.Unavailable, "this server runs no event rules or alarms").
			WithHint("the server was started without its event dispatcher")
	}
	return s.events, nil
}

// readIntake reads an intake body of at most MaxIntakeBody bytes.
func readIntake(op string, r *http.Request) ([]byte, error) {
	if err := checkContentType(op, r); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxIntakeBody+1))
	if err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	if len(data) > MaxIntakeBody {
		return nil, errs.Errorf(op, errs.Invalid, "the request body is larger than %d bytes", MaxIntakeBody).
			WithHint("send fewer events per request")
	}
	return data, nil
}

// appendEnvelopes writes the envelopes into the outbox in one transaction; the
// dispatcher routes them after commit like Rewind's own events.
func (s *Server) appendEnvelopes(ctx context.Context, envs []rules.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	return s.store.Tx(ctx, func(tx catalog.Tx) error {
		for _, e := range envs {
			ev := &catalog.Event{Version: e.Version, ID: e.ID, Source: e.Source, DetailType: e.DetailType, Time: e.Time,
				Site: e.Site, Resources: e.Resources, Detail: e.Detail}
			if len(ev.Detail) == 0 {
				ev.Detail = json.RawMessage("{}")
			}
			if ev.Resources == nil {
				ev.Resources = []string{}
			}
			if err := tx.AppendEvent(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// putEvents serves POST /v1/events: a PutEvents batch, answered like PutEvents.
func (s *Server) putEvents(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/events"
	if err := noQuery(r); err != nil {
		return err
	}
	body, err := readIntake(op, r)
	if err != nil {
		return err
	}
	entries, failed, err := intake.ParsePutEvents(body, s.now())
	if err != nil {
		return err
	}
	envs := make([]rules.Envelope, len(entries))
	for i, e := range entries {
		envs[i] = e.Envelope
	}
	if err := s.appendEnvelopes(r.Context(), envs); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, intake.NewResponse(entries, failed))
	return nil
}

// intakeAlertmanager serves POST /v1/intake/alertmanager: an operator token, or the
// shared secret as the bearer token.
func (s *Server) intakeAlertmanager(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/intake/alertmanager"
	if err := s.intakeAuth(r); err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	body, err := readIntake(op, r)
	if err != nil {
		return err
	}
	envs, err := intake.ParseAlertmanager(body, s.now())
	if err != nil {
		return err
	}
	if err := s.appendEnvelopes(r.Context(), envs); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, IntakeResult{EventIDs: eventIDs(envs)})
	return nil
}

// intakeAuth accepts the shared secret, else a token of role operator or higher.
func (s *Server) intakeAuth(r *http.Request) error {
	if s.events != nil {
		if secret := s.events.IntakeSecret(); len(secret) > 0 {
			scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				got := sha256.Sum256([]byte(strings.TrimSpace(value)))
				want := sha256.Sum256(secret)
				if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
					return nil
				}
			}
		}
	}
	t, err := s.authenticate(r)
	if err != nil {
		return err
	}
	return authorize(t, r.Method, "/v1/intake/alertmanager", config.RoleOperator)
}

// IntakeResult answers the intake routes: the IDs of the events recorded.
type IntakeResult struct {
	EventIDs []string `json:"eventIds"`
}

func eventIDs(envs []rules.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

// intake serves POST /v1/intake/{name}: "alertmanager" is Alertmanager's receiver, any
// other name the configured mapping that turns the body into one event. Both need an
// operator token; Alertmanager may send the shared secret instead.
func (s *Server) intake(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/intake/{name}"
	name := r.PathValue("name")
	if name == "alertmanager" {
		return s.intakeAlertmanager(w, r)
	}
	t, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if err := authorize(t, r.Method, "/v1/intake/{name}", config.RoleOperator); err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	m, ok := s.cfg.Intake[name]
	if !ok {
		return errs.Errorf(op, errs.NotFound, "no intake %.70q is configured", name).
			WithHint("add it under intake: in the server's configuration")
	}
	body, err := readIntake(op, r)
	if err != nil {
		return err
	}
	env, err := m.Map(body, s.now())
	if err != nil {
		return err
	}
	env.ID = catalog.NewID(s.now())
	if err := s.appendEnvelopes(r.Context(), []rules.Envelope{env}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, IntakeResult{EventIDs: []string{env.ID}})
	return nil
}

func (s *Server) replayEvents(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /v1/events/replay"
	if err := noQuery(r); err != nil {
		return err
	}
	if err := checkContentType(op, r); err != nil {
		return err
	}
	var req ReplayRequest
	if err := decodeBody(op, r.Body, &req); err != nil {
		return err
	}
	if req.From.IsZero() || req.To.IsZero() {
		return errs.Errorf(op, errs.Invalid, "from and to are required").
			WithHint(`send {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}`)
	}
	ev, err := s.eventsService(op)
	if err != nil {
		return err
	}
	res, err := ev.Replay(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	q, err := newQuery(r, "rule", "limit", "after")
	if err != nil {
		return err
	}
	f := catalog.DeliveryFilter{State: catalog.Ptr(catalog.DeliveryDead), Rule: q.str("rule"), Limit: q.limit(),
		After: q.cursor(), Newest: true}
	if q.err != nil {
		return q.err
	}
	var out []*catalog.Delivery
	if err := s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListDeliveries(r.Context(), f); return }); err != nil {
		return err
	}
	page := List[*catalog.Delivery]{Items: nonNil(out)}
	if len(out) == f.Limit {
		page.Next = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// listRules serves GET /v1/rules: the configuration's rules and the catalog's, by name. A
// stored rule named like a configuration rule is not in force and not listed.
func (s *Server) listRules(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var stored []*catalog.EventRule
	if err := s.read(r.Context(), func(tx catalog.Tx) (err error) { stored, err = tx.ListEventRules(r.Context()); return }); err != nil {
		return err
	}
	out := []RuleInfo{}
	for _, name := range s.cfg.RuleNames() {
		out = append(out, RuleInfo{Name: name, Source: catalog.RuleSourceConfig, Spec: s.cfg.Rules[name]})
	}
	for _, er := range stored {
		if _, ok := s.cfg.Rules[er.Name]; ok {
			continue
		}
		info, err := storedRuleInfo(er)
		if err != nil {
			return err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// storedRuleInfo describes a rule stored in the catalog; errs.Corrupt when its spec does
// not decode.
func storedRuleInfo(er *catalog.EventRule) (RuleInfo, error) {
	spec, err := dispatch.DecodeRuleSpec(er.Spec)
	if err != nil {
		return RuleInfo{}, errs.Errorf("api.rules", errs.Corrupt, "rule %s: its stored spec does not decode: %v", er.Name, err).
			WithHint("put the rule again with PUT /v1/rules/" + er.Name + ", or delete it")
	}
	return RuleInfo{Name: er.Name, Source: catalog.RuleSourceAPI, Spec: spec, CreatedAt: &er.CreatedAt, UpdatedAt: &er.UpdatedAt}, nil
}

// getRule serves GET /v1/rules/{name}.
func (s *Server) getRule(w http.ResponseWriter, r *http.Request) error {
	const op = "GET /v1/rules/{name}"
	if err := noQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if spec, ok := s.cfg.Rules[name]; ok {
		writeJSON(w, http.StatusOK, RuleInfo{Name: name, Source: catalog.RuleSourceConfig, Spec: spec})
		return nil
	}
	var er *catalog.EventRule
	err := s.read(r.Context(), func(tx catalog.Tx) (err error) { er, err = tx.GetEventRule(r.Context(), name); return })
	if errs.Is(err, errs.NotFound) {
		return errs.Errorf(op, errs.NotFound, "no rule %.70q", name).WithHint("GET /v1/rules lists the rules")
	}
	if err != nil {
		return err
	}
	info, err := storedRuleInfo(er)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// configRuleConflict refuses to change a rule of the configuration through the API: the
// server would put the file's version back at its next start.
func (s *Server) configRuleConflict(op, name string) error {
	if _, ok := s.cfg.Rules[name]; !ok {
		return nil
	}
	return errs.Errorf(op, errs.Conflict, "rule %s is defined in the server's configuration file, which the API does not change", name).
		WithHint("edit rules." + name + " in the configuration and restart the server, or choose another name")
}

// putRule serves PUT /v1/rules/{name}: the body is a rule of the configuration's shape as
// JSON. It is compiled before anything is stored; the dispatchers of every server sharing
// the catalog pick it up at their next poll.
func (s *Server) putRule(w http.ResponseWriter, r *http.Request) error {
	const op = "PUT /v1/rules/{name}"
	if err := noQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := s.configRuleConflict(op, name); err != nil {
		return err
	}
	if err := checkContentType(op, r); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	var spec rules.RuleSpec
	if err := decodeBody(op, bytes.NewReader(data), &spec); err != nil {
		return withRuleHint(err)
	}
	// Keep the pattern as written: numbers then match with every digit.
	if spec, err = dispatch.DecodeRuleSpec(data); err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	if _, err := rules.Compile(name, spec); err != nil {
		return err
	}
	stored, err := json.Marshal(spec)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	er := &catalog.EventRule{Name: name, Spec: stored}
	existed := false
	err = s.store.Tx(r.Context(), func(tx catalog.Tx) error {
		_, err := tx.GetEventRule(r.Context(), name)
		switch {
		case err == nil:
			existed = true
		case !errs.Is(err, errs.NotFound):
			return err
		}
		return tx.PutEventRule(r.Context(), er)
	})
	if err != nil {
		return err
	}
	info, err := storedRuleInfo(er)
	if err != nil {
		return err
	}
	st := http.StatusOK
	if !existed {
		st = http.StatusCreated
		w.Header().Set("Location", "/v1/rules/"+name)
	}
	writeJSON(w, st, info)
	return nil
}

// withRuleHint adds the shape of a rule to a body decoding error without a hint.
func withRuleHint(err error) error {
	if errs.HintOf(err) != "" {
		return err
	}
	return errs.E("PUT /v1/rules/{name}", errs.KindOf(err), err).
		WithHint(`send a rule as JSON: {"pattern": {"source": ["rewind.backup"]}, "targets": [{"webhook": {"url": "https://…"}}]}`)
}

// deleteRule serves DELETE /v1/rules/{name}: 204 once the stored rule is gone.
func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) error {
	const op = "DELETE /v1/rules/{name}"
	if err := noQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := s.configRuleConflict(op, name); err != nil {
		return err
	}
	err := s.store.Tx(r.Context(), func(tx catalog.Tx) error { return tx.DeleteEventRule(r.Context(), name) })
	if errs.Is(err, errs.NotFound) {
		return errs.Errorf(op, errs.NotFound, "no rule %.70q is stored", name).WithHint("GET /v1/rules lists the rules")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) error {
	q, err := newQuery(r, "status", "limit", "after")
	if err != nil {
		return err
	}
	f := catalog.IncidentFilter{Limit: q.limit(), After: q.cursor(), Newest: true}
	if st := q.str("status"); st != nil {
		f.Status = catalog.Ptr(catalog.IncidentStatus(*st))
	}
	if q.err != nil {
		return q.err
	}
	var out []*catalog.Incident
	if err := s.read(r.Context(), func(tx catalog.Tx) (err error) { out, err = tx.ListIncidents(r.Context(), f); return }); err != nil {
		return err
	}
	page := List[*catalog.Incident]{Items: nonNil(out)}
	if len(out) == f.Limit {
		page.Next = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) closeIncident(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var inc *catalog.Incident
	err := s.store.Tx(r.Context(), func(tx catalog.Tx) (err error) {
		inc, err = tx.CloseIncident(r.Context(), r.PathValue("id"))
		return err
	})
	if err != nil {
		return withHint(err, "GET /v1/incidents lists the incidents")
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *Server) listAlarms(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	out := []alarm.Status{}
	if s.events != nil {
		out = append(out, s.events.Alarms()...)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
