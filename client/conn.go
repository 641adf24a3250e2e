package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/shm"
)

// DefaultPort is the TCP port a host listens on by default.
const DefaultPort = 9410

// Mode says how a Region reaches its memory.
type Mode int

// Modes.
const (
	// ModeAuto maps the region when the host is on this machine and the
	// object can be opened, and uses TCP otherwise.
	ModeAuto Mode = iota
	// ModeLocal maps the region directly (zero copy), or fails.
	ModeLocal
	// ModeTCP always talks to the host over TCP.
	ModeTCP
)

func (m Mode) String() string {
	switch m {
	case ModeLocal:
		return "local"
	case ModeTCP:
		return "tcp"
	}
	return "auto"
}

// ParseMode parses "auto", "local" or "tcp".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "local":
		return ModeLocal, nil
	case "tcp", "remote":
		return ModeTCP, nil
	}
	return 0, fmt.Errorf("unknown mode %q: use auto, local or tcp", s)
}

// Options configure Connect and Dial. DefaultOptions gives the defaults.
type Options struct {
	// Mode chooses local mapping or TCP (default ModeAuto).
	Mode Mode
	// DialTimeout bounds connecting and reading the metadata line when the
	// context has no deadline (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds each request when the context has no deadline
	// (default 30s).
	RequestTimeout time.Duration
	// LockTimeout bounds how long a local write waits for the lock
	// (default 5s; remote writes use the host's).
	LockTimeout time.Duration
	// MaxBackoff bounds the pause between reconnection attempts (default
	// 2s; pauses start at 20ms and double, with jitter).
	MaxBackoff time.Duration
	// KeepAlive is how long a watcher's connection may be silent before it
	// sends PING; a second silent period means the connection is dead and
	// it reconnects (default 5s: a half-open connection is noticed within
	// 10s).
	KeepAlive time.Duration
	// OnState, if set, is called with each new state of a Conn or Watcher
	// made with these options. It must not block.
	OnState func(State)
	// Token is sent with AUTH when the host requires one (its metadata
	// line says "auth":"token"). It is never logged.
	Token string
	// LocalToken, when Token is empty, is sent only to a host that runs on
	// this machine (its host_id is this machine's): the CLI offers the
	// local host's own token this way, never to another machine.
	LocalToken string
	// LocalInstance, if set, narrows LocalToken to the one host whose
	// data directory the token came from: the host whose objects are
	// named "shmgr-<LocalInstance>-..." (the instance id in the data
	// directory's registry.json). Another host on this machine, with
	// another data directory, is not offered the token.
	LocalInstance string
	// TLS, if set, connects with TLS using this configuration. For a host
	// with a self-signed certificate, use PinnedTLS with the fingerprint it
	// prints.
	TLS *tls.Config
}

// PinnedTLS returns a TLS configuration that accepts exactly the host
// certificate with this SHA-256 fingerprint (64 hex digits, colons
// allowed), as "shmgr host --tls" prints it.
func PinnedTLS(fingerprint string) (*tls.Config, error) { return certs.PinnedConfig(fingerprint) }

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{Mode: ModeAuto, DialTimeout: 5 * time.Second, RequestTimeout: 30 * time.Second, LockTimeout: 5 * time.Second, MaxBackoff: 2 * time.Second, KeepAlive: 5 * time.Second}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.DialTimeout <= 0 {
		o.DialTimeout = d.DialTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = d.RequestTimeout
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = d.LockTimeout
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = d.KeepAlive
	}
	return o
}

// Info describes a region, as the host reports it. It never holds an
// address: outside the host a region is named only by its shm_id.
type Info = proto.RegionInfo

// HostInfo describes a host: its software, limits and clients.
type HostInfo = proto.HostInfo

// HostLimits are a host's limits.
type HostLimits = proto.HostLimits

// ClientInfo describes one connection to a host.
type ClientInfo = proto.ClientInfo

