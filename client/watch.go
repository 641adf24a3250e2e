package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// Event is one committed state of a watched region.
type Event struct {
	// Version is the region's version.
	Version uint64
	// Content is the region's content at that version. It belongs to the
	// caller.
	Content []byte
	// Skipped counts the versions committed since the previous event that
	// were not delivered: a watcher that falls behind gets the latest state,
	// not every intermediate one.
	Skipped uint64
}

// WatchOptions tune Watch.
type WatchOptions struct {
	// From, with HasFrom, delivers only versions after From (for example
	// the last version the caller saw). Without it the first event is the
	// current state.
	From    uint64
	HasFrom bool
}

// Watcher delivers a region's changes as they commit: pushed by the host
// over TCP, or, for a locally mapped region, woken by the kernel (a futex
// on Linux) the moment a writer in any process commits. A remote watcher
// reconnects by itself, with backoff and jitter, and resumes from the last
// version it received, so a watch is never left silently dead: Next keeps
// delivering, or returns the error that ended it. A Watcher is safe for
// concurrent use, but events are delivered once, to whichever caller of
// Next takes them.
type Watcher struct {
	r     *Region
	opts  Options
	state atomic.Int32

	// mu protects the fields below.
	mu          sync.Mutex
	pending     *Event // received, not yet delivered (remote)
	received    uint64 // highest version received (remote)
	hasReceived bool
	// base is the content at baseVersion, the last frame received
	// (remote): DELTA frames apply to it, and a pending event's content
	// is copied from it when delivered.
	base         []byte
	baseVersion  uint64
	hasBase      bool
	delivered    uint64
	hasDelivered bool
	err          error // what ended the watch

	signal chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Watch starts watching the region. ctx bounds only the start; Close ends
// the watch.
func (r *Region) Watch(ctx context.Context, o WatchOptions) (*Watcher, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	w := &Watcher{r: r, opts: r.conn.opts, signal: make(chan struct{}, 1), done: make(chan struct{})}
	if o.HasFrom {
		w.received, w.hasReceived = o.From, true
		w.delivered, w.hasDelivered = o.From, true
	}
	if r.mode == ModeLocal {
		close(w.done)
		w.setState(StateConnected)
		return w, nil
	}
	// The first connection is made now, so that a wrong address or shm_id
	// is an error here rather than a silent retry loop.
	c, err := w.subscribe(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(bg, c)
	return w, nil
}

func (w *Watcher) setState(s State) {
	if State(w.state.Swap(int32(s))) != s && w.opts.OnState != nil {
		w.opts.OnState(s)
	}
}

// State returns the watcher's connection state. A watcher of a mapped
// region needs no connection of its own: it reports its Conn's state
// (StateUnreachable while the host is down; the watch goes on, woken by
// the region's writers).
func (w *Watcher) State() State {
	s := State(w.state.Load())
	if w.r.mode == ModeLocal && s == StateConnected {
		return w.r.conn.State()
	}
	return s
}

// Close ends the watch.
func (w *Watcher) Close() error {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	w.mu.Lock()
	if w.err == nil {
		w.err = ErrClosed
	}
	w.mu.Unlock()
	w.setState(StateClosed)
	select {
	case w.signal <- struct{}{}:
	default:
	}
	return nil
}

// All returns an iterator over the watcher's events; it stops at the first
// error, which it yields.
func (w *Watcher) All(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := w.Next(ctx)
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Next blocks until the region has a version newer than the last one
// delivered, and returns it.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	if w.r.mode == ModeLocal {
		return w.nextLocal(ctx)
	}
	for {
		w.mu.Lock()
		if ev := w.pending; ev != nil {
			w.pending = nil
			ev.Content = bytes.Clone(w.base)
			if ev.Content == nil {
				ev.Content = []byte{}
			}
			w.deliver(ev)
			w.mu.Unlock()
			return *ev, nil
		}
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-w.signal:
		}
	}
}

// deliver fills in Skipped and records ev as delivered. w.mu is held.
func (w *Watcher) deliver(ev *Event) {
	if w.hasDelivered && ev.Version > w.delivered+1 {
		ev.Skipped = ev.Version - w.delivered - 1
	}
	w.delivered, w.hasDelivered = ev.Version, true
}

// localWait bounds one sleep on the watch word, so that ctx and Close are
// noticed; commits wake the sleeper at once.
const localWait = 100 * time.Millisecond

func (w *Watcher) nextLocal(ctx context.Context) (Event, error) {
	for {
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		m, err := w.r.acquire(ctx)
		if err != nil {
			return Event{}, err
		}
		ev, ok, err := w.pollLocal(ctx, m.r)
		m.release()
		if err != nil || ok {
			return ev, err
		}
	}
}

