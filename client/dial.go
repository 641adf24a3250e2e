package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/shm"
)

// dialer's keepalive probes an idle connection after 5 s, every 5 s, and
// gives up after 3 unanswered probes.
var dialer = net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}}

// dial connects and reads the metadata line. c.mu is held (or c is new).
func (c *Conn) dial(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.DialTimeout)
		defer cancel()
	}
	addr := c.Addr()
	var nc net.Conn
	var err error
	if c.opts.TLS != nil {
		cfg := c.opts.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		// TLS over a raw socket (rawsock), as the plain connection.
		if nc, err = dialer.DialContext(ctx, "tcp", addr); err == nil {
			tc := tls.Client(rawsock.Wrap(nc), cfg)
			if err = tc.HandshakeContext(ctx); err != nil {
				tc.Close()
			} else {
				nc = tc
			}
		}
	} else {
		nc, err = dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			nc = rawsock.Wrap(nc)
		}
	}
	if err != nil {
		return fmt.Errorf("connect to host %s: %w", addr, err)
	}
	c.nc, c.r, c.w = nc, 0, 0
	c.live.Store(&nc)
	if c.in == nil {
		c.in = make([]byte, 64<<10)
		c.rp = proto.NewReplyParser(proto.DefaultMaxLine*16, proto.DefaultMaxPayload)
	}
	c.applyContext(ctx)
	line, err := c.readLine()
	if err != nil {
		c.drop()
		return fmt.Errorf("connect to host %s: reading metadata line: %w", addr, ctxErr(ctx, err))
	}
	m, err := proto.ParseMeta(line)
	if err != nil {
		c.drop()
		if bytes.HasPrefix(line, []byte("ERROR ")) {
			return fmt.Errorf("connect to host %s: host refused: %s", addr, bytes.TrimSpace(line[6:]))
		}
		return fmt.Errorf("connect to host %s: not a shmgr host? %w: %w", addr, ErrProtocol, err)
	}
	if m.Auth == "token" {
		token := c.opts.Token
		if token == "" && c.opts.LocalToken != "" && m.HostID == shm.HostID() &&
			(c.opts.LocalInstance == "" || instanceOf(m.OSName) == c.opts.LocalInstance) {
			token = c.opts.LocalToken
		}
		if token == "" {
			c.drop()
			return fmt.Errorf("connect to host %s: %w: the host requires a token (pass --token, set SHMGR_TOKEN, or Options.Token; the host prints it at start)", addr, ErrUnauthorized)
		}
		err := c.roundTrip(ctx, func(b []byte) []byte { return proto.AppendAuth(b, []byte(token)) }, func(rep proto.Reply) error {
			if rep.Kind != proto.ReplyOK {
				return unexpected(rep, "OK")
			}
			g := parseGrant(string(rep.Text))
			c.grant.Store(&g)
			return nil
		})
		if err != nil {
			c.drop()
			var te *transportError
			if errors.As(err, &te) {
				err = te.err
			}
			return fmt.Errorf("connect to host %s: %w", addr, err)
		}
	}
	c.meta = infoFromMeta(m)
	c.srv = m.Server
	c.session = m.Session
	c.delta = slices.Contains(m.Features, proto.FeatureDelta)
	c.replicated.Store(slices.Contains(m.Features, proto.FeatureReplicated))
	// A host is its machine and data directory: a restart of the same
	// host keeps its objects; another node of the cluster has its own.
	if id := m.HostID + "/" + instanceOf(m.OSName); id != c.identity {
		if c.identity != "" {
			c.hostGen.Add(1)
		}
		c.identity = id
	}
	c.setState(StateConnected)
	return nil
}

// drop closes the network connection after a failure. c.mu is held. A
// Conn already known to be StateUnreachable stays so until a dial works.
func (c *Conn) drop() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
		c.live.Store(nil)
	}
	if !c.closed && c.State() != StateUnreachable {
		c.setState(StateReconnecting)
	}
}