// CreateOptions describe a new region. Zero fields take the host's
// defaults (4096 bytes, utf8, not durable).
type CreateOptions struct {
	// Size in bytes.
	Size int64
	// Layout: "utf8" (the documented layout) or "raw".
	Layout string
	// Durable regions are backed by a file in the host's data directory
	// and survive a reboot.
	Durable bool
	// MaxWrite is the largest write the region will take, in bytes (raw
	// regions only; 0: the whole size). The region's undo area holds that
	// much, so it costs Size + MaxWrite + 4 KiB of shared memory instead of
	// about twice Size; a larger write fails with ErrTooLarge.
	MaxWrite int64
}

// State is a connection's state.
type State int32

// States.
const (
	// StateConnected: the connection is up.
	StateConnected State = iota
	// StateReconnecting: the connection dropped and is being re-dialled.
	StateReconnecting
	// StateClosed: Close was called.
	StateClosed
	// StateUnreachable: the host cannot be reached, and a region this
	// Conn has mapped (ModeLocal) keeps working: reads, writes and local
	// watches go through the mapping, not the host. Only a Conn with a
	// mapped region open reports it; the Conn re-dials in the background
	// and is StateConnected again when the host answers.
	StateUnreachable
)

func (s State) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateUnreachable:
		return "host unreachable"
	}
	return "closed"
}

// Conn is a TCP connection to a host. It is safe for concurrent use;
// requests take turns. When the connection drops, the next request
// re-dials (with exponential backoff and jitter, within its context) and
// requests that are safe to repeat are retried: reads, and writes, which
// carry an idempotency key the host uses to apply each write once.
type Conn struct {
	addr  string
	opts  Options
	cid   string // idempotency client id
	state atomic.Int32

	// mu serialises requests and protects everything below.
	mu      sync.Mutex
	meta    Info
	srv     string
	session string
	delta   bool     // the host sends DELTA frames to watchers that ask
	nc      net.Conn // nil while disconnected
	rp      *proto.ReplyParser
	in      []byte
	r, w    int
	out     []byte
	seq     uint64
	closed  bool
	lastErr error
	lastIO  time.Time // last request answered
	// grant is read by every local write (Region.writable), so it is an
	// atomic and not behind mu: a mapped region's writes never wait for a
	// request on the network.
	grant atomic.Pointer[grant]
	// mon is the liveness check of the host while a mapped region is
	// open (see hostcheck.go).
	mon monitor
	// watched is the cancellable context whose cancellation interrupts
	// I/O, and unwatch stops that; live is the current connection, for the
	// cancellation callback.
	cancelMu sync.Mutex // protects watched, unwatch and gen (see watch)
	watched  context.Context
	unwatch  func() bool
	gen      uint64
	live     atomic.Pointer[net.Conn]
}

// grant is what the host says the connection's token allows.
type grant struct {
	readOnly bool
	regions  []string // empty: all
}

// parseGrant reads an AUTH reply's text: "rw" or "ro", then optionally
// " regions=a,b".
func parseGrant(s string) grant {
	f := strings.Fields(s)
	var g grant
	if len(f) > 0 && f[0] == "ro" {
		g.readOnly = true
	}
	for _, x := range f[1:] {
		if v, ok := strings.CutPrefix(x, "regions="); ok && v != "" {
			g.regions = strings.Split(v, ",")
		}
	}
	return g
}

// allows reports whether the token lets this client use region id
// directly (and write it, if write).
func (c *Conn) allows(id string, write bool) error {
	var g grant
	if p := c.grant.Load(); p != nil {
		g = *p
	}
	if write && g.readOnly {
		return fmt.Errorf("%w: the token is read-only", ErrForbidden)
	}
	if len(g.regions) > 0 && !slices.Contains(g.regions, id) {
		return fmt.Errorf("%w: the token does not cover region %q", ErrForbidden, id)
	}
	return nil
}

