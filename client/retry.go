package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
)

// retry says what may be repeated after the connection drops mid-request.
type retry int

const (
	// retrySafe: repeating is harmless (reads, PING, INFO, LIST).
	retrySafe retry = iota
	// retryKeyed: a write with an idempotency key; repeating it is safe
	// while the same host process answers.
	retryKeyed
	// retryNever: CREATE and DELETE; a lost reply is an unknown outcome.
	retryNever
)

// maxAttempts bounds how often one request is tried.
const maxAttempts = 5

// transportError marks a failure of the connection, as opposed to an
// answer from the host.
type transportError struct {
	err  error
	sent bool // some of the request may have reached the host
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// do sends one request (encoded by enc) and reads its reply; fn sees the
// reply while the buffer is valid. A dropped connection is re-dialled and
// the request retried as rt allows.
func (c *Conn) do(ctx context.Context, rt retry, enc func([]byte) []byte, fn func(proto.Reply) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Without a deadline of its own, a request (with its retries) gets
	// RequestTimeout. The derived context is made only when a retry needs
	// it: the common path allocates nothing.
	begin := time.Now()
	bounded := func() (context.Context, context.CancelFunc) {
		if _, ok := ctx.Deadline(); ok {
			return ctx, func() {}
		}
		return context.WithDeadline(ctx, begin.Add(c.opts.RequestTimeout))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var session string
	// replicated: the attempt that may have reached a host reached a
	// cluster node, which keys the write into the cluster's log.
	replicated := false
	// answer is the cluster node's answer that made the request be asked
	// again (no leader yet): what a read that runs out of time reports,
	// rather than the deadline that cut off the last try.
	var answer error
	for attempt := 1; ; attempt++ {
		if c.closed {
			return ErrClosed
		}
		if c.nc != nil && time.Since(c.lastIO) > idleProbe {
			c.probe()
		}
		if c.nc == nil {
			rctx, cancel := bounded()
			err := c.redial(rctx)
			cancel()
			if err != nil {
				if answer != nil && rt == retrySafe {
					return fmt.Errorf("%w (asked again until the deadline, which then cut off the last try: %v)", answer, err)
				}
				if session != "" && rt != retrySafe {
					return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
				}
				return err
			}
			if session != "" && c.session != session && rt == retryKeyed && !(replicated && c.replicated.Load()) {
				// Another host process: it cannot know whether the first
				// attempt was applied. A cluster node can: the key names
				// the write in the cluster's log, whichever node the
				// retry reaches (the log answers a key it applied once).
				return fmt.Errorf("%w: the host restarted before it answered a write", ErrUnknownOutcome)
			}
		}
		err := c.roundTrip(ctx, enc, fn)
		te, ok := err.(*transportError) // roundTrip returns it unwrapped
		if !ok {
			c.lastIO = time.Now()
			if c.replicated.Load() && c.electing(rt, err) && c.pauseForLeader(ctx, begin) {
				// A cluster node with no leader yet (an election after
				// the leader died), or whose leader died with the answer:
				// the same request, same key, again.
				answer = err
				continue
			}
			return err
		}
		c.drop()
		err = fmt.Errorf("host %s: %w", c.Addr(), ctxErr(ctx, te.err))
		if te.sent {
			session = c.session
			replicated = c.replicated.Load()
		}
		expired := ctx.Err() != nil
		if _, ok := ctx.Deadline(); !ok && time.Since(begin) >= c.opts.RequestTimeout {
			expired = true
		}
		if expired || attempt >= maxAttempts || te.sent && rt == retryNever {
			if expired && answer != nil && rt == retrySafe {
				return fmt.Errorf("%w (asked again until the deadline, which then cut off the last try: %v)", answer, err)
			}
			if session != "" && rt != retrySafe {
				return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
			}
			return err
		}
	}
}

// leaderPause is how long a request waits before it asks a cluster node
// again that had no leader.
const leaderPause = 100 * time.Millisecond

// electing reports whether err, a cluster node's answer to a request
// retried as rt, means the leader is changing: no leader (unavailable),
// or, for a keyed write, the leader died before it answered (the key
// makes asking again safe: the log applies it at most once).
func (c *Conn) electing(rt retry, err error) bool {
	switch rt {
	case retrySafe:
		return errors.Is(err, ErrUnavailable)
	case retryKeyed:
		return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownOutcome)
	}
	return false
}

// pauseForLeader waits leaderPause and reports whether the request,
// begun at begin, may still be repeated (ctx and RequestTimeout allow).
// c.mu is held: the Conn's other requests would meet the same election.
func (c *Conn) pauseForLeader(ctx context.Context, begin time.Time) bool {
	deadline := begin.Add(c.opts.RequestTimeout)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	if time.Until(deadline) < leaderPause {
		return false
	}
	t := time.NewTimer(leaderPause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// idleProbe is how long a connection may sit unused before the next
// request first checks that the host has not closed it (a host that
// restarted meanwhile). A request sent on a connection already closed by
// the host would count as sent, and a write would end as an unknown
// outcome although it never left this machine.
const idleProbe = time.Millisecond

// probe drops the connection if the host has closed it. c.mu is held.
func (c *Conn) probe() {
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if closedByPeer(nc) {
		c.drop()
	}
}
