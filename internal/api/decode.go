package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// nameRE is the configuration's rule for site, vault, resource and plan names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// pointRE accepts point IDs: hex, as the vault names points.
var pointRE = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

func checkName(op, field, v string) error {
	if !nameRE.MatchString(v) {
		return errs.Errorf(op, errs.Invalid, "%s %.70q is not a valid name", field, v).
			WithHint("names are 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// decodeBody decodes a request body of at most MaxBodySize bytes into v strictly: valid
// UTF-8, one JSON object, no unknown fields, every field of its type. Errors are
// errs.Invalid and say what is wrong and where.
func decodeBody(op string, r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.Errorf(op, errs.Invalid, "the request body is larger than %d bytes", MaxBodySize)
		}
		return errs.E(op, errs.Invalid, err)
	}
	if len(data) > MaxBodySize {
		return errs.Errorf(op, errs.Invalid, "the request body is larger than %d bytes", MaxBodySize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errs.Errorf(op, errs.Invalid, "the request body is empty; it must be a JSON object").
			WithHint(`send e.g. {"kind": "backup", "resource": "app-files", "vault": "main"}`)
	}
	if !utf8.Valid(data) {
		return errs.Errorf(op, errs.Invalid, "the request body is not valid UTF-8")
	}
	if data = bytes.TrimSpace(data); data[0] != '{' {
		return errs.Errorf(op, errs.Invalid, "the request body is not a JSON object")
	}
	if err := checkKeys(op, data, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return errs.Errorf(op, errs.Invalid, "the request body is not valid JSON at byte %d: %v", se.Offset, se)
		case errors.As(err, &te):
			return errs.Errorf(op, errs.Invalid, "field %q must be a %s, not a JSON %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errs.Errorf(op, errs.Invalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field ")).
				WithHint("see the request schema in GET /v1/openapi.yaml")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errs.Errorf(op, errs.Invalid, "the request body is truncated JSON")
		}
		return errs.Errorf(op, errs.Invalid, "the request body is not valid: %v", err)
	}
	if dec.More() {
		return errs.Errorf(op, errs.Invalid, "the request body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.Errorf(op, errs.Invalid, "the request body holds data after the JSON object")
	}
	return nil
}

// checkKeys refuses top-level keys that encoding/json would accept although they are not
// exactly a field's name ("KIND" for "kind") and keys given twice, where the last would
// silently win. It leaves syntax errors to the decoder.
func checkKeys(op string, data []byte, v any) error {
	names := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil
		}
		if seen[key] {
			return errs.Errorf(op, errs.Invalid, "field %q is given twice", key)
		}
		seen[key] = true
		if !names[key] {
			for n := range names {
				if strings.EqualFold(n, key) {
					return errs.Errorf(op, errs.Invalid, "unknown field %q (field names are case-sensitive: %q)", key, n)
				}
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// checkContentType accepts a missing Content-Type or application/json.
func checkContentType(op string, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errs.Errorf(op, errs.Invalid, "Content-Type %q is not application/json", ct)
	}
	return nil
}

// DecodeJobRequest reads and checks a POST /v1/jobs body: strict JSON (see the OpenAPI
// document) whose fields fit its kind. It checks form only; whether the names exist is
// the server's business. Errors are errs.Invalid and name the field.
func DecodeJobRequest(r io.Reader) (JobRequest, error) {
	const op = "POST /v1/jobs"
	var req JobRequest
	if err := decodeBody(op, r, &req); err != nil {
		return JobRequest{}, err
	}
	if err := req.Check(); err != nil {
		return JobRequest{}, err
	}
	return req, nil
}

// kindHints show a valid request of each kind.
var kindHints = map[catalog.JobKind]string{
	catalog.JobBackup:  `send {"kind": "backup", "resource": "<resource>", "vault": "<vault, optional>"}`,
	catalog.JobRestore: `send {"kind": "restore", "resource": "<resource>", "point": "latest or <id>", "target": "<where>"}`,
	catalog.JobVerify:  `send {"kind": "verify", "vault": "<vault>", "point": "<id, optional>"}`,
	catalog.JobPrune:   `send {"kind": "prune", "vault": "<vault>", "resource": "<resource, optional>"}`,
	catalog.JobCopy:    `send {"kind": "copy", "vault": "<from>", "targetVault": "<to>", "point": "<id, optional>"}`,
}

// JobKind returns the catalog kind the request names (upper case); it may be invalid.
func (req JobRequest) JobKind() catalog.JobKind { return catalog.JobKind(strings.ToUpper(req.Kind)) }

// Check validates the request's fields for its kind. Errors are errs.Invalid.
func (req JobRequest) Check() error {
	const op = "POST /v1/jobs"
	kind := req.JobKind()
	if req.Kind == "" {
		return errs.Errorf(op, errs.Invalid, "field \"kind\" is required").
			WithHint("kind is one of backup, restore, verify, prune, copy")
	}
	if !kind.Valid() {
		return errs.Errorf(op, errs.Invalid, "kind %.40q is not one of backup, restore, verify, prune, copy", req.Kind)
	}
	for _, f := range []struct{ name, v string }{{"resource", req.Resource}, {"vault", req.Vault}, {"targetVault", req.TargetVault}} {
		if f.v != "" {
			if err := checkName(op, f.name, f.v); err != nil {
				return err
			}
		}
	}
	if req.Point != "" && req.Point != "latest" && !pointRE.MatchString(req.Point) {
		return errs.Errorf(op, errs.Invalid, "point %.70q is neither \"latest\" nor a point ID (lower-case hex)", req.Point).
			WithHint("GET /v1/points lists the point IDs")
	}
	if len(req.Target) > 4096 {
		return errs.Errorf(op, errs.Invalid, "target is longer than 4096 bytes")
	}
	for _, r := range req.Target {
		if r < 0x20 || r == 0x7f {
			return errs.Errorf(op, errs.Invalid, "target %.70q holds a control character", req.Target)
		}
	}
	hint := kindHints[kind]
	need := func(field, v string) error {
		if v == "" {
			return errs.Errorf(op, errs.Invalid, "a %s job needs field %q", strings.ToLower(string(kind)), field).WithHint(hint)
		}
		return nil
	}
	refuse := func(field, v string) error {
		if v != "" {
			return errs.Errorf(op, errs.Invalid, "a %s job takes no field %q", strings.ToLower(string(kind)), field).WithHint(hint)
		}
		return nil
	}
	var err error
	switch kind {
	case catalog.JobBackup:
		err = errors.Join(need("resource", req.Resource), refuse("targetVault", req.TargetVault),
			refuse("point", req.Point), refuse("target", req.Target))
	case catalog.JobRestore:
		err = errors.Join(need("resource", req.Resource), need("point", req.Point), need("target", req.Target),
			refuse("targetVault", req.TargetVault))
	case catalog.JobVerify:
		err = errors.Join(need("vault", req.Vault), refuse("targetVault", req.TargetVault), refuse("target", req.Target))
	case catalog.JobPrune:
		err = errors.Join(need("vault", req.Vault), refuse("targetVault", req.TargetVault),
			refuse("point", req.Point), refuse("target", req.Target))
	case catalog.JobCopy:
		err = errors.Join(need("vault", req.Vault), need("targetVault", req.TargetVault), refuse("target", req.Target))
		if err == nil && req.Vault == req.TargetVault {
			err = errs.Errorf(op, errs.Invalid, "a copy job's vault and targetVault are both %q", req.Vault).
				WithHint("copy to a vault at another site")
		}
	}
	if err != nil {
		// errors.Join of *errs.Error values: report the first; each names its field.
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()[0]
		}
		return err
	}
	return nil
}
