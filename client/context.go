package client

import (
	"context"
	"errors"
	"net"
	"time"
)

// applyContext applies ctx to the connection for the request about to be
// made. A context with a deadline bounds the socket through that deadline; one
// that can only be cancelled is watched, so that cancelling interrupts a
// blocked read or write. (A context with a deadline that is cancelled
// early is noticed when the reply comes or the deadline passes: watching
// it too would cost three allocations per request.)
//
// There is nothing to undo when the request ends, so it returns nothing:
// the watch stays registered after the request, for the next one with the
// same context (a caller's loop usually passes one context to many
// requests), and cancelling it between requests only sets a deadline that
// the next request replaces. The next request with another context, or
// Close, unregisters it.
func (c *Conn) applyContext(ctx context.Context) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.opts.RequestTimeout)
	}
	watch := !ok && ctx.Done() != nil
	// A cancellation callback of an earlier context may be running right
	// now: the generation, moved under the same lock, makes it a no-op.
	c.cancelMu.Lock()
	if watch && ctx != c.watched || !watch && c.watched != nil {
		c.gen++
		if c.unwatch != nil {
			c.unwatch()
			c.unwatch, c.watched = nil, nil
		}
	}
	c.nc.SetDeadline(dl)
	if watch && c.watched == nil {
		gen := c.gen
		c.watched = ctx
		c.unwatch = context.AfterFunc(ctx, func() {
			c.cancelMu.Lock()
			defer c.cancelMu.Unlock()
			if c.gen == gen {
				if nc := c.live.Load(); nc != nil {
					(*nc).SetDeadline(time.Unix(1, 0))
				}
			}
		})
	}
	c.cancelMu.Unlock()
}

// ctxErr prefers the context's error: a socket deadline set from the
// context's deadline may fire a moment before the context's own timer, and
// the caller should see context.DeadlineExceeded either way.
func ctxErr(ctx context.Context, err error) error {
	if ce := ctx.Err(); ce != nil {
		return ce
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl.Add(-time.Millisecond)) {
			return context.DeadlineExceeded
		}
	}
	return err
}
