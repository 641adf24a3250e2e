package server

import (
	"errors"
	"fmt"
	"net"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/resp"
)

// RESPConfig configures the RESP (Redis protocol) listener.
type RESPConfig struct {
	// NoCreate makes SET and SETRANGE on a missing key fail instead of
	// creating a utf8 region for it (see respCreateSize).
	NoCreate bool
}

// ServeRESP is Serve for the Redis protocol: connections accepted on ln
// speak RESP2 (or RESP3 after HELLO 3) instead of the shmgr protocol,
// with the same tokens, grants, limits, metrics and logs, served by the
// same connection loop machinery (raw sockets, busy polling, batching).
// On a cluster node its writes go through the log and its reads are the
// local copy (resp_cluster.go).
func (s *Server) ServeRESP(ln net.Listener) error {
	return s.serve(ln, true)
}

// respConn is what a RESP connection keeps beside its conn. The reading
// goroutine owns it, except subs (under conn.smu, shared with respPush).
type respConn struct {
	p     *resp.Parser
	cmd   resp.Command
	proto int    // 2 or 3
	id    int64  // CLIENT ID
	name  []byte // CLIENT SETNAME
	base  proto.Cmd
	idbuf []byte // the region id of the key at hand
	tmp   []byte // scratch: values read for GETRANGE and the like
	// failed is set by respAtomic when the step failed as a whole (its
	// one error reply stands for all its commands).
	failed bool
	tx     respTx
	subs   respSubs
	// nsubs is the number of channels and patterns subscribed (RESP2's
	// subscribed mode while > 0); the reading goroutine's own copy.
	nsubs int
}

func newRESPConn(c *conn) *respConn {
	rc := &respConn{
		p:     resp.NewParser(resp.Limits{MaxBulk: c.s.cfg.Limits.MaxPayload}),
		proto: resp.RESP2,
		id:    int64(c.s.accepted.Load()),
		base:  respCmdBase(),
	}
	// Until AUTH, Redis's limits for strangers: a few small arguments.
	rc.p.SetUnauthenticated(c.grant == nil)
	return rc
}

// respCmdBase is the metrics index of the first RESP command family: the
// RESP families follow the shmgr commands (see respFamilyNames).
func respCmdBase() proto.Cmd { return proto.Cmd(len(commandNames())) }

// need is how many bytes the pending request needs, for fill.
func (c *conn) need() int64 {
	if c.resp != nil {
		return c.resp.p.Need()
	}
	return c.p.Need()
}

// serveRESP is serve's loop for a RESP connection: parse what has been
// read, answer each command in order into c.out, flush once per batch,
// read more.
func (c *conn) serveRESP() {
	defer c.respCloseSubs()
	rc := c.resp
	for {
		for c.r < c.w && !c.quit {
			n, err := rc.p.Next(&rc.cmd, c.in[c.r:c.w])
			if n == 0 && err == nil {
				break
			}
			if err != nil {
				var pe *resp.Error
				msg := err.Error()
				if errors.As(err, &pe) {
					msg = "Protocol error: " + pe.Msg
				}
				c.s.cfg.Logf("closing RESP connection from %s: %v", c.nc.RemoteAddr(), err)
				c.out = resp.AppendError(c.out, "ERR "+msg)
				c.s.cfg.Metrics.Request(int(rc.base)+int(respFamilyError), int(proto.CodeBadRequest), 0)
				c.quit = true
				break
			}
			c.r += n
			if len(rc.cmd.Args) == 0 {
				continue
			}
			c.respDispatch(rc.cmd.Args)
			if len(c.out) >= flushAt {
				if !c.flush() {
					return
				}
				c.respActivate()
			}
		}
		if !c.flush() {
			return
		}
		c.respActivate()
		if c.quit || c.stopping.Load() {
			return
		}
		if !c.fill() {
			return
		}
	}
}

// respRecord counts one served command in the connection's run, as
// record does for the shmgr protocol.
func (c *conn) respRecord(fam respFamily, in, mark int) {
	cmd := c.resp.base + proto.Cmd(fam)
	if c.run.n > 0 && c.run.cmd != cmd {
		c.endRun(0)
	}
	outcome := int(c.code)
	switch c.code {
	case proto.CodeLockTimeout:
		c.s.cfg.Metrics.LockTimeouts.Inc()
	case proto.CodeLimit:
		c.s.cfg.Metrics.LimitRefusals.Get(respFamilyNames[fam]).Inc()
	}
	c.run.cmd = cmd
	c.run.n++
	c.run.in += uint64(in)
	c.run.out += uint64(len(c.out) - mark)
	if outcome != 0 {
		c.endRun(outcome)
	}
}

// respAuth checks a token (AUTH, HELLO AUTH) and answers WRONGPASS, or
// sets the connection's grant.
func (c *conn) respAuth(user, token []byte) bool {
	if c.s.cfg.Auth == nil {
		return true // an open host takes any token, as on the shmgr port
	}
	g, err := c.s.cfg.Auth.Check(string(token))
	if err == nil && user != nil && string(user) != "default" && string(user) != g.Name {
		err = errors.New("the user name is neither \"default\" nor the token's name")
	}
	if err != nil {
		c.authFailures++
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.s.cfg.Logf("auth failure from %s (%d of %d): %v", c.nc.RemoteAddr(), c.authFailures, maxAuthFailures, err)
		c.respErr(proto.CodeUnauthorized, "WRONGPASS invalid username-password pair or user is disabled.")
		if c.authFailures >= maxAuthFailures {
			c.quit = true
		}
		return false
	}
	c.grant = &g
	c.resp.p.SetUnauthenticated(false)
	c.authed.Store(&authed{secret: string(token), grant: g})
	c.authName.Store(g.Name)
	c.s.cfg.Logf("RESP connection from %s authenticated with token %q", c.nc.RemoteAddr(), g.Name)
	return true
}

// respMayRead answers NOPERM unless the grant covers region id.
func (c *conn) respMayRead(g *auth.Grant, key, id []byte) bool {
	if len(g.Regions) > 0 && !g.Region(string(id)) {
		c.respErr(proto.CodeForbidden, fmt.Sprintf("NOPERM token %q does not cover key '%s' (region %q)", g.Name, key, id))
		return false
	}
	return true
}

// respMayWrite answers NOPERM unless the grant may write region id.
func (c *conn) respMayWrite(g *auth.Grant, cmd string, key, id []byte) bool {
	if g.ReadOnly {
		c.respErr(proto.CodeForbidden, fmt.Sprintf("NOPERM token %q is read-only: it may not run '%s'", g.Name, cmd))
		return false
	}
	return c.respMayRead(g, key, id)
}
