package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// ReplayNameField is the envelope field a replayed event carries, as EventBridge's
// replay-name: receivers can tell a replay from the first delivery.
const ReplayNameField = "replay-name"

// Replay asks for the archived events of [From, To) to go through the rules again: all
// enabled rules, or only Rule.
type Replay struct {
	Name string // "" for one made from the time
	From time.Time
	To   time.Time
	Rule string // "" for every rule
}

// ReplayResult says what a replay recorded.
type ReplayResult struct {
	Name       string `json:"name"`
	Events     int    `json:"events"`     // archived events in the window
	Deliveries int    `json:"deliveries"` // deliveries recorded (one per matched target)
}

const opReplay = "dispatch.Replay"

// Replay matches the archived events of r's window against the rules (or r.Rule only)
// and records a delivery, marked with the replay's name, for every matched target; the
// deliveries then run like any other. errs.Invalid for an empty or reversed window or a
// bad name, errs.NotFound for an unknown rule; the catalog's errors otherwise. Each page
// of events is recorded in its own transaction.
func (d *Dispatcher) Replay(ctx context.Context, r Replay) (*ReplayResult, error) {
	if r.From.IsZero() || r.To.IsZero() || !r.To.After(r.From) {
		return nil, errs.Errorf(opReplay, errs.Invalid, "the replay window %s to %s is empty or reversed",
			r.From.Format(time.RFC3339), r.To.Format(time.RFC3339)).
			WithHint("give --from before --to, such as --from 2026-03-01T00:00:00Z --to 2026-03-02T00:00:00Z")
	}
	if r.To.After(d.o.Now()) {
		r.To = d.o.Now()
	}
	// A rule put through the API a moment ago can be replayed at once.
	if _, err := d.Reload(ctx); err != nil {
		return nil, err
	}
	cur := d.cur.Load()
	set := cur.set
	if r.Rule != "" {
		rule, ok := cur.byName[r.Rule]
		if !ok {
			return nil, errs.Errorf(opReplay, errs.NotFound, "no rule %q", r.Rule).
				WithHint("GET /v1/rules lists the rules")
		}
		set = rules.NewSet([]*rules.Rule{rule})
	}
	if r.Name == "" {
		r.Name = "replay-" + catalog.NewID(d.o.Now())
	}
	if len(r.Name) > 64 || !validReplayName(r.Name) {
		return nil, errs.Errorf(opReplay, errs.Invalid, "replay name %.70q is not valid", r.Name).
			WithHint("use 1 to 64 letters, digits, '.', '-' or '_'")
	}
	res := &ReplayResult{Name: r.Name}
	after := ""
	for {
		var page []*catalog.Event
		err := d.o.Store.Tx(ctx, func(tx catalog.Tx) error {
			var err error
			page, err = tx.ListEvents(ctx, catalog.EventFilter{Since: &r.From, Until: &r.To, Limit: d.o.Batch, After: after})
			if err != nil {
				return err
			}
			var ds []*catalog.Delivery
			for _, e := range page {
				matched, err := set.MatchAt(envelope(e), tx.Now())
				if err != nil {
					continue // see Dispatch: such an event matches nothing
				}
				for _, m := range matched {
					markReplay(&m, r.Name)
					cd, err := record(m, r.Name)
					if err != nil {
						return err
					}
					ds = append(ds, cd)
				}
			}
			if err := tx.CreateDeliveries(ctx, ds); err != nil {
				return err
			}
			res.Deliveries += len(ds)
			return nil
		})
		if err != nil {
			return nil, err
		}
		res.Events += len(page)
		if len(page) < d.o.Batch {
			return res, nil
		}
		after = page[len(page)-1].ID
	}
}

func validReplayName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// markReplay adds the replay-name field to m's event and, when the payload is the whole
// event (no input transformer), to the payload too.
func markReplay(m *rules.Delivery, name string) {
	whole := bytes.Equal(m.Payload, m.Event)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m.Event, &fields); err != nil {
		return // an envelope always decodes; leave it as matched otherwise
	}
	fields[ReplayNameField], _ = json.Marshal(name)
	b, err := json.Marshal(fields)
	if err != nil {
		return
	}
	m.Event = b
	if whole {
		m.Payload = b
	}
}
