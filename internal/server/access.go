package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// maxAuthFailures is how many wrong tokens a connection may send before
// the host hangs up on it.
const maxAuthFailures = 3

// authenticate serves AUTH <token>.
func (c *conn) authenticate(req *proto.Request) {
	if c.s.cfg.Auth == nil {
		// An open host accepts any token.
		c.out = proto.AppendOK(c.out)
		return
	}
	g, err := c.s.cfg.Auth.Check(string(req.ID))
	if err != nil {
		c.authFailures++
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.s.cfg.Logf("auth failure from %s (%d of %d): %v", c.nc.RemoteAddr(), c.authFailures, maxAuthFailures, err)
		c.fail(errBadToken)
		if c.authFailures >= maxAuthFailures {
			c.quit = true
		}
		return
	}
	c.grant = &g
	c.authed.Store(&authed{secret: string(req.ID), grant: g})
	c.authName.Store(g.Name)
	c.s.cfg.Debugf("connection from %s authenticated with token %q", c.nc.RemoteAddr(), g.Name)
	c.out = proto.AppendOKText(c.out, grantText(g))
}

// grantText says what a token grants, in the AUTH reply: "rw" or "ro",
// then " regions=a,b" if it is limited to some regions. A client that maps
// regions directly applies the same limits to itself.
func grantText(g auth.Grant) []byte {
	b := []byte("rw")
	if g.ReadOnly {
		b = []byte("ro")
	}
	if len(g.Regions) > 0 {
		b = append(b, " regions="...)
		b = append(b, strings.Join(g.Regions, ",")...)
	}
	return b
}

// permitted checks the request against the connection's grant, and
// answers unauthorized or forbidden if it may not run.
func (c *conn) permitted(req *proto.Request) bool {
	switch req.Cmd {
	case proto.CmdAuth, proto.CmdPing, proto.CmdQuit:
		return true
	}
	if c.revoked.Load() {
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.fail(errRevoked)
		c.quit = true
		return false
	}
	if c.grant == nil {
		c.s.cfg.Metrics.AuthFailures.Inc()
		c.fail(errAuthRequired)
		return false
	}
	g := c.grant
	var id []byte
	write := false
	switch req.Cmd {
	case proto.CmdRead:
		id = []byte(c.cur.ID())
	case proto.CmdWrite:
		id, write = []byte(c.cur.ID()), true
	case proto.CmdSet, proto.CmdLock, proto.CmdRenew, proto.CmdUnlock, proto.CmdCreate, proto.CmdDelete:
		id, write = req.ID, true
	case proto.CmdCluster:
		// Its ID is a node's name, not a region's: clusterAdmin checks.
		return true
	default:
		id = req.ID
	}
	if write && g.ReadOnly {
		c.refuse(proto.CodeForbidden, fmt.Sprintf("token %q is read-only", g.Name))
		return false
	}
	if len(g.Regions) > 0 && id != nil && !g.Region(string(id)) {
		c.refuse(proto.CodeForbidden, fmt.Sprintf("token %q does not cover region %q", g.Name, id))
		return false
	}
	return true
}

// authed is what a connection authenticated with.
type authed struct {
	secret string
	grant  auth.Grant
}

// revokedMsg is the last reply of a connection whose token was revoked.
const revokedMsg = "the token this connection authenticated with was removed or changed on the host (the connection is closed): connect again with a valid token"

// The refusals of a connection without a valid token are errors of kind
// shmerr.ErrUnauthorized, so that their code comes from the one table
// (proto.CodeOf), as every other error's does.
var (
	// errBadToken answers an AUTH whose token the host does not hold
	// (auth.ErrNoToken or auth.ErrBadToken: the log says which, the
	// client is not told).
	errBadToken = shmerr.New(shmerr.ErrUnauthorized, "invalid token: use the token the host printed at start (or one from 'shmgr token ls' on the host)")
	// errAuthRequired answers a request before AUTH on a host with tokens.
	errAuthRequired = shmerr.New(shmerr.ErrUnauthorized, "authentication required: send AUTH <token> first (the host prints its token at start and keeps it in tokens.json in its data directory)")
	// errRevoked answers a request on a connection whose token was revoked.
	errRevoked = shmerr.New(shmerr.ErrUnauthorized, revokedMsg)
)

// tokenCheck is how often the host looks for changes to its token file,
// to cut the connections whose token was removed or changed.
const tokenCheck = time.Second

// watchTokens cuts, within about tokenCheck, every connection whose
// token was removed from the token file or given other access, until
// quit is closed.
func (s *Server) watchTokens(quit <-chan struct{}) {
	t := time.NewTicker(tokenCheck)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		gen, err := s.cfg.Auth.Refresh()
		if err != nil || gen == last {
			continue
		}
		last = gen
		s.mu.Lock()
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.recheck()
		}
	}
}

// recheck revokes the connection if its token no longer holds: its next
// request, or its idle read, ends it with revokedMsg.
func (c *conn) recheck() {
	a := c.authed.Load()
	if a == nil || c.s.cfg.Auth.Holds(a.secret, a.grant) {
		return
	}
	if c.revoked.Swap(true) {
		return
	}
	c.s.cfg.Logf("closing connection from %s: its token %q was removed or changed", c.nc.RemoteAddr(), a.grant.Name)
	c.nc.SetReadDeadline(time.Now())
}

// visible reports whether the connection's grant covers region id (for
// LIST).
func (c *conn) visible(id string) bool { return c.grant != nil && c.grant.Region(id) }

// info describes the connection for INFO.
func (c *conn) info() ClientInfo {
	ci := ClientInfo{Addr: c.nc.RemoteAddr().String(), Since: c.since.UTC().Truncate(time.Second)}
	if n, _ := c.authName.Load().(string); n != "" {
		ci.Token = n
	}
	c.smu.Lock()
	ci.Watches = len(c.watches)
	c.smu.Unlock()
	ci.Leases = int(c.nleases.Load())
	return ci
}

// commandNames names proto.Cmd values for metrics.
func commandNames() []string {
	var out []string
	for c := proto.CmdNone; ; c++ {
		n := c.String()
		if len(n) > 4 && n[:4] == "Cmd(" {
			return out
		}
		out = append(out, n)
	}
}

// outcomeNames names request outcomes for metrics: "ok", then the error
// codes by number.
func outcomeNames() []string {
	out := []string{"ok"}
	for c := proto.Code(1); ; c++ {
		n := c.String()
		if n == proto.CodeUnknown.String() {
			return out
		}
		out = append(out, n)
	}
}
