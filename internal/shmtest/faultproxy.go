package shmtest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// Direction is one way through a FaultProxy.
type Direction int

// Directions.
const (
	// ToHost is the client→host direction: requests.
	ToHost Direction = iota
	// ToClient is the host→client direction: the metadata line, replies
	// and events.
	ToClient
)

func (d Direction) String() string {
	if d == ToHost {
		return "client→host"
	}
	return "host→client"
}

// FaultProxy is a TCP proxy on loopback in front of a host, for tests of
// network faults. Each connection made to Addr is relayed to the host over
// a connection of its own (a link); faults, set at any time, apply to the
// bytes that cross the links afterwards, per direction:
//
//   - Blackhole drops them silently while the connection stays open (a
//     partition, or a half-open connection);
//   - Delay holds every chunk for a while before passing it on;
//   - CutAfter lets a number of bytes through, then closes the link that
//     carries the next one (mid-frame, if the count says so);
//   - DuplicateNext writes the next chunk twice (a request frame arrives
//     twice);
//   - Reset closes every link now.
//
// Links made after a cut go through normally, with the faults then set.
// Bytes are relayed in chunks as they are read, in order; a chunk is what
// one read returned, so a small frame written at once is one chunk.
//
// A FaultProxy is safe for concurrent use. It owns every goroutine it
// starts; Close ends them all and waits for them.
type FaultProxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // ends at Close: cancels dials to the host
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every link's goroutines

	// mu protects everything below.
	mu       sync.Mutex
	faults   [2]faults
	links    map[*link]struct{}
	resets   uint64 // Reset calls: a link accepted before one is cut
	accepted int
	closed   bool
	relayed  [2]int64 // bytes written on, per direction
}

// faults are the faults of one direction.
type faults struct {
	blackhole bool
	delay     time.Duration
	cutAfter  int64 // bytes still let through before a cut; -1: none armed
	duplicate bool
}

var noFaults = faults{cutAfter: -1}

// link is one relayed connection: the client's side and the host's.
type link struct {
	client, host net.Conn
	once         sync.Once
	done         chan struct{} // closed by cut
}

// cut closes both sides of the link.
func (l *link) cut() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.host.Close()
	})
}

// StartFaultProxy starts a proxy on 127.0.0.1:0 in front of target, which
// must be a loopback address, with no faults set. It is closed when the
// test ends.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatalf("StartFaultProxy(%q): %v", target, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Fatalf("StartFaultProxy(%q): the target must be a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("StartFaultProxy(%q): %v", target, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &FaultProxy{target: target, ln: ln, ctx: ctx, cancel: cancel, links: map[*link]struct{}{}}
	p.faults[ToHost], p.faults[ToClient] = noFaults, noFaults
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr returns the address clients dial instead of the host's.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// Relayed returns how many bytes the proxy has passed on in direction d,
// over all links.
func (p *FaultProxy) Relayed(d Direction) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relayed[d]
}

// Accepted returns how many links the proxy has made so far (connections
// relayed to the host): a client that reconnects makes a new one.
func (p *FaultProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Blackhole starts (on) or stops dropping every byte sent in direction d.
// The connections stay open: their peers notice nothing but silence.
// Dropped bytes are gone for good, so a link that carried traffic while
// blackholed has a hole in its stream; Reset it after lifting the fault.
func (p *FaultProxy) Blackhole(d Direction, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[d].blackhole = on
}

// Delay holds each chunk sent in direction d for delay before passing it
// on (0: no delay). Chunks keep their order, so a busy direction slows to
// one chunk per delay.
func (p *FaultProxy) Delay(d Direction, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[d].delay = delay
}

// CutAfter lets n more bytes through in direction d (on whatever links
// carry them), then closes the link on which the next byte arrives,
// without passing that byte on. The fault then clears. CutAfter(d, 0)
// cuts the link that next sends anything in direction d.
func (p *FaultProxy) CutAfter(d Direction, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[d].cutAfter = max(n, 0)
}

// DuplicateNext writes the next chunk sent in direction d twice. The
// fault then clears.
func (p *FaultProxy) DuplicateNext(d Direction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[d].duplicate = true
}

// Heal clears every fault in both directions. Links stay as they are.
func (p *FaultProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[ToHost], p.faults[ToClient] = noFaults, noFaults
}

// Reset closes every link now, including those still connecting to the
// host. Faults stay as they are set.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	p.resets++
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.cut()
	}
}

// Close stops accepting, closes every link and waits for the proxy's
// goroutines to end. It is called when the test ends; calling it again
// does nothing.
func (p *FaultProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	p.Reset()
	p.wg.Wait()
	return err
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed; on loopback nothing else is expected
		}
		p.mu.Lock()
		epoch := p.resets
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, epoch)
	}
}

// serve relays one client connection, accepted when p.resets was epoch,
// until either side closes or the link is cut.
func (p *FaultProxy) serve(c net.Conn, epoch uint64) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 5 * time.Second}
	h, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		c.Close() // the host is down: the client sees the connection close
		return
	}
	l := &link{client: c, host: h, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.resets != epoch {
		p.mu.Unlock()
		l.cut()
		return
	}
	p.links[l] = struct{}{}
	p.accepted++
	p.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Go(func() { p.pump(l, ToClient) })
	p.pump(l, ToHost)
	pumps.Wait()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pump relays direction d of link l until it fails, then cuts the link.
func (p *FaultProxy) pump(l *link, d Direction) {
	defer l.cut()
	src, dst := l.client, l.host
	if d == ToClient {
		src, dst = l.host, l.client
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.forward(l, d, dst, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// forward applies d's faults to one chunk and writes what passes to dst.
// It reports whether the link is still up.
func (p *FaultProxy) forward(l *link, d Direction, dst net.Conn, b []byte) bool {
	p.mu.Lock()
	f := &p.faults[d]
	if f.blackhole {
		p.mu.Unlock()
		return true
	}
	delay, copies, cut := f.delay, 1, false
	if f.cutAfter >= 0 {
		if int64(len(b)) > f.cutAfter {
			b, cut = b[:f.cutAfter], true
			f.cutAfter = -1
		} else {
			f.cutAfter -= int64(len(b))
		}
	}
	if f.duplicate && !cut {
		copies, f.duplicate = 2, false
	}
	p.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return false
		}
	}
	for range copies {
		if len(b) == 0 {
			break
		}
		n, err := dst.Write(b)
		p.mu.Lock()
		p.relayed[d] += int64(n)
		p.mu.Unlock()
		if err != nil {
			return false
		}
	}
	if cut {
		l.cut()
		return false
	}
	return true
}