// Connect dials a host at addr ("host:port"; a missing port means
// DefaultPort) and reads its metadata line. It does not retry: a host that
// cannot be reached now is an error at once.
func Connect(ctx context.Context, addr string, o Options) (*Conn, error) {
	o = o.withDefaults()
	c := &Conn{addr: withPort(addr), opts: o, cid: newClientID()}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func newClientID() string {
	var b [8]byte
	rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:])
}

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
	var nc net.Conn
	var err error
	if c.opts.TLS != nil {
		cfg := c.opts.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.addr)
		}
		// TLS over a raw socket (rawsock), as the plain connection.
		if nc, err = dialer.DialContext(ctx, "tcp", c.addr); err == nil {
			tc := tls.Client(rawsock.Wrap(nc), cfg)
			if err = tc.HandshakeContext(ctx); err != nil {
				tc.Close()
			} else {
				nc = tc
			}
		}
	} else {
		nc, err = dialer.DialContext(ctx, "tcp", c.addr)
		if err == nil {
			nc = rawsock.Wrap(nc)
		}
	}
	if err != nil {
		return fmt.Errorf("connect to host %s: %w", c.addr, err)
	}
	c.nc, c.r, c.w = nc, 0, 0
	c.live.Store(&nc)
	if c.in == nil {
		c.in = make([]byte, 64<<10)
		c.rp = proto.NewReplyParser(proto.DefaultMaxLine*16, proto.DefaultMaxPayload)
	}
	stop := c.watch(ctx)
	line, err := c.readLine()
	stop()
	if err != nil {
		c.drop()
		return fmt.Errorf("connect to host %s: reading metadata line: %w", c.addr, ctxErr(ctx, err))
	}
	m, err := proto.ParseMeta(line)
	if err != nil {
		c.drop()
		if bytes.HasPrefix(line, []byte("ERROR ")) {
			return fmt.Errorf("connect to host %s: host refused: %s", c.addr, bytes.TrimSpace(line[6:]))
		}
		return fmt.Errorf("connect to host %s: not a shmgr host? %w: %w", c.addr, ErrProtocol, err)
	}
	if m.Auth == "token" {
		token := c.opts.Token
		if token == "" && c.opts.LocalToken != "" && m.HostID == shm.HostID() &&
			(c.opts.LocalInstance == "" || instanceOf(m.OSName) == c.opts.LocalInstance) {
			token = c.opts.LocalToken
		}
		if token == "" {
			c.drop()
			return fmt.Errorf("connect to host %s: %w: the host requires a token (pass --token, set SHMGR_TOKEN, or Options.Token; the host prints it at start)", c.addr, ErrUnauthorized)
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
			return fmt.Errorf("connect to host %s: %w", c.addr, err)
		}
	}
	c.meta = infoFromMeta(m)
	c.srv = m.Server
	c.session = m.Session
	c.delta = slices.Contains(m.Features, proto.FeatureDelta)
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

func (c *Conn) setState(s State) {
	if State(c.state.Swap(int32(s))) != s && c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// State returns the connection's state.
func (c *Conn) State() State { return State(c.state.Load()) }

// redial reconnects with exponential backoff and jitter until it succeeds
// or ctx ends. c.mu is held.
func (c *Conn) redial(ctx context.Context) error {
	backoff := 20 * time.Millisecond
	for {
		err := c.dial(ctx)
		if err == nil {
			return nil
		}
		c.lastErr = err
		d := backoff/2 + time.Duration(mrand.Int64N(int64(backoff)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("reconnect to host %s: %w (last error: %v)", c.addr, ctx.Err(), err)
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

// Addr returns the host's address.
func (c *Conn) Addr() string { return c.addr }

// Default returns the info of the host's default region, from the
// metadata line it sent on (re)connecting.
func (c *Conn) Default() Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meta
}

// Server returns the host's software name and version.
func (c *Conn) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.mon.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.setState(StateClosed)
	c.cancelMu.Lock()
	c.gen++
	if c.unwatch != nil {
		c.unwatch()
	}
	c.cancelMu.Unlock()
	if c.nc != nil {
		err := c.nc.Close()
		c.nc = nil
		return err
	}
	return nil
}

// watch applies ctx to the connection until the returned stop is called.
// A context with a deadline bounds the socket through that deadline; one
// that can only be cancelled is watched, so that cancelling interrupts a
// blocked read or write. (A context with a deadline that is cancelled
// early is noticed when the reply comes or the deadline passes: watching
// it too would cost three allocations per request.)
//
// The watch stays registered after the request, for the next one with the
// same context (a caller's loop usually passes one context to many
// requests): cancelling it between requests only sets a deadline that the
// next request replaces.
func (c *Conn) watch(ctx context.Context) (stop func()) {
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
	return noop
}

func noop() {}

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
			return ctx, noop
		}
		return context.WithDeadline(ctx, begin.Add(c.opts.RequestTimeout))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var session string
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
				if session != "" && rt != retrySafe {
					return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
				}
				return err
			}
			if session != "" && c.session != session && rt == retryKeyed {
				// Another host process: it cannot know whether the first
				// attempt was applied.
				return fmt.Errorf("%w: the host restarted before it answered a write", ErrUnknownOutcome)
			}
		}
		err := c.roundTrip(ctx, enc, fn)
		te, ok := err.(*transportError) // roundTrip returns it unwrapped
		if !ok {
			c.lastIO = time.Now()
			return err
		}
		c.drop()
		err = fmt.Errorf("host %s: %w", c.addr, ctxErr(ctx, te.err))
		if te.sent {
			session = c.session
		}
		expired := ctx.Err() != nil
		if _, ok := ctx.Deadline(); !ok && time.Since(begin) >= c.opts.RequestTimeout {
			expired = true
		}
		if expired || attempt >= maxAttempts || te.sent && rt == retryNever {
			if session != "" && rt != retrySafe {
				return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
			}
			return err
		}
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

// roundTrip writes one request and reads its reply. c.mu is held and
// c.nc is set.
func (c *Conn) roundTrip(ctx context.Context, enc func([]byte) []byte, fn func(proto.Reply) error) error {
	stop := c.watch(ctx)
	defer stop()
	c.out = enc(c.out[:0])
	n, err := c.nc.Write(c.out)
	if cap(c.out) > 1<<20 {
		c.out = nil
	}
	if err != nil {
		return &transportError{err: err, sent: n > 0}
	}
	for {
		if c.r < c.w {
			rep, n, err := c.rp.Next(c.in[c.r:c.w])
			if err != nil {
				return &transportError{err: fmt.Errorf("%w: %w", ErrProtocol, err), sent: true}
			}
			if n > 0 {
				c.r += n
				if rep.Kind == proto.ReplyEvent {
					continue // pushed events belong to watchers
				}
				if rep.Kind == proto.ReplyError {
					return replyError(rep)
				}
				return fn(rep)
			}
		}
		if err := c.fill(); err != nil {
			return &transportError{err: err, sent: true}
		}
	}
}

