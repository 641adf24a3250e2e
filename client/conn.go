package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
)

// Conn is a TCP connection to a host. It is safe for concurrent use;
// requests take turns. When the connection drops, the next request
// re-dials (with exponential backoff and jitter, within its context) and
// requests that are safe to repeat are retried: reads, and writes, which
// carry an idempotency key the host uses to apply each write once.
type Conn struct {
	addrs []string     // the hosts to try, in turn (Options.Hosts)
	at    atomic.Int32 // index in addrs of the host connected (or last tried)
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
	// hostGen counts changes of host (another data directory answered
	// after a reconnection to the next of addrs): a mapping of the
	// previous host's objects is stale and is mapped again (see acquire).
	// identity is the host last connected to (under mu).
	hostGen  atomic.Uint64
	identity string
	// replicated is set when the host is a cluster node: its regions
	// change only through the cluster's log, so a mapped region's writes
	// go to the host over TCP (reads stay on the mapping). An atomic for
	// the reason grant is.
	replicated atomic.Bool
	// mon is the liveness check of the host while a mapped region is
	// open (see hostcheck.go).
	mon monitor
	// watched is the cancellable context whose cancellation interrupts
	// I/O, and unwatch stops that; live is the current connection, for the
	// cancellation callback.
	cancelMu sync.Mutex // protects watched, unwatch and gen (see applyContext)
	watched  context.Context
	unwatch  func() bool
	gen      uint64
	live     atomic.Pointer[net.Conn]
}

// Connect dials a host at addr ("host:port"; a missing port means
// DefaultPort) and reads its metadata line. addr may list several hosts
// of one cluster, separated by commas (and Options.Hosts adds more): they
// are tried in turn. It does not retry: when no host can be reached now
// it is an error at once.
func Connect(ctx context.Context, addr string, o Options) (*Conn, error) {
	o = o.withDefaults()
	c := &Conn{addrs: hostList(addr, o.Hosts), opts: o, cid: newClientID()}
	if err := c.dialFirst(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func newClientID() string {
	var b [8]byte
	rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:])
}

// Addr returns the address of the host connected to (with several hosts,
// the one connected to last, or being tried).
func (c *Conn) Addr() string { return c.addrs[c.at.Load()] }

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
