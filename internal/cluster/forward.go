package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// A node's Raft port also takes the node's own requests from other nodes:
// a follower forwards a write to the leader, and asks it for a read index.
// A connection says which it is by its first byte: Raft's transport starts
// every connection with an RPC type (0 to 4), a forwarded request with
// fwdMagic. A forwarding connection then carries requests one after the
// other, each answered before the next is read.
//
// Request: a verb byte, then for every verb but fwdRead a uvarint length
// and a body: an encoded Command (fwdWrite, fwdApply), a membership change
// (members.go: fwdAdd, fwdRemove, fwdLeader) or nothing (fwdStatus).
// Reply: a uvarint (the version, or the read index), for fwdWrite a
// uvarint log index (of the entry that carried the command, 0 if none
// did), then a uvarint proto.Code (0: no error) and a uvarint-length
// message: the error's, or for fwdStatus the node's Status as JSON.
// fwdApply is fwdWrite without the index, still answered for nodes that
// send it.
const (
	fwdMagic  = 'F'
	fwdApply  = 'A'
	fwdRead   = 'R'
	fwdWrite  = 'W'
	fwdAdd    = 'V'
	fwdRemove = 'X'
	fwdLeader = 'L'
	fwdStatus = 'S'
)

// maxAdminBody bounds the body of a forwarded request that is not a
// command (a membership change: two names, an address, a fingerprint).
const maxAdminBody = 4096

// maxReplyMsg bounds a reply's message.
const maxReplyMsg = 1 << 16

// maxForward bounds a forwarded command: the largest region (4 GiB) and
// its header.
const maxForward = 4<<30 + 1024

// fwdTimeout bounds a forwarded request's network I/O (its commit can take
// longer: the leader answers when the entry is applied), and how long the
// leader keeps an idle forwarding connection.
const fwdTimeout = 2 * time.Minute

// mux is the raft.StreamLayer over the node's listener: Raft's connections
// go to Accept, forwarded requests to handle.
type mux struct {
	ln net.Listener
	// client makes the TLS config of a dial to a peer whose pinned
	// fingerprint is want ("" if none is pinned); nil: plain TCP.
	client func(want string) *tls.Config
	handle func(net.Conn)
	raftCh chan net.Conn
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup // the accept loop and every routing goroutine

	// mu protects conns: forwarded connections open now, closed by Close.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// pool holds this node's idle connections to the leader.
	pool fwdPool
}

func newMux(ln net.Listener, client func(string) *tls.Config, handle func(net.Conn)) *mux {
	m := &mux{ln: ln, client: client, handle: handle, raftCh: make(chan net.Conn), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// route reads a connection's first byte and hands it on.
func (m *mux) route(c net.Conn) {
	defer m.wg.Done()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if b[0] == fwdMagic {
		m.mu.Lock()
		select {
		case <-m.done:
			m.mu.Unlock()
			c.Close()
			return
		default:
		}
		m.conns[c] = struct{}{}
		m.mu.Unlock()
		m.handle(c)
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		c.Close()
		return
	}
	select {
	case m.raftCh <- &prefixConn{Conn: c, first: b[0], has: true}:
	case <-m.done:
		c.Close()
	}
}

// Accept implements net.Listener for Raft.
func (m *mux) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftCh:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes forwarded connections and waits for every
// goroutine of the mux.
func (m *mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.pool.close()
		m.mu.Lock()
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return err
}

// Addr implements net.Listener.
func (m *mux) Addr() net.Addr { return m.ln.Addr() }

// Dial implements raft.StreamLayer.
func (m *mux) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.dial(ctx, string(address))
}

// dial connects to another node's Raft port, with TLS if the node has it
// (the handshake done, so that a refused certificate fails here). address
// is as the configuration holds it: with the peer's pinned fingerprint if
// it has one (see pinnedAddress), which the peer must then present.
func (m *mux) dial(ctx context.Context, address string) (net.Conn, error) {
	addr, want := splitPin(address)
	if m.client == nil {
		d := net.Dialer{Timeout: 10 * time.Second}
		return d.DialContext(ctx, "tcp", addr)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: m.client(want)}
	return d.DialContext(ctx, "tcp", addr)
}

// prefixConn gives back the byte route read before the rest.
type prefixConn struct {
	net.Conn
	first byte
	has   bool
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0], p.has = p.first, false
		return 1, nil
	}
	return p.Conn.Read(b)
}

