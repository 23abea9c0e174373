package api

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// The approval page is the "link in a notification" of a .waitForTaskToken gate:
// GET /approve/{token} shows what the token waits for with an approve and a deny button,
// and the buttons POST /approve/{token}. As with Step Functions' approval links, the task
// token itself authorizes the decision: it is 24 random bytes, known only to whoever the
// runbook sent it to, and decides that one task once. Opening the link changes nothing (mail
// scanners fetch links); only the form's POST decides.

var approvalPage = template.Must(template.New("approval").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rewind: decision needed</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
dt{font-weight:bold}button{font-size:1.1em;margin:.5em .5em 0 0;padding:.4em 1.2em}</style></head>
<body><h1>Rewind: decision needed</h1>
<dl><dt>Runbook</dt><dd>{{.Runbook}}</dd><dt>Execution</dt><dd>{{.ExecutionName}} ({{.ExecutionStatus}})</dd>
<dt>Waiting state</dt><dd>{{.State}}</dd><dt>Asked at</dt><dd>{{.Created}}</dd></dl>
{{if .Decided}}<p><strong>Already decided: {{.Resolution}}.</strong></p>
{{else}}<form method="post"><input type="hidden" name="decision" value="approve">
<button type="submit">Approve</button></form>
<form method="post"><input type="hidden" name="decision" value="deny">
<p><label>Reason for denying: <input name="reason" required size="40"></label></p>
<button type="submit">Deny</button></form>{{end}}
{{if .Message}}<p><strong>{{.Message}}</strong></p>{{end}}
</body></html>
`))

type approvalView struct {
	Runbook, ExecutionName, State, Created, Resolution, Message string
	ExecutionStatus                                             catalog.ExecutionStatus
	Decided                                                     bool
}

func (s *Server) approvalView(r *http.Request, token string) (approvalView, error) {
	d, err := s.tokenDetail(r.Context(), token)
	if err != nil {
		return approvalView{}, err
	}
	return approvalView{Runbook: d.Runbook, ExecutionName: d.ExecutionName, ExecutionStatus: d.ExecutionStatus,
		State: d.State, Created: d.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"),
		Decided: d.Resolution != catalog.TokenUnresolved, Resolution: string(d.Resolution)}, nil
}

func (s *Server) approvalGet(w http.ResponseWriter, r *http.Request) error {
	token := r.PathValue("token")
	if err := checkID("GET /approve/{token}", "task token", token); err != nil {
		return err
	}
	v, err := s.approvalView(r, token)
	if err != nil {
		return err
	}
	return renderApproval(w, http.StatusOK, v)
}

func (s *Server) approvalPost(w http.ResponseWriter, r *http.Request) error {
	const op = "POST /approve/{token}"
	token := r.PathValue("token")
	if err := checkID(op, "task token", token); err != nil {
		return err
	}
	if err := s.needRunbooks(op); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return errs.Errorf(op, errs.Invalid, "the form cannot be read: %v", err)
	}
	ctx := r.Context()
	var msg string
	switch r.PostForm.Get("decision") {
	case "approve":
		if _, err := s.runbooks.Approve(ctx, token, nil); err != nil {
			return err
		}
		msg = "Approved: the runbook goes on."
	case "deny":
		reason := strings.TrimSpace(r.PostForm.Get("reason"))
		if reason == "" {
			return errs.Errorf(op, errs.Invalid, "a denial needs a reason").WithHint("write why in the reason field")
		}
		if err := checkCause(op, reason); err != nil {
			return err
		}
		if _, err := s.runbooks.Deny(ctx, token, "", "denied through the approval page: "+reason); err != nil {
			return err
		}
		msg = "Denied: the runbook takes its denial path."
	default:
		return errs.Errorf(op, errs.Invalid, "decision must be approve or deny")
	}
	v, err := s.approvalView(r, token)
	if err != nil {
		return err
	}
	v.Message = msg
	return renderApproval(w, http.StatusOK, v)
}

func renderApproval(w http.ResponseWriter, status int, v approvalView) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the token
	w.WriteHeader(status)
	return approvalPage.Execute(w, v)
}
