package server

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
)

// Buffer sizes.
const (
	// preAuthLimit bounds what an unauthenticated connection may make the
	// host buffer for one request.
	preAuthLimit = proto.DefaultMaxLine

	// startBufSize is a new connection's read buffer: small, so that
	// thousands of idle connections cost little; it doubles up to
	// readBufSize while reads fill it.
	startBufSize = 4 << 10
	readBufSize  = 64 << 10
	// flushAt bounds the reply bytes held before a flush, so a client that
	// pipelines many large reads does not make the host buffer them all.
	flushAt = 256 << 10
)

// conn is one client connection. Its reading goroutine owns the fields
// up to stopping; the pusher (started by the first WATCH) shares the rest
// under the mutexes.
type conn struct {
	s            *Server
	nc           net.Conn
	p            *proto.Parser
	in           []byte
	r, w         int
	out          []byte
	scratch      []byte
	cur          *host.Region
	session      string // the session announced in the metadata line (see dedup)
	label        []byte
	quit         bool
	stopping     atomic.Bool
	wdl          time.Time // write deadline last set (under wmu)
	leases       map[string]heldLease
	nleases      atomic.Int32
	nwatches     atomic.Int32
	grant        *auth.Grant // nil until AUTH on a host that requires it
	authName     atomic.Value
	authed       atomic.Pointer[authed] // set by AUTH on a host with tokens
	revoked      atomic.Bool            // the token of authed no longer holds
	since        time.Time
	partial      time.Time // when the pending partial request began
	authFailures int
	// now is the reading goroutine's clock: taken after each read and
	// moved on by each request's measured latency, so that metrics and
	// deadlines share one clock reading per batch.
	now time.Time
	// heard is when the client last sent bytes: the idle timeout counts
	// from it.
	heard time.Time
	// rdl is the read deadline armed on the socket (zero: none). A later
	// one is not re-armed on every request: fill checks, when the armed one
	// passes, whether the connection has really been quiet too long.
	rdl time.Time
	// spinner is nc if its reads can spin (Config.BusyPoll), as spin
	// decides.
	spinner rawsock.Spinner
	spin    spinPolicy
	// newWatch is set by WATCH until the reply is flushed.
	newWatch bool
	// run holds the requests served back to back since c.now, all of one
	// command: they are timed and counted together when it ends.
	run run
	// code is the error code of the reply to the request at hand (0: it
	// succeeded), set by the handler that refused it (refused, respErr),
	// for record and respRecord.
	code proto.Code
	// resp is set on the RESP listener's connections (resp_conn.go).
	resp *respConn

	// wmu serialises writes to the socket: reply batches and event frames
	// never interleave. It is held across a write, which a client that
	// does not read can stall for up to Config.WriteTimeout (then the
	// connection is closed): the pusher and the reading goroutine wait
	// for each other that long at most.
	wmu sync.Mutex

	// smu protects watches and pusher.
	smu     sync.Mutex
	watches map[string]*watch
	pusher  bool
	notify  chan struct{} // signalled by hubs; room for one
	done    chan struct{} // closed when the connection ends
	halt    chan struct{} // closed by stop or close: waits for locks end
	haltOne sync.Once
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:      s,
		nc:     rawsock.Wrap(nc),
		p:      proto.NewParser(s.cfg.Limits),
		in:     make([]byte, startBufSize),
		out:    make([]byte, 0, startBufSize),
		label:  []byte("shmgr host for tcp " + nc.RemoteAddr().String()),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		halt:   make(chan struct{}),
		since:  time.Now(),
	}
	c.now, c.heard, c.spin = c.since, c.since, newSpinPolicy(c.since)
	if s.cfg.BusyPoll > 0 {
		under := c.nc
		if tc, ok := under.(*tls.Conn); ok {
			under = tc.NetConn() // TLS reads its records through it
		}
		c.spinner, _ = under.(rawsock.Spinner)
	}
	if s.cfg.Auth == nil {
		c.grant = &auth.AllGrant
	}
	return c
}

