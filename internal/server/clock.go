package server

import "time"

// clock returns the time now, read from the monotonic clock alone (one
// vDSO call instead of time.Now's two) and carried on from c.now, which
// began as a time.Now at the connection's start. Deadlines and latencies
// compare monotonic readings, so a step of the wall clock does not move
// them.
func (c *conn) clock() time.Time { return c.now.Add(time.Since(c.now)) }

// readDeadline is when the connection's wait for its next bytes ends: an
// idle connection may wait IdleTimeout for its next request; a request
// that has begun must arrive whole within ReadTimeout, and a stranger
// must authenticate within ReadTimeout. Zero: no limit.
func (c *conn) readDeadline() time.Time {
	var dl time.Time
	if d := c.s.cfg.IdleTimeout; d > 0 && c.nwatches.Load() == 0 {
		// A watcher may stay quiet as long as it likes: events flow the
		// other way, and keepalive finds a vanished one.
		dl = c.heard.Add(d)
	}
	if c.grant == nil {
		// A stranger gets ReadTimeout to authenticate, not a slot for the
		// whole idle timeout.
		if pd := c.since.Add(c.s.cfg.ReadTimeout); dl.IsZero() || pd.Before(dl) {
			dl = pd
		}
	}
	if !c.partial.IsZero() {
		if pd := c.partial.Add(c.s.cfg.ReadTimeout); dl.IsZero() || pd.Before(dl) {
			dl = pd
		}
	}
	return dl
}

// setWriteDeadline bounds how long a write may wait for a client that
// does not read. It re-arms the deadline only when half of it has passed,
// so a busy connection does not pay for it on every write. wmu is held.
func (c *conn) setWriteDeadline(now time.Time) {
	d := c.s.cfg.WriteTimeout
	if d <= 0 {
		return
	}
	if c.wdl.Sub(now) < d/2 {
		c.wdl = now.Add(d)
		c.nc.SetWriteDeadline(c.wdl)
	}
}