// serveForward answers the requests of one forwarding connection, one
// after the other, until the other node closes it or leaves it idle for
// fwdTimeout: writes, read indexes and membership changes on the leader,
// fwdStatus on any node.
func (n *Node) serveForward(c net.Conn) {
	r := bufio.NewReader(c)
	var out []byte
	for {
		c.SetDeadline(time.Now().Add(fwdTimeout))
		verb, err := r.ReadByte()
		if err != nil {
			return
		}
		var body []byte
		if verb != fwdRead {
			var l uint64
			if l, err = binary.ReadUvarint(r); err != nil {
				return
			}
			limit := uint64(maxAdminBody)
			if verb == fwdApply || verb == fwdWrite {
				limit = maxForward
			}
			if l > limit {
				// The body is not read: the connection cannot go on.
				err = fmt.Errorf("%w: a forwarded request of %d bytes (at most %d)", shmerr.ErrTooLarge, l, limit)
				c.Write(appendReply(nil, verb, 0, 0, "", err))
				return
			}
			body = make([]byte, l)
			if _, err = io.ReadFull(r, body); err != nil {
				return
			}
		}
		var v, idx uint64
		var msg string
		switch verb {
		case fwdApply, fwdWrite:
			var cmd Command
			if cmd, err = Decode(body); err == nil {
				// Never forwarded again: if this node stopped leading, the
				// caller learns it and asks the new leader.
				v, idx, err = n.applyLocal(context.Background(), cmd)
			}
		case fwdRead:
			v, err = n.readIndex()
		case fwdAdd, fwdRemove, fwdLeader:
			err = n.serveChange(verb, body)
		case fwdStatus:
			msg, err = n.statusJSON()
		default:
			err = fmt.Errorf("%w: forwarded verb %q", shmerr.ErrProtocol, verb)
			c.Write(appendReply(nil, verb, 0, 0, "", err))
			return
		}
		out = appendReply(out[:0], verb, v, idx, msg, err)
		c.SetDeadline(time.Now().Add(fwdTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// appendReply appends the reply to a forwarded request: msg is the
// answer's message (fwdStatus), replaced by err's when err is set.
func appendReply(out []byte, verb byte, v, idx uint64, msg string, err error) []byte {
	out = binary.AppendUvarint(out, v)
	if verb == fwdWrite {
		out = binary.AppendUvarint(out, idx)
	}
	code := uint64(0)
	if err != nil {
		code, msg = uint64(proto.CodeOf(err)), err.Error()
	}
	if len(msg) > maxReplyMsg {
		msg = msg[:maxReplyMsg]
	}
	out = binary.AppendUvarint(out, code)
	out = binary.AppendUvarint(out, uint64(len(msg)))
	return append(out, msg...)
}

// forward sends a request to the leader and returns its answer: the
// version (or read index) and, for fwdWrite, the log index of the entry.
func (n *Node) forward(ctx context.Context, verb byte, body []byte) (v, idx uint64, err error) {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	if leaderAddr == "" {
		return 0, 0, fmt.Errorf("%w: no leader is known (an election is under way)", ErrNotLeader)
	}
	if leaderID == raft.ServerID(n.cfg.ID) {
		return 0, 0, fmt.Errorf("%w: this node just stopped leading", ErrNotLeader)
	}
	v, idx, _, err = n.call(ctx, string(leaderAddr), "the leader "+string(leaderID), verb, body)
	return v, idx, err
}

// call sends one request to the node at address (who names it in
// errors) and returns its answer: the number, for fwdWrite the entry's
// index, and the message. It reuses an idle connection to that node when
// there is one.
func (n *Node) call(ctx context.Context, address, who string, verb byte, body []byte) (v, idx uint64, msg string, err error) {
	// The pool keeps connections to the leader; a status request (to any
	// node, now and then) has a connection of its own, so that it does not
	// close the pooled ones as those of a former leader.
	pooled := verb != fwdStatus
	var fc *fwdConn
	if pooled {
		fc, err = n.mux.pool.get(ctx, n.mux, address)
	} else {
		var c net.Conn
		if c, err = n.mux.dial(ctx, address); err == nil {
			fc = &fwdConn{c: c, r: bufio.NewReader(c), addr: address}
		}
	}
	if err != nil {
		if verb == fwdStatus {
			return 0, 0, "", fmt.Errorf("%w: %s: %v", shmerr.ErrUnavailable, who, err)
		}
		return 0, 0, "", fmt.Errorf("%w: forward to %s: %v", ErrNotLeader, who, err)
	}
	ok := false
	defer func() {
		if ok && pooled {
			n.mux.pool.put(fc)
		} else {
			fc.c.Close()
		}
	}()
	deadline := time.Now().Add(fwdTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fc.c.SetDeadline(deadline)
	// A new connection starts with fwdMagic; a reused one is past it.
	var req []byte
	if fc.used.IsZero() {
		req = append(req, fwdMagic)
	}
	req = append(req, verb)
	if verb != fwdRead {
		req = binary.AppendUvarint(req, uint64(len(body)))
	}
	if len(body) <= 64<<10 {
		req = append(req, body...)
		_, err = fc.c.Write(req)
	} else {
		bufs := net.Buffers{req, body}
		_, err = bufs.WriteTo(fc.c)
	}
	if err != nil {
		return 0, 0, "", fmt.Errorf("%w: forward to %s: %v", unknownIfApply(verb), who, err)
	}
	r := fc.r
	v, err1 := binary.ReadUvarint(r)
	var err2 error
	if verb == fwdWrite {
		idx, err2 = binary.ReadUvarint(r)
	}
	code, err3 := binary.ReadUvarint(r)
	l, err4 := binary.ReadUvarint(r)
	if err := errors.Join(err1, err2, err3, err4); err != nil || l > maxReplyMsg {
		return 0, 0, "", fmt.Errorf("%w: %s's answer was lost: %v", unknownIfApply(verb), who, err)
	}
	m := make([]byte, l)
	if _, err := io.ReadFull(r, m); err != nil {
		return 0, 0, "", fmt.Errorf("%w: %s's answer was lost: %v", unknownIfApply(verb), who, err)
	}
	ok = true
	if code != 0 {
		return v, idx, "", &remoteError{kind: proto.Code(code).Err(), msg: who + ": " + string(m)}
	}
	return v, idx, string(m), nil
}

// unknownIfApply: a write or membership change whose answer was lost may
// have committed; a read index or status that was not answered changed
// nothing.
func unknownIfApply(verb byte) error {
	if verb == fwdRead || verb == fwdStatus {
		return shmerr.ErrUnavailable
	}
	return shmerr.ErrUnknownOutcome
}

// remoteError is an error met elsewhere (on the leader, or before a
// snapshot was taken), of a kind of package shmerr.
type remoteError struct {
	kind error
	msg  string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }
