package server

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/region"
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
	// resp is set on the RESP listener's connections (resp_conn.go).
	resp *respConn

	// wmu serialises writes to the socket: reply batches and event frames
	// never interleave.
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

// run is a run of requests of one command, served back to back.
type run struct {
	cmd     proto.Cmd
	n       uint64 // requests
	in, out uint64 // payload bytes read, reply bytes written
}

// watch is one WATCH on a connection.
type watch struct {
	id      string
	sub     *host.Sub
	sent    uint64 // last version sent (or the client's from=)
	hasSent bool
	active  bool // false until the WATCH reply has been flushed
	delta   bool // the client takes DELTA frames (WATCH delta=1)
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

// record adds a handled request to the run: its command, its outcome
// (read back from the reply appended at mark) and its bytes. A request
// that failed ends the run, so that the run's other requests count as ok.
func (c *conn) record(req *proto.Request, mark int) {
	m := c.s.cfg.Metrics
	outcome := 0
	if rep := c.out[mark:]; len(rep) > 6 && string(rep[:6]) == "ERROR " {
		rest := rep[6:]
		for i, b := range rest {
			if b == ' ' || b == '\n' {
				rest = rest[:i]
				break
			}
		}
		outcome = int(proto.ParseCode(string(rest)))
		if outcome == int(proto.CodeLockTimeout) {
			m.LockTimeouts.Inc()
		} else if outcome == int(proto.CodeLimit) {
			m.LimitRefusals.Get(req.Cmd.String()).Inc()
		}
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
// latency (one clock reading per run, not two per request: at 50
// connections with 16 GETs pipelined on each, clock_gettime fell from
// 2.6% of the host's CPU to 0.8%), and moves c.now on to its end. last
// is the outcome of the run's last request; the others succeeded.
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
	// spinProbe (0.5 % of a CPU at 50 µs); one with nine spins in ten
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

func (c *conn) handle(req *proto.Request) {
	switch req.Cmd {
	case proto.CmdRead:
		c.refreshCurrent()
		c.read()
	case proto.CmdWrite:
		c.refreshCurrent()
		c.write(c.cur, req, true)
	case proto.CmdPing:
		c.out = proto.AppendPong(c.out)
	case proto.CmdQuit:
		c.out = proto.AppendOK(c.out)
		c.quit = true
	case proto.CmdUse:
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.cur = r
		c.appendJSON(c.meta(r))
	case proto.CmdGet:
		c.get(req)
	case proto.CmdSet:
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.write(r, req, false)
	case proto.CmdInfo:
		if req.ID == nil {
			hi := c.hostInfo()
			if len(c.grant.Regions) > 0 {
				// Other clients' addresses are for tokens that see all.
				hi.Clients = nil
			}
			c.appendJSON(hi)
			return
		}
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.appendJSON(r.Info())
	case proto.CmdList:
		list := c.s.h.List()
		if len(c.grant.Regions) > 0 {
			list = slices.DeleteFunc(list, func(in host.Info) bool { return !c.visible(in.ShmID) })
		}
		c.appendJSON(list)
	case proto.CmdCreate:
		c.create(req)
	case proto.CmdDelete:
		if err := c.s.h.Delete(string(req.ID)); err != nil {
			c.fail(err)
			return
		}
		c.out = proto.AppendOK(c.out)
	case proto.CmdAuth:
		c.authenticate(req)
	case proto.CmdWatch:
		c.watch(req)
	case proto.CmdUnwatch:
		c.unwatch(req)
	case proto.CmdLock:
		c.lock(req)
	case proto.CmdRenew:
		c.renew(req)
	case proto.CmdUnlock:
		c.unlock(req)
	default:
		c.out = proto.AppendError(c.out, proto.CodeUnknownCommand, req.Cmd.String()+" is not supported by this host")
	}
}

// refreshCurrent re-resolves the connection's current region by id if it
// was deleted (and perhaps created again) since USE.
func (c *conn) refreshCurrent() {
	if c.cur.Gone() {
		if r, err := c.s.h.Get(c.cur.ID()); err == nil {
			c.cur = r
		}
	}
}

// read answers the documented READ: "OK <content>\n".
func (c *conn) read() {
	start := len(c.out)
	c.out = append(c.out, "OK "...)
	err := c.cur.Do(func(r *region.Region) (err error) {
		c.out, _, err = r.AppendContent(c.out)
		return err
	})
	if err != nil {
		c.out = c.out[:start]
		c.fail(err)
		return
	}
	c.out = append(c.out, '\n')
}

func (c *conn) get(req *proto.Request) {
	hr, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	// The content goes straight from the mapping into the reply buffer,
	// behind its VALUE header: one copy.
	off, n := int64(0), int64(-1)
	if req.HasRange {
		off, n = req.Offset, req.Length
	}
	err = hr.Do(func(r *region.Region) (err error) {
		c.out, _, err = r.AppendFramed(c.out, off, n, proto.AppendValueHeader)
		return err
	})
	if err != nil {
		c.fail(err)
		return
	}
	c.out = append(c.out, '\n')
}

// write serves WRITE (compat: bare OK) and SET (OK <version>). A SET with
// an idempotency key (cid, seq) is applied at most once: a retry gets the
// first answer again.
func (c *conn) write(hr *host.Region, req *proto.Request, compat bool) {
	if req.ClientID != nil {
		w, session := c.s.dedup.acquire(req.ClientID)
		defer w.mu.Unlock()
		o, known, unknown := w.lookup(req.Seq)
		if session != c.session {
			// The connection is closed after this answer: its client
			// reconnects, sees the new session, and does not resend a
			// write whose answer it lost.
			known, unknown = false, fmt.Sprintf("the host ended session %s, which this connection began in, and forgot its writes' outcomes: reconnect (session %s)", c.session, session)
			c.quit = true
		}
		if known {
			if o.code != proto.CodeUnknown {
				c.out = proto.AppendError(c.out, o.code, o.msg)
			} else {
				c.out = proto.AppendOKVersion(c.out, o.version)
			}
			return
		} else if unknown != "" {
			c.out = proto.AppendError(c.out, proto.CodeUnknownOutcome, unknown)
			return
		}
		v, err := c.apply(hr, req)
		o = outcome{seq: req.Seq, version: v}
		if err != nil {
			o.code, o.msg = classify(err)
			c.out = proto.AppendError(c.out, o.code, o.msg)
		} else {
			c.out = proto.AppendOKVersion(c.out, v)
		}
		w.record(o)
		return
	}
	v, err := c.apply(hr, req)
	if err != nil {
		c.fail(err)
		return
	}
	if compat {
		c.out = proto.AppendOK(c.out)
		return
	}
	c.out = proto.AppendOKVersion(c.out, v)
}

// apply performs a WRITE or SET on the region.
func (c *conn) apply(hr *host.Region, req *proto.Request) (uint64, error) {
	o := region.WriteOptions{Timeout: c.s.cfg.LockTimeout, Label: c.label, Conditional: req.HasIfVer, IfVersion: req.IfVersion, Stop: c.halt}
	if req.HasFence {
		l, ok := c.leases[string(req.ID)]
		if !ok || l.token != req.Fence || l.hr != hr {
			return 0, fmt.Errorf("%w: this connection holds no lock on %q with token %d", region.ErrFenced, req.ID, req.Fence)
		}
		o.Fenced, o.Fence = true, req.Fence
	}
	var v uint64
	err := hr.DoWrite(func(r *region.Region) (err error) {
		if req.HasAt {
			v, err = r.WriteAt(req.Offset, req.Payload, o)
		} else {
			v, err = r.Write(req.Payload, o)
		}
		return err
	})
	return v, err
}

func (c *conn) create(req *proto.Request) {
	o := host.CreateOptions{Size: req.Size, Durable: req.Durable, MaxWrite: req.MaxWrite}
	if req.Layout != nil {
		l, err := region.ParseLayout(string(req.Layout))
		if err != nil {
			c.out = proto.AppendError(c.out, proto.CodeBadRequest, err.Error())
			return
		}
		o.Layout = l
	}
	r, err := c.s.h.Create(string(req.ID), o)
	if err != nil {
		c.fail(err)
		return
	}
	c.appendJSON(r.Info())
}

func (c *conn) appendJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.out = proto.AppendError(c.out, proto.CodeInternal, err.Error())
		return
	}
	c.out = proto.AppendJSON(c.out, b)
}

// meta builds the metadata of a region, as sent first on a connection and
// in USE replies.
func (c *conn) meta(r *host.Region) proto.Meta {
	in := r.Info()
	return proto.Meta{
		Proto: "shmgr/1", Server: c.s.cfg.ServerName, HostID: in.HostID,
		ShmID: in.ShmID, Size: in.Size, Layout: in.Layout,
		LockOffset: in.LockOffset, LenOffset: in.LenOffset, DataOffset: in.DataOffset, MaxDataSize: in.MaxDataSize,
		Version: in.Version, OSName: in.OSName, CtlName: in.CtlName, OSKind: in.OSKind,
		Nonce: in.Nonce, Durable: in.Durable, Created: in.Created, Auth: c.s.authMode(), Session: c.session,
		Features: features, MaxWrite: in.MaxWrite, Footprint: in.Footprint,
	}
}

// features is the metadata line's features list.
var features = []string{proto.FeatureDelta}

// HostInfo is the JSON of INFO without an id.
type HostInfo = proto.HostInfo

// Limits are a host's limits, as INFO reports them.
type Limits = proto.HostLimits

func (c *conn) hostInfo() HostInfo {
	lt := c.s.cfg.LockTimeout
	if lt <= 0 {
		lt = region.DefaultTimeout
	}
	return HostInfo{
		Server: c.s.cfg.ServerName, Proto: "shmgr/1", HostID: c.s.h.HostID(), PID: os.Getpid(),
		Default: c.s.h.DefaultID(), Regions: len(c.s.h.List()), Connections: c.s.Connections(),
		Accepted: c.s.accepted.Load(), Started: c.s.started.UTC().Truncate(time.Second), Auth: c.s.authMode(),
		MaxLine: c.s.cfg.Limits.MaxLine, MaxPayload: c.s.cfg.Limits.MaxPayload, LockTimeout: lt.String(),
		Insecure: c.s.cfg.Insecure,
		Limits: Limits{
			MaxConnections: c.s.cfg.MaxConns, MaxWatches: c.s.cfg.MaxWatches,
			IdleTimeout: c.s.cfg.IdleTimeout.String(), ReadTimeout: c.s.cfg.ReadTimeout.String(),
			WriteTimeout: c.s.cfg.WriteTimeout.String(), MaxLease: MaxLease.String(),
		},
		Clients: c.s.Clients(),
	}
}

// fail answers with the error's code and message.
func (c *conn) fail(err error) {
	code, msg := classify(err)
	c.out = proto.AppendError(c.out, code, msg)
}

// classify maps an error to its wire code and message. A conflict's
// message starts with the region's current version, so clients can read it.
func classify(err error) (proto.Code, string) {
	var ce *region.ConflictError
	switch {
	case errors.As(err, &ce):
		return proto.CodeConflict, strconv.FormatUint(ce.Current, 10) + " " + ce.Error()
	case errors.Is(err, region.ErrTooLarge):
		return proto.CodeTooLarge, err.Error()
	case errors.Is(err, region.ErrInvalidUTF8):
		return proto.CodeInvalidUTF8, err.Error()
	case errors.Is(err, region.ErrLockTimeout):
		return proto.CodeLockTimeout, err.Error()
	case errors.Is(err, region.ErrOutOfRange):
		return proto.CodeOutOfRange, err.Error()
	case errors.Is(err, region.ErrBadSize):
		return proto.CodeBadRequest, err.Error()
	case errors.Is(err, host.ErrNotFound):
		return proto.CodeNotFound, err.Error()
	case errors.Is(err, host.ErrExists):
		return proto.CodeExists, err.Error()
	case errors.Is(err, host.ErrBadID):
		return proto.CodeBadID, err.Error()
	case errors.Is(err, host.ErrForbidden):
		return proto.CodeForbidden, err.Error()
	case errors.Is(err, host.ErrNoSpace), errors.Is(err, host.ErrLimit):
		return proto.CodeLimit, err.Error()
	case errors.Is(err, host.ErrClosed):
		return proto.CodeUnavailable, "host is shutting down"
	case errors.Is(err, host.ErrVanished):
		return proto.CodeUnavailable, err.Error()
	case errors.Is(err, region.ErrFenced):
		return proto.CodeFenced, err.Error()
	case errors.Is(err, region.ErrStopped):
		return proto.CodeUnavailable, "host is shutting down"
	}
	return proto.CodeInternal, fmt.Sprint(err)
}