// stop makes the connection finish what it has read and close.
func (c *conn) stop() {
	c.stopping.Store(true)
	c.haltOne.Do(func() { close(c.halt) })
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	defer c.close()
	remote := c.nc.RemoteAddr().String()
	c.s.cfg.Debugf("connection from %s", remote)
	defer c.s.cfg.Debugf("connection from %s closed", remote)

	if tc, ok := c.nc.(*tls.Conn); ok {
		// A client that never finishes the handshake must not hold the
		// connection.
		tc.SetDeadline(time.Now().Add(c.s.cfg.ReadTimeout))
		if err := tc.Handshake(); err != nil {
			c.s.cfg.Logf("tls handshake with %s failed: %v", remote, err)
			return
		}
		tc.SetDeadline(time.Time{})
	}
	if c.resp != nil {
		c.serveRESP()
		return
	}
	cur, err := c.s.h.Default()
	if err != nil {
		c.nc.Write(proto.AppendError(nil, proto.CodeUnavailable, "host is shutting down"))
		return
	}
	c.cur = cur
	c.session = c.s.dedup.sessionID()
	c.out = proto.AppendMeta(c.out, c.meta(cur))
	if !c.flush() {
		return
	}
	var req proto.Request
	for {
		for c.r < c.w && !c.quit {
			n, err := c.p.NextInto(&req, c.in[c.r:c.w])
			if n == 0 && err == nil {
				break
			}
			c.r += n
			if err != nil {
				var pe *proto.Error
				if errors.As(err, &pe) {
					c.out = proto.AppendError(c.out, pe.Code, pe.Error())
					c.s.cfg.Metrics.Request(0, int(pe.Code), 0)
					if pe.Code == proto.CodeTooLarge || pe.Code == proto.CodeLineTooLong {
						c.s.cfg.Metrics.LimitRefusals.Get("request_size").Inc()
					}
				} else {
					c.out = proto.AppendError(c.out, proto.CodeBadRequest, err.Error())
				}
				continue
			}
			if req.Cmd != proto.CmdNone {
				if c.run.n > 0 && c.run.cmd != req.Cmd {
					c.endRun(0)
				}
				mark := len(c.out)
				c.code = 0
				if c.permitted(&req) {
					c.handle(&req)
				}
				c.record(&req, mark)
			}
			if len(c.out) >= flushAt && !c.flush() {
				return
			}
		}
		if !c.flush() || c.quit || c.stopping.Load() {
			return
		}
		if !c.fill() {
			return
		}
	}
}

