package api

import (
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
)

// List is the JSON shape of every list response: the items of one page and, when more may
// follow, the cursor to pass as "after" for the next page.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// JobRequest is the body of POST /v1/jobs, as sent on the wire. Kind is one of backup,
// restore, verify, prune, copy (case does not matter). Which other fields apply depends
// on Kind; see StartJob.
type JobRequest struct {
	Kind        string `json:"kind"`
	Resource    string `json:"resource,omitempty"`
	Vault       string `json:"vault,omitempty"`
	TargetVault string `json:"targetVault,omitempty"`
	Point       string `json:"point,omitempty"`  // restore, verify, copy: a point ID or "latest"
	Target      string `json:"target,omitempty"` // restore: where to restore to
}

// StartJob is a validated and resolved job request, as handed to Jobs.Start:
//   - BACKUP: Resource and Vault (resolved from the plans when the request gave none);
//   - RESTORE: Resource, Vault and Point (a concrete ID, "latest" resolved) and Target;
//   - VERIFY: Vault, and Point when the request named one;
//   - PRUNE: Vault, and Resource when the request named one;
//   - COPY: Vault, TargetVault, and Resource and/or Point when the request named them.
//
// Every name it holds exists in the catalog when Jobs.Start is called.
type StartJob struct {
	Kind        catalog.JobKind
	Resource    string
	Vault       string
	TargetVault string
	Point       string
	Target      string
}

// Plan is the JSON shape of a configured plan with the next run time of each rule.
type Plan struct {
	Name      string            `json:"name"`
	Resources []string          `json:"resources"` // the resources the plan selects, sorted
	Tags      map[string]string `json:"selectTags,omitempty"`
	Rules     []Rule            `json:"rules"`
}

// Rule is the JSON shape of one rule of a plan.
type Rule struct {
	Name             string     `json:"name"`
	Schedule         string     `json:"schedule"`
	NextRun          *time.Time `json:"nextRun,omitempty"` // absent when the schedule never fires again
	Vault            string     `json:"vault"`
	PullFrom         string     `json:"pullFrom,omitempty"` // a pull rule's source vault
	Retention        string     `json:"retention,omitempty"`
	StartWindow      string     `json:"startWindow,omitempty"`
	CompletionWindow string     `json:"completionWindow,omitempty"`
	CopyTo           []Copy     `json:"copyTo,omitempty"`
	Continuous       bool       `json:"continuous"`
}

// Copy is the JSON shape of a rule's copy destination.
type Copy struct {
	Vault     string `json:"vault"`
	Retention string `json:"retention,omitempty"`
}

// Health is the body of GET /v1/health.
type Health struct {
	Status  string `json:"status"` // "ok"
	Version string `json:"version"`
	Auth    bool   `json:"auth"` // whether the server requires tokens
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error: Code names its kind (see Code), Message says what
// failed, Hint what to do about it.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}
