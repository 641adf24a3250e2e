package server

import (
	"time"

	"github.com/shmgr/shmgr/internal/proto"
)

// run is a run of requests of one command, served back to back.
type run struct {
	cmd     proto.Cmd
	n       uint64 // requests
	in, out uint64 // payload bytes read, reply bytes written
}

// record adds a handled request to the run: its command, its outcome
// (c.code, which the handler that refused it set) and its bytes (the reply
// appended at mark). A request that failed ends the run, so that the
// run's other requests count as ok.
func (c *conn) record(req *proto.Request, mark int) {
	m := c.s.cfg.Metrics
	outcome := int(c.code)
	switch c.code {
	case proto.CodeLockTimeout:
		m.LockTimeouts.Inc()
	case proto.CodeLimit:
		m.LimitRefusals.Get(req.Cmd.String()).Inc()
	}
	c.run.cmd = req.Cmd
	c.run.n++
	c.run.in += uint64(len(req.Payload))
	c.run.out += uint64(len(c.out) - mark)
	if outcome != 0 {
		c.endRun(outcome)
	}
}

// endRun counts the run in the metrics, each request with the run's mean
// latency, and moves c.now on to its end. One clock reading per run, not
// two per request: with many connections pipelining small requests, the
// clock readings were a visible share of the host's CPU (see "The
// connection loop" in docs/PERFORMANCE.md). last is the outcome of the
// run's last request; the others succeeded.
func (c *conn) endRun(last int) {
	if c.run.n == 0 {
		return
	}
	now := c.clock()
	m := c.s.cfg.Metrics
	per := now.Sub(c.now) / time.Duration(c.run.n)
	ok := c.run.n
	if last != 0 {
		ok--
		m.Request(int(c.run.cmd), last, per)
	}
	m.RequestsN(int(c.run.cmd), 0, ok, per)
	m.BytesIn.Add(c.run.in)
	m.BytesOut.Add(c.run.out)
	c.now = now
	c.run = run{}
}