// fill reads more bytes, making room for the pending request.
func (c *conn) fill() bool {
	if c.r == c.w {
		c.r, c.w = 0, 0
		c.partial = time.Time{}
	} else if c.partial.IsZero() {
		c.partial = c.now
	}
	need := int(c.need())
	if need < c.w-c.r+1 {
		need = c.w - c.r + 1
	}
	if c.grant == nil && need > preAuthLimit {
		// Nothing but AUTH, PING and QUIT may run before AUTH, and those
		// carry no payload: do not buffer a stranger's megabytes.
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.out = c.appendError(c.out[:0], proto.CodeUnauthorized,
			"authentication required: send AUTH <token> before any request with data (the connection is closed)")
		c.flush()
		return false
	}
	if c.r > 0 && (c.w == len(c.in) || need > len(c.in)-c.r) {
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
	if len(c.in) < readBufSize && (need > len(c.in) || c.w == len(c.in)) {
		// The client sends more than the small first buffer holds (say,
		// pipelined batches of writes): read 64 KiB at a time, so that a
		// batch is parsed, served and answered with one write, not one
		// per request.
		need = max(need, readBufSize)
	}
	if need > len(c.in) && (c.w == len(c.in) || len(c.in) < readBufSize) {
		// A large payload: grow towards holding it whole (the parser has
		// bounded it by the payload limit), but only as its bytes arrive,
		// doubling a full buffer: the buffer stays within twice what the
		// client has sent (or readBufSize), whatever length it announced.
		// The copies this costs add up to less than the payload.
		bigger := make([]byte, min(need, max(2*len(c.in), readBufSize)))
		c.w = copy(bigger, c.in[c.r:c.w])
		c.r = 0
		c.in = bigger
	} else if len(c.in) > readBufSize && c.w-c.r <= readBufSize && need <= readBufSize {
		// Shrink back after a large request.
		small := make([]byte, readBufSize)
		c.w = copy(small, c.in[c.r:c.w])
		c.r = 0
		c.in = small
	}
	if dl := c.readDeadline(); !dl.IsZero() && (c.rdl.IsZero() || dl.Before(c.rdl)) {
		c.rdl = dl
		c.nc.SetReadDeadline(dl)
	}
	for {
		if c.stopping.Load() {
			return false
		}
		if c.revoked.Load() {
			// Checked here too: this goroutine may have re-armed its
			// deadline after recheck set it to now.
			c.s.cfg.Metrics.AuthFailures.Inc()
			c.out = c.appendError(c.out[:0], proto.CodeUnauthorized, revokedMsg)
			c.flush()
			return false
		}
		var n int
		var err error
		if c.spinner == nil {
			n, err = c.nc.Read(c.in[c.w:])
			c.now = c.clock()
		} else {
			n, err = c.spinRead()
		}
		c.w += n
		if n > 0 {
			c.heard = c.now
		}
		if err == nil {
			return true
		}
		var ne net.Error
		if n > 0 || !errors.As(err, &ne) || !ne.Timeout() || c.stopping.Load() {
			return n > 0 && !c.stopping.Load()
		}
		if c.revoked.Load() {
			continue // answered at the top of the loop
		}
		if dl := c.readDeadline(); dl.IsZero() || dl.After(c.now) {
			// The armed deadline was an earlier one (the connection has
			// been busy since, or is watching now): it is within its
			// limits still.
			c.rdl = dl
			c.nc.SetReadDeadline(dl)
			continue
		}
		what, limit := "idle", "idle_timeout"
		switch {
		case !c.partial.IsZero():
			what, limit = "sending one request", "read_timeout"
		case c.grant == nil:
			what, limit = "without authenticating", "auth_timeout"
		}
		c.s.cfg.Metrics.LimitRefusals.Get(limit).Inc()
		c.s.cfg.Logf("closing connection from %s: too long %s", c.nc.RemoteAddr(), what)
		c.out = c.appendError(c.out[:0], proto.CodeLimit, "connection closed: too long "+what)
		c.flush()
		return false
	}
}

func (c *conn) flush() bool {
	c.endRun(0)
	if len(c.out) == 0 {
		return true
	}
	c.wmu.Lock()
	c.setWriteDeadline(c.now)
	_, err := c.nc.Write(c.out)
	c.wmu.Unlock()
	c.writeFailed(err)
	if cap(c.out) > 4*flushAt {
		c.out = make([]byte, 0, readBufSize)
	} else {
		c.out = c.out[:0]
	}
	c.activateWatches()
	return err == nil
}

// writeFailed counts and logs a write that timed out: the client did not
// take its replies or events for WriteTimeout.
func (c *conn) writeFailed(err error) {
	if err == nil {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.s.cfg.Metrics.LimitRefusals.Get("write_timeout").Inc()
		c.s.cfg.Logf("closing connection from %s: it took no replies for %v", c.nc.RemoteAddr(), c.s.cfg.WriteTimeout)
	}
}

// close ends the connection, its leases and its watches.
func (c *conn) close() {
	c.haltOne.Do(func() { close(c.halt) })
	c.nc.Close()
	c.releaseLeases()
	close(c.done)
	c.smu.Lock()
	for _, w := range c.watches {
		w.sub.Close()
	}
	c.s.cfg.Metrics.Watchers.Add(-int64(len(c.watches)))
	c.watches = nil
	c.smu.Unlock()
}