// hostList returns the hosts to try: addr split at commas, then more,
// each with a port, each once. No host at all means the default one.
func hostList(addr string, more []string) []string {
	var out []string
	for _, a := range append(strings.Split(addr, ","), more...) {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if a = withPort(a); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{withPort("")}
	}
	return out
}

// fromCurrent lists the hosts, comma-separated, starting with the
// current one: for a connection of its own (a watcher's) to the same
// hosts.
func (c *Conn) fromCurrent() string {
	at := int(c.at.Load())
	return strings.Join(append(slices.Clone(c.addrs[at:]), c.addrs[:at]...), ",")
}

// dialAt dials host i of c.addrs, making it the current one. With several
// hosts each gets its own DialTimeout, so that one that does not answer
// leaves time for the next. c.mu is held (or c is new).
func (c *Conn) dialAt(ctx context.Context, i int) error {
	c.at.Store(int32(i))
	if len(c.addrs) == 1 {
		return c.dial(ctx)
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	return c.dial(dctx)
}

// dialFirst connects to the first host that answers, in order.
func (c *Conn) dialFirst(ctx context.Context) error {
	var errs []error
	for i := range c.addrs {
		err := c.dialAt(ctx, i)
		if err == nil {
			return nil
		}
		if len(c.addrs) == 1 || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no host of %s answered: %w", strings.Join(c.addrs, ","), errors.Join(errs...))
}

// dialRound tries each host once: with several, the next after the
// current one first (the current one just failed) and the current one
// last. c.mu is held.
func (c *Conn) dialRound(ctx context.Context) error {
	n := len(c.addrs)
	if n == 1 {
		return c.dial(ctx)
	}
	at := int(c.at.Load())
	var err error
	for i := 1; i <= n; i++ {
		if err = c.dialAt(ctx, (at+i)%n); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// redial reconnects with exponential backoff and jitter until it succeeds
// or ctx ends, each round trying every host once (dialRound). c.mu is
// held.
func (c *Conn) redial(ctx context.Context) error {
	backoff := 20 * time.Millisecond
	for {
		err := c.dialRound(ctx)
		if err == nil {
			return nil
		}
		c.lastErr = err
		d := backoff/2 + time.Duration(mrand.Int64N(int64(backoff)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("reconnect to host %s: %w (last error: %v)", strings.Join(c.addrs, ","), ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// instanceOf returns the data directory instance in a host's OS name
// ("shmgr-<instance>-<hash>", or a durable region's file named so), or "".
func instanceOf(osName string) string {
	base := osName
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	rest, ok := strings.CutPrefix(base, "shmgr-")
	if !ok {
		return ""
	}
	inst, _, ok := strings.Cut(rest, "-")
	if !ok {
		return ""
	}
	return inst
}

func withPort(addr string) string {
	if addr == "" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultPort))
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), strconv.Itoa(DefaultPort))
	}
	return addr
}

func infoFromMeta(m proto.Meta) Info {
	return Info{
		ShmID: m.ShmID, Size: m.Size, Layout: m.Layout, LockOffset: m.LockOffset, LenOffset: m.LenOffset,
		DataOffset: m.DataOffset, MaxDataSize: m.MaxDataSize, Version: m.Version, OSName: m.OSName,
		CtlName: m.CtlName, OSKind: m.OSKind, Nonce: m.Nonce, Durable: m.Durable, Created: m.Created, HostID: m.HostID,
		MaxWrite: m.MaxWrite, Footprint: m.Footprint,
	}
}

// readLine reads the metadata line (at most 64 KiB).
func (c *Conn) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.in[c.r:c.w], '\n'); i >= 0 {
			line := c.in[c.r : c.r+i+1]
			c.r += i + 1
			return line, nil
		}
		if c.w == len(c.in) {
			return nil, fmt.Errorf("%w: metadata line longer than %d bytes", ErrProtocol, len(c.in))
		}
		n, err := c.nc.Read(c.in[c.w:])
		c.w += n
		if err != nil && n == 0 {
			return nil, err
		}
	}
}
