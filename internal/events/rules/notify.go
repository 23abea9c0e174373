package rules

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"

	"github.com/rewind-dr/rewind/internal/errs"
)

// DefaultNotifyTimeout bounds one notification when ctx has no earlier deadline.
const DefaultNotifyTimeout = 30 * time.Second

// notify sends payload as the message of a notification URL (slack://, smtp://, ntfy://,
// discord://, teams://, gotify://, generic+https://, ...). The notification library takes
// no context, so the send runs in a goroutine bounded by the router's timeout and ctx.
func notify(ctx context.Context, raw string, payload []byte) error {
	scheme, _, _ := strings.Cut(raw, "://")
	r, err := router.New(nil, raw)
	if err != nil {
		return errs.Errorf("", errs.Invalid, "%s notification URL is not valid: %s", scheme, redact(err.Error(), raw))
	}
	timeout := DefaultNotifyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	r.Timeout = timeout
	done := make(chan []error, 1)
	go func() { done <- r.Send(string(payload), nil) }()
	select {
	case <-ctx.Done():
		return errs.E("", errs.Unavailable, fmt.Errorf("%s notification: %w", scheme, ctx.Err()))
	case results := <-done:
		for _, e := range results {
			if e != nil {
				return errs.Errorf("", errs.Unavailable, "%s notification failed: %s", scheme, redact(e.Error(), raw))
			}
		}
	}
	return nil
}
