package server

import "time"

// spinRead reads like c.nc.Read, letting the read spin (Config.BusyPoll)
// when spinPolicy says so.
func (c *conn) spinRead() (int, error) {
	bp := c.s.cfg.BusyPoll
	// The connections gauge counts what busy polling needs to know: how
	// many connections are open.
	d := c.spin.next(bp, c.s.cfg.Metrics.Connections.Load(), c.now)
	c.spinner.SetReadSpin(d)
	before := c.now
	n, err := c.nc.Read(c.in[c.w:])
	c.now = c.clock()
	spun, found := c.spinner.Spun()
	c.spin.done(bp, d, before, c.now, spun, found)
	if found {
		c.s.cfg.Metrics.SpinFound.Inc()
	} else if spun {
		c.s.cfg.Metrics.SpinSlept.Inc()
	}
	return n, err
}

// spinPolicy decides, read by read, whether the reads of a connection
// spin. They spin only when that is likely to pay and cannot delay other
// connections:
//   - the connection is the host's only one: while a goroutine spins, the
//     runtime's poller does not run (on one CPU), so another connection's
//     request would wait for the spin to end;
//   - the client is hot: its last request came within twice the spin time
//     of the read that waited for it, so a client that pauses costs one
//     spin, not one per request;
//   - the spins are paying: a score follows the share of recent spins
//     that found the request (each spin weighs 1/8); below a quarter (a
//     client whose requests come just too late for the spin) the reads
//     spin once per spinProbe, to notice when they would pay again;
//   - a read has slept within the last maxSpinStretch: new connections
//     and other sockets the poller watches wait at most that long.
type spinPolicy struct {
	hot   bool
	score int       // 0..spinScoreMax: recent spins that paid, weighted
	probe time.Time // with a low score, the next spin allowed
	slept time.Time // when a read last slept on the poller (or may have)
}

const (
	// maxSpinStretch bounds how long reads of a connection go on
	// spinning without sleeping on the poller.
	maxSpinStretch = time.Millisecond
	// spinScoreMax is a new connection's score; spins go on while the
	// score is at least spinScoreMin. A client whose every spin is in
	// vain falls below it after 11 spins, then costs one spin per
	// spinProbe (a 50 µs spin every 10 ms is 0.5 % of a CPU); one with
	// nine spins in ten
	// paying stays above it.
	spinScoreMax = 256
	spinScoreMin = spinScoreMax / 4
	spinProbe    = 10 * time.Millisecond
)

// newSpinPolicy is the policy of a connection opened at now.
func newSpinPolicy(now time.Time) spinPolicy {
	return spinPolicy{score: spinScoreMax, slept: now}
}

// next is how long the next read, starting at now, spins (0: not at all).
func (p *spinPolicy) next(busyPoll time.Duration, conns int64, now time.Time) time.Duration {
	if busyPoll <= 0 || !p.hot || conns != 1 || now.Sub(p.slept) >= maxSpinStretch {
		return 0
	}
	if p.score < spinScoreMin {
		if now.Before(p.probe) {
			return 0
		}
		p.probe = now.Add(spinProbe)
	}
	return busyPoll
}

// done records a read that began at before, was let spin for d, and
// ended at now: whether it spun, and whether the bytes came during the
// spin.
func (p *spinPolicy) done(busyPoll, d time.Duration, before, now time.Time, spun, found bool) {
	p.hot = now.Sub(before) < 2*busyPoll
	switch {
	case found:
		p.score += (spinScoreMax - p.score) / 8
	case spun:
		p.slept = now
		p.score -= p.score / 8
	case d == 0:
		p.slept = now // it read at once, or slept on the poller
	}
}