func (c *Conn) fill() error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	need := int(c.rp.Need())
	if need < c.w-c.r+1 {
		need = c.w - c.r + 1
	}
	if c.r > 0 && need > len(c.in)-c.r {
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
	if need > len(c.in) {
		bigger := make([]byte, need)
		c.w = copy(bigger, c.in[c.r:c.w])
		c.r = 0
		c.in = bigger
	}
	n, err := c.nc.Read(c.in[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func replyError(rep proto.Reply) error {
	e := &Error{Code: rep.Code.String(), Message: string(rep.Text), err: sentinel(rep.Code)}
	if rep.Code == proto.CodeConflict {
		// "<current version> <message>"
		msg := rep.Text
		if i := bytes.IndexByte(msg, ' '); i > 0 {
			if v, err := strconv.ParseUint(string(msg[:i]), 10, 64); err == nil {
				return &ConflictError{Current: v, Expected: parseExpected(msg)}
			}
		}
	}
	return e
}

// parseExpected finds "expected version N" in a conflict message.
func parseExpected(msg []byte) uint64 {
	const key = "expected version "
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return 0
	}
	rest := msg[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, _ := strconv.ParseUint(string(rest[:j]), 10, 64)
	return v
}

func unexpected(rep proto.Reply, want string) error {
	return fmt.Errorf("%w: expected %s reply, got %s", ErrProtocol, want, rep.Kind)
}

func (c *Conn) doJSON(ctx context.Context, rt retry, enc func([]byte) []byte, v any) error {
	return c.do(ctx, rt, enc, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyJSON {
			return unexpected(rep, "JSON")
		}
		if err := json.Unmarshal(rep.Payload, v); err != nil {
			return fmt.Errorf("%w: bad JSON reply: %v", ErrProtocol, err)
		}
		return nil
	})
}

func checkID(id string) error {
	if !proto.ValidID([]byte(id)) {
		return fmt.Errorf("%w: %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadID, id)
	}
	return nil
}

// Ping checks that the host answers.
func (c *Conn) Ping(ctx context.Context) error {
	return c.do(ctx, retrySafe, proto.AppendPing, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyPong {
			return unexpected(rep, "PONG")
		}
		return nil
	})
}

// HostInfo returns the host's description.
func (c *Conn) HostInfo(ctx context.Context) (HostInfo, error) {
	var hi HostInfo
	err := c.doJSON(ctx, retrySafe, func(b []byte) []byte { return proto.AppendInfo(b, nil) }, &hi)
	return hi, err
}

// Info returns a region's description.
func (c *Conn) Info(ctx context.Context, id string) (Info, error) {
	var in Info
	if err := checkID(id); err != nil {
		return in, err
	}
	err := c.doJSON(ctx, retrySafe, func(b []byte) []byte { return proto.AppendInfo(b, []byte(id)) }, &in)
	return in, err
}

// List returns every region on the host, sorted by shm_id.
func (c *Conn) List(ctx context.Context) ([]Info, error) {
	var out []Info
	err := c.doJSON(ctx, retrySafe, proto.AppendList, &out)
	return out, err
}

// Create makes a new region on the host.
func (c *Conn) Create(ctx context.Context, id string, o CreateOptions) (Info, error) {
	var in Info
	if err := checkID(id); err != nil {
		return in, err
	}
	err := c.doJSON(ctx, retryNever, func(b []byte) []byte {
		return proto.AppendCreate(b, []byte(id), proto.CreateOptions{Size: o.Size, Layout: o.Layout, Durable: o.Durable, MaxWrite: o.MaxWrite})
	}, &in)
	return in, err
}

// Delete removes a region from the host.
func (c *Conn) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	return c.do(ctx, retryNever, func(b []byte) []byte { return proto.AppendDelete(b, []byte(id)) }, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		return nil
	})
}

// get appends a region's content (or a range, n >= 0) to dst.
func (c *Conn) get(ctx context.Context, id string, dst []byte, off, n int64, ranged bool) ([]byte, uint64, error) {
	var v uint64
	err := c.do(ctx, retrySafe, func(b []byte) []byte {
		if ranged {
			return proto.AppendGetRange(b, []byte(id), off, n)
		}
		return proto.AppendGet(b, []byte(id))
	}, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyValue {
			return unexpected(rep, "VALUE")
		}
		dst = append(dst, rep.Payload...)
		v = rep.Version
		return nil
	})
	return dst, v, err
}

// set writes p as o says and returns the new version. Every write carries
// this connection's client id and a fresh sequence number, so that a retry
// after a lost reply is applied once.
func (c *Conn) set(ctx context.Context, id string, p []byte, o proto.SetOptions) (uint64, error) {
	var v uint64
	o.ClientID = []byte(c.cid)
	err := c.do(ctx, retryKeyed, func(b []byte) []byte {
		// Numbered on the first attempt, under the lock that sends it, so
		// that the host sees a client's writes in sequence order; retries
		// reuse the number.
		if o.Seq == 0 {
			c.seq++
			o.Seq = c.seq
		}
		return proto.AppendSet(b, []byte(id), p, o)
	}, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		var err error
		v, err = strconv.ParseUint(string(rep.Text), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: SET reply without a version: %q", ErrProtocol, rep.Text)
		}
		return nil
	})
	return v, err
}