// pollLocal delivers the region's state if it is newer than the last one
// delivered, or sleeps until the next commit (at most localWait).
func (w *Watcher) pollLocal(ctx context.Context, l *region.Region) (Event, bool, error) {
	{
		seq := l.WatchSeq()
		w.mu.Lock()
		newer := !w.hasDelivered || l.Version() > w.delivered
		w.mu.Unlock()
		if newer {
			b, v, err := l.AppendContent(nil)
			if err != nil {
				return Event{}, false, err
			}
			ev := Event{Version: v, Content: b}
			w.mu.Lock()
			if !w.hasDelivered || v > w.delivered {
				w.deliver(&ev)
				w.mu.Unlock()
				return ev, true, nil
			}
			w.mu.Unlock()
		}
		if err := ctx.Err(); err != nil {
			return Event{}, false, err
		}
		wait := localWait
		if dl, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(dl)), 0)
		}
		l.WaitChange(seq, wait)
		return Event{}, false, nil
	}
}

// subscribe connects and sends WATCH, resuming after the last version
// received.
func (w *Watcher) subscribe(ctx context.Context) (*Conn, error) {
	// The watcher reports its own state: the connections it makes and
	// drops along the way must not report theirs.
	o := w.opts
	o.OnState = nil
	// The host the Region's Conn uses now first, then the others.
	o.Hosts = nil
	c, err := Connect(ctx, w.r.conn.fromCurrent(), o)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w.mu.Lock()
	o2 := proto.WatchOptions{HasFrom: w.hasReceived, From: w.received, Delta: c.delta}
	if c.delta {
		// Deltas apply to the content of the version the host resumes
		// from: resume from the last frame's, or, holding none, take the
		// current state in full first (not delivered if it is not newer).
		o2.HasFrom, o2.From = w.hasBase, w.baseVersion
	}
	w.mu.Unlock()
	err = c.roundTrip(ctx, func(b []byte) []byte { return proto.AppendWatch(b, []byte(w.r.id), o2) }, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		return nil
	})
	if err != nil {
		c.nc.Close()
		return nil, fmt.Errorf("watch %q: %w", w.r.id, err)
	}
	w.setState(StateConnected)
	return c, nil
}

// run reads events, and reconnects when the connection fails, until ctx
// ends or the region is gone.
func (w *Watcher) run(ctx context.Context, c *Conn) {
	defer close(w.done)
	backoff := 20 * time.Millisecond
	for {
		err := w.read(ctx, c)
		c.Close()
		if ctx.Err() != nil {
			return
		}
		w.setState(StateReconnecting)
		for {
			if ctx.Err() != nil {
				return
			}
			d := backoff/2 + time.Duration(mrand.Int64N(int64(backoff)))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, w.opts.MaxBackoff)
			c, err = w.subscribe(ctx)
			if err == nil {
				backoff = 20 * time.Millisecond
				break
			}
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) {
				// The region is gone: the watch cannot go on.
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				w.setState(StateClosed)
				select {
				case w.signal <- struct{}{}:
				default:
				}
				return
			}
		}
	}
}

// read receives frames until the connection fails. A silent connection
// gets a PING after KeepAlive; if the next KeepAlive passes in silence too,
// the connection is declared dead.
func (w *Watcher) read(ctx context.Context, c *Conn) error {
	nc := c.nc // Close may clear c.nc while the callback runs
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	pinged := false
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.nc.SetDeadline(time.Now().Add(w.opts.KeepAlive))
		for c.r < c.w {
			rep, n, err := c.rp.Next(c.in[c.r:c.w])
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			c.r += n
			pinged = false
			if rep.Kind == proto.ReplyEvent || rep.Kind == proto.ReplyDelta {
				if err := w.receive(rep); err != nil {
					return fmt.Errorf("host %s: %w", c.Addr(), err)
				}
			}
		}
		err := c.fill()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			if pinged {
				return fmt.Errorf("host %s silent for %v: connection presumed dead", c.Addr(), 2*w.opts.KeepAlive)
			}
			c.nc.SetDeadline(time.Now().Add(w.opts.KeepAlive))
			if _, err := c.nc.Write(proto.AppendPing(nil)); err != nil {
				return err
			}
			pinged = true
			continue
		}
		if err != nil {
			return err
		}
	}
}

// receive records a pushed EVENT or DELTA (coalescing with any event not
// yet delivered). A DELTA that does not fit the last content is an error:
// the watch reconnects and starts again from a full EVENT.
func (w *Watcher) receive(rep proto.Reply) error {
	w.mu.Lock()
	if rep.Kind == proto.ReplyDelta {
		if !w.hasBase {
			w.mu.Unlock()
			return fmt.Errorf("%w: DELTA before any EVENT", ErrProtocol)
		}
		b, err := proto.ApplyDeltaTo(w.base, rep.Size, rep.Offset, rep.Payload)
		if err != nil {
			w.hasBase = false
			w.mu.Unlock()
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		w.base = b
	} else {
		w.base = append(w.base[:0], rep.Payload...)
	}
	w.baseVersion, w.hasBase = rep.Version, true
	if !w.hasReceived || rep.Version > w.received {
		w.received, w.hasReceived = rep.Version, true
		w.pending = &Event{Version: rep.Version}
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
	return nil
}
