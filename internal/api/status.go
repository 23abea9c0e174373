package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rewind-dr/rewind/internal/errs"
)

// errForbidden marks an errs.Unauthorized error for a valid token whose role is too low:
// it is answered 403 rather than 401.
var errForbidden = errors.New("forbidden")

// codes names each Kind on the wire. The names are part of the API.
var codes = map[errs.Kind]string{
	errs.Other:        "error",
	errs.Invalid:      "invalid",
	errs.NotFound:     "not_found",
	errs.Exists:       "already_exists",
	errs.Conflict:     "conflict",
	errs.Unauthorized: "unauthorized",
	errs.Locked:       "locked",
	errs.Corrupt:      "corrupt",
	errs.Unavailable:  "unavailable",
	errs.Canceled:     "canceled",
	errs.Internal:     "internal",
}

// Code returns the wire code of k ("not_found"); "error" for an unknown Kind.
func Code(k errs.Kind) string {
	if c, ok := codes[k]; ok {
		return c
	}
	return "error"
}

// KindOfCode returns the Kind whose wire code is code ("forbidden" is Unauthorized), or
// errs.Other for a code this build does not know.
func KindOfCode(code string) errs.Kind {
	if code == "forbidden" {
		return errs.Unauthorized
	}
	for k, c := range codes {
		if c == code {
			return k
		}
	}
	return errs.Other
}

// status maps an error to its HTTP status and wire code: the one place Rewind maps
// errs.Kind to HTTP.
func status(err error) (int, string) {
	k := errs.KindOf(err)
	switch k {
	case errs.Invalid:
		return http.StatusBadRequest, Code(k)
	case errs.NotFound:
		return http.StatusNotFound, Code(k)
	case errs.Exists, errs.Conflict:
		return http.StatusConflict, Code(k)
	case errs.Unauthorized:
		if errors.Is(err, errForbidden) {
			return http.StatusForbidden, "forbidden"
		}
		return http.StatusUnauthorized, Code(k)
	case errs.Locked:
		return http.StatusLocked, Code(k)
	case errs.Unavailable, errs.Canceled:
		return http.StatusServiceUnavailable, Code(k)
	}
	return http.StatusInternalServerError, Code(k)
}

// writeError writes err as an ErrorBody with the status of its Kind.
func writeError(w http.ResponseWriter, err error) {
	st, code := status(err)
	// Operation prefixes name Go functions; a client wants the cause.
	cause := err
	for {
		e, ok := cause.(*errs.Error)
		if !ok || e.Err == nil {
			break
		}
		cause = e.Err
	}
	msg := cause.Error()
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rewind"`)
	}
	writeJSON(w, st, ErrorBody{Error: ErrorDetail{Code: code, Message: msg, Hint: errs.HintOf(err)}})
}

// writeJSON writes v with status st.
func writeJSON(w http.ResponseWriter, st int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(st)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to tell it
}
