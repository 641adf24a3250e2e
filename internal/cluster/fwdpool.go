package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// A follower keeps its forwarding connections to the leader open and
// reuses them, one request at a time each: a new connection per write
// (a TCP handshake, and a TLS one with mutual authentication) cost more
// than the write's own round trip. Concurrent writers each take an idle
// connection or open one, so their commands reach the leader at once and
// share its Raft appends (Raft puts the entries waiting to be appended in
// one batch and one fsync).
const (
	// fwdIdle is how long a forwarding connection may sit idle before the
	// follower stops reusing it; well below fwdTimeout, after which the
	// leader drops it, so that a reused connection is never one the
	// leader is about to close.
	fwdIdle = 30 * time.Second
	// fwdPoolMax bounds the idle connections kept per node.
	fwdPoolMax = 64
)

// fwdConn is one forwarding connection to a leader.
type fwdConn struct {
	c    net.Conn
	r    *bufio.Reader
	addr string
	used time.Time // when its last request ended
}

// fwdPool holds idle forwarding connections to the leader.
type fwdPool struct {
	// mu protects idle and closed.
	mu     sync.Mutex
	idle   []*fwdConn // most recently used last
	closed bool
}

// get returns a connection to addr: an idle one that is still open, or a
// new one.
func (p *fwdPool) get(ctx context.Context, m *mux, addr string) (*fwdConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		var drop []*fwdConn
		var fc *fwdConn
		// The most recently used first; those to another address (a
		// former leader) or idle too long are closed on the way.
		for len(p.idle) > 0 {
			last := p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			if last.addr == addr && now.Sub(last.used) < fwdIdle {
				fc = last
				break
			}
			drop = append(drop, last)
		}
		p.mu.Unlock()
		for _, c := range drop {
			c.c.Close()
		}
		if fc == nil {
			break
		}
		if alive(fc.c) {
			return fc, nil
		}
		fc.c.Close()
	}
	c, err := m.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &fwdConn{c: c, r: bufio.NewReader(c), addr: addr}, nil
}

// put gives back a connection whose request ended cleanly.
func (p *fwdPool) put(fc *fwdConn) {
	fc.used = time.Now()
	fc.c.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed || len(p.idle) >= fwdPoolMax {
		p.mu.Unlock()
		fc.c.Close()
		return
	}
	p.idle = append(p.idle, fc)
	p.mu.Unlock()
}

// close closes every idle connection; put closes the others as they come
// back.
func (p *fwdPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.c.Close()
	}
}

// alive says whether an idle connection is still open: its peer sends
// nothing on an idle connection (a request is answered before the
// connection goes idle), so finding it closed means the leader stopped or
// restarted. Without this check a write sent on it would end in
// ErrUnknownOutcome although it never reached a running leader. A peek at
// the socket (peek, per platform) says so without waiting; a TLS
// connection with bytes pending (a session ticket, or a close_notify
// alert) is asked through TLS with a short deadline.
func alive(c net.Conn) bool {
	raw := c
	tc, isTLS := c.(*tls.Conn)
	if isTLS {
		raw = tc.NetConn()
	}
	switch peek(raw) {
	case peekEmpty:
		return true
	case peekClosed:
		return false
	case peekData:
		if !isTLS {
			return false // bytes nobody asked for: not a connection to reuse
		}
	}
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	n, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	return n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// What peek found on a socket.
const (
	peekEmpty   = iota // open, nothing to read
	peekClosed         // the peer closed it (or it failed)
	peekData           // bytes to read
	peekUnknown        // this platform cannot peek
)
