package client

import (
	"context"
	"sync"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
)

// A Conn whose region is mapped (ModeLocal) sends the host nothing while
// the program reads and writes: every access goes through the mapping. So
// that its state still tells the truth about the host, a background check
// runs while such a region is open. Once a second it peeks at the socket
// (one non-blocking system call, no traffic: a host that stopped or died
// has closed it), and after KeepAlive of silence it sends PING (a host that
// hangs answers nothing). When the connection is found dead it re-dials
// once per check: StateUnreachable while that fails, StateConnected again
// when it works. The check never holds up the mapping: it takes the Conn's
// lock only when no request holds it (a request in flight finds out for
// itself), and local reads and writes do not take that lock.

// hostCheckEvery is how often the check runs: a stopped host is noticed
// within about this long.
const hostCheckEvery = time.Second

// hostCheckDial bounds one re-dial by the check, so that Close (which
// waits for the check) is never held up for long.
const hostCheckDial = 2 * time.Second

// monitor runs the check while mapped regions are open.
type monitor struct {
	// mu protects the fields below.
	mu     sync.Mutex
	refs   int // mapped regions open
	closed bool
	cancel context.CancelFunc
	done   chan struct{}
}

// holdMonitor counts one more mapped region, starting the check with the
// first.
func (c *Conn) holdMonitor() {
	m := &c.mon
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refs++
	if m.refs != 1 || m.closed || m.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go c.runMonitor(ctx, m.done)
}

// releaseMonitor counts one mapped region fewer, stopping the check with
// the last.
func (c *Conn) releaseMonitor() {
	m := &c.mon
	m.mu.Lock()
	m.refs--
	if m.refs > 0 {
		m.mu.Unlock()
		return
	}
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// stop ends the check for good (Conn.Close) and waits for it.
func (m *monitor) stop() {
	m.mu.Lock()
	m.closed = true
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (c *Conn) runMonitor(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(hostCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.checkHost(ctx)
	}
}

// checkHost is one check: see the comment at the top of this file.
func (c *Conn) checkHost(ctx context.Context) {
	if !c.mu.TryLock() {
		return // a request is using the connection: it notices a failure itself
	}
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.nc != nil {
		c.probe()
	}
	if c.nc != nil && time.Since(c.lastIO) >= c.opts.KeepAlive {
		pctx, cancel := context.WithTimeout(ctx, c.opts.KeepAlive)
		err := c.roundTrip(pctx, proto.AppendPing, func(rep proto.Reply) error {
			if rep.Kind != proto.ReplyPong {
				return unexpected(rep, "PONG")
			}
			return nil
		})
		cancel()
		if _, ok := err.(*transportError); ok {
			c.drop()
		} else {
			c.lastIO = time.Now()
		}
	}
	if c.nc == nil {
		dctx, cancel := context.WithTimeout(ctx, min(c.opts.DialTimeout, hostCheckDial))
		err := c.dialRound(dctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return // stopping
			}
			c.lastErr = err
			c.setState(StateUnreachable)
			return
		}
		c.lastIO = time.Now()
	}
}
