package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Webhook request headers.
const (
	SignatureHeader = "Rewind-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
	EventIDHeader   = "Rewind-Event-Id"  // the event's id, for deduplication by the receiver
	RuleHeader      = "Rewind-Rule"      // the name of the rule that matched

	// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock.
	DefaultTolerance = 5 * time.Minute
)

const opVerify = "rules.Verify"

// Sign returns the Rewind-Signature header value for body sent at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Rewind-Signature header for a webhook receiver: header must carry a
// timestamp t within tolerance of now (DefaultTolerance when tolerance is zero or less)
// and at least one v1 signature equal to HMAC-SHA256(secret, "<t>.<body>"); several v1
// values are allowed so that a secret can be rotated. The comparison is constant-time.
// A malformed header is errs.Invalid; a wrong signature or a stale timestamp is
// errs.Unauthorized.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if header == "" {
		return errs.Errorf(opVerify, errs.Unauthorized, "the request has no %s header", SignatureHeader).
			WithHint("configure the sender with the shared secret so that it signs its requests")
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errs.Errorf(opVerify, errs.Invalid, "%s header: %q is not key=value", SignatureHeader, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return errs.Errorf(opVerify, errs.Invalid, "%s header: more than one timestamp", SignatureHeader)
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return errs.Errorf(opVerify, errs.Invalid, "%s header: v1 is not a hex HMAC-SHA256", SignatureHeader)
			}
			sigs = append(sigs, b)
		}
		// Other keys are ignored so that new signature versions can be added.
	}
	if ts == "" {
		return errs.Errorf(opVerify, errs.Invalid, "%s header has no timestamp (t=)", SignatureHeader)
	}
	if len(sigs) == 0 {
		return errs.Errorf(opVerify, errs.Invalid, "%s header has no v1 signature", SignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errs.Errorf(opVerify, errs.Invalid, "%s header: timestamp %q is not Unix seconds", SignatureHeader, ts)
	}
	want := mac(secret, ts, body)
	match := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			match = true
		}
	}
	if !match {
		return errs.Errorf(opVerify, errs.Unauthorized, "the signature does not match the body").
			WithHint("check that sender and receiver use the same secret and that the body is verified before any parsing")
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return errs.E(opVerify, errs.Unauthorized, fmt.Errorf("the signature timestamp is %s away from now, more than the %s allowed", skew.Round(time.Second), tolerance)).
			WithHint("a replayed request, or a clock that is off: check NTP on sender and receiver")
	}
	return nil
}
