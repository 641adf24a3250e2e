package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// Buffer sizes.
const (
	readBufSize = 64 << 10
	// flushAt bounds the reply bytes held before a flush, so a client that
	// pipelines many large reads does not make the host buffer them all.
	flushAt = 256 << 10
)

// conn is one client connection. Its reading goroutine owns the fields
// up to stopping; the pusher (started by the first WATCH) shares the rest
// under the mutexes.
type conn struct {
	s        *Server
	nc       net.Conn
	p        *proto.Parser
	in       []byte
	r, w     int
	out      []byte
	scratch  []byte
	cur      *host.Region
	label    []byte
	quit     bool
	stopping atomic.Bool
	wdl      time.Time // write deadline last set (under wmu)
	leases   map[string]heldLease

	// wmu serialises writes to the socket: reply batches and event frames
	// never interleave.
	wmu sync.Mutex

	// smu protects watches and pusher.
	smu     sync.Mutex
	watches map[string]*watch
	pusher  bool
	notify  chan struct{} // signalled by hubs; room for one
	done    chan struct{} // closed when the connection ends
}

// watch is one WATCH on a connection.
type watch struct {
	id      string
	sub     *host.Sub
	sent    uint64 // last version sent (or the client's from=)
	hasSent bool
	active  bool // false until the WATCH reply has been flushed
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{
		s:      s,
		nc:     nc,
		p:      proto.NewParser(s.cfg.Limits),
		in:     make([]byte, readBufSize),
		out:    make([]byte, 0, readBufSize),
		label:  []byte("shmgr host for tcp " + nc.RemoteAddr().String()),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// stop makes the connection finish what it has read and close.
func (c *conn) stop() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	defer c.close()
	remote := c.nc.RemoteAddr().String()
	c.s.cfg.Logf("connection from %s", remote)
	defer c.s.cfg.Logf("connection from %s closed", remote)

	cur, err := c.s.h.Default()
	if err != nil {
		c.nc.Write(proto.AppendError(nil, proto.CodeUnavailable, "host is shutting down"))
		return
	}
	c.cur = cur
	c.out = proto.AppendMeta(c.out, c.meta(cur))
	if !c.flush() {
		return
	}
	for {
		for c.r < c.w && !c.quit {
			req, n, err := c.p.Next(c.in[c.r:c.w])
			if n == 0 && err == nil {
				break
			}
			c.r += n
			if err != nil {
				var pe *proto.Error
				if errors.As(err, &pe) {
					c.out = proto.AppendError(c.out, pe.Code, pe.Error())
				} else {
					c.out = proto.AppendError(c.out, proto.CodeBadRequest, err.Error())
				}
				continue
			}
			if req.Cmd != proto.CmdNone {
				c.handle(&req)
			}
			if len(c.out) >= flushAt && !c.flush() {
				return
			}
		}
		if !c.flush() || c.quit || c.stopping.Load() {
			return
		}
		if !c.fill() {
			return
		}
	}
}

// fill reads more bytes, making room for the pending request.
func (c *conn) fill() bool {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	need := int(c.p.Need())
	if need < c.w-c.r+1 {
		need = c.w - c.r + 1
	}
	if c.r > 0 && (c.w == len(c.in) || need > len(c.in)-c.r) {
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
	if need > len(c.in) {
		// A large payload: grow to hold it whole (the parser has already
		// bounded it by the payload limit).
		bigger := make([]byte, need)
		c.w = copy(bigger, c.in[c.r:c.w])
		c.r = 0
		c.in = bigger
	} else if len(c.in) > readBufSize && c.w-c.r <= readBufSize && need <= readBufSize {
		// Shrink back after a large request.
		small := make([]byte, readBufSize)
		c.w = copy(small, c.in[c.r:c.w])
		c.r = 0
		c.in = small
	}
	if d := c.s.cfg.IdleTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	if c.stopping.Load() {
		return false
	}
	n, err := c.nc.Read(c.in[c.w:])
	c.w += n
	if err != nil {
		return n > 0 && !c.stopping.Load()
	}
	return true
}

func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	c.wmu.Lock()
	c.setWriteDeadline()
	_, err := c.nc.Write(c.out)
	c.wmu.Unlock()
	if cap(c.out) > 4*flushAt {
		c.out = make([]byte, 0, readBufSize)
	} else {
		c.out = c.out[:0]
	}
	c.activateWatches()
	return err == nil
}

// setWriteDeadline bounds how long a write may wait for a client that
// does not read. It re-arms the deadline only when half of it has passed,
// so a busy connection does not pay for it on every write. wmu is held.
func (c *conn) setWriteDeadline() {
	d := c.s.cfg.WriteTimeout
	if d <= 0 {
		return
	}
	now := time.Now()
	if c.wdl.Sub(now) < d/2 {
		c.wdl = now.Add(d)
		c.nc.SetWriteDeadline(c.wdl)
	}
}

// close ends the connection, its leases and its watches.
func (c *conn) close() {
	c.nc.Close()
	c.releaseLeases()
	close(c.done)
	c.smu.Lock()
	for _, w := range c.watches {
		w.sub.Close()
	}
	c.watches = nil
	c.smu.Unlock()
}

func (c *conn) handle(req *proto.Request) {
	switch req.Cmd {
	case proto.CmdRead:
		c.refreshCurrent()
		c.read()
	case proto.CmdWrite:
		c.refreshCurrent()
		c.write(c.cur, req, true)
	case proto.CmdPing:
		c.out = proto.AppendPong(c.out)
	case proto.CmdQuit:
		c.out = proto.AppendOK(c.out)
		c.quit = true
	case proto.CmdUse:
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.cur = r
		c.appendJSON(c.meta(r))
	case proto.CmdGet:
		c.get(req)
	case proto.CmdSet:
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.write(r, req, false)
	case proto.CmdInfo:
		if req.ID == nil {
			c.appendJSON(c.hostInfo())
			return
		}
		r, err := c.s.h.GetBytes(req.ID)
		if err != nil {
			c.fail(err)
			return
		}
		c.appendJSON(r.Info())
	case proto.CmdList:
		c.appendJSON(c.s.h.List())
	case proto.CmdCreate:
		c.create(req)
	case proto.CmdDelete:
		if err := c.s.h.Delete(string(req.ID)); err != nil {
			c.fail(err)
			return
		}
		c.out = proto.AppendOK(c.out)
	case proto.CmdAuth:
		// This host runs open: any token is accepted.
		c.out = proto.AppendOK(c.out)
	case proto.CmdWatch:
		c.watch(req)
	case proto.CmdUnwatch:
		c.unwatch(req)
	case proto.CmdLock:
		c.lock(req)
	case proto.CmdRenew:
		c.renew(req)
	case proto.CmdUnlock:
		c.unlock(req)
	default:
		c.out = proto.AppendError(c.out, proto.CodeUnknownCommand, req.Cmd.String()+" is not supported by this host")
	}
}

// refreshCurrent re-resolves the connection's current region by id if it
// was deleted (and perhaps created again) since USE.
func (c *conn) refreshCurrent() {
	if c.cur.Gone() {
		if r, err := c.s.h.Get(c.cur.ID()); err == nil {
			c.cur = r
		}
	}
}

// read answers the documented READ: "OK <content>\n".
func (c *conn) read() {
	start := len(c.out)
	c.out = append(c.out, "OK "...)
	err := c.cur.Do(func(r *region.Region) (err error) {
		c.out, _, err = r.AppendContent(c.out)
		return err
	})
	if err != nil {
		c.out = c.out[:start]
		c.fail(err)
		return
	}
	c.out = append(c.out, '\n')
}

func (c *conn) get(req *proto.Request) {
	hr, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	var v uint64
	err = hr.Do(func(r *region.Region) (err error) {
		if req.HasRange {
			c.scratch, v, err = r.AppendRange(c.scratch[:0], req.Offset, req.Length)
		} else {
			c.scratch, v, err = r.AppendContent(c.scratch[:0])
		}
		return err
	})
	if err != nil {
		c.fail(err)
		return
	}
	c.out = proto.AppendValue(c.out, v, c.scratch)
	if cap(c.scratch) > 4*flushAt {
		c.scratch = nil
	}
}

// write serves WRITE (compat: bare OK) and SET (OK <version>). A SET with
// an idempotency key (cid, seq) is applied at most once: a retry gets the
// first answer again.
func (c *conn) write(hr *host.Region, req *proto.Request, compat bool) {
	if req.ClientID != nil {
		w := c.s.dedup.client(req.ClientID)
		w.mu.Lock()
		defer w.mu.Unlock()
		if o, known, tooOld := w.lookup(req.Seq); known {
			if o.code != proto.CodeUnknown {
				c.out = proto.AppendError(c.out, o.code, o.msg)
			} else {
				c.out = proto.AppendOKVersion(c.out, o.version)
			}
			return
		} else if tooOld {
			c.out = proto.AppendError(c.out, proto.CodeUnknownOutcome, fmt.Sprintf(
				"seq %d of client %s is older than its last %d writes: the host cannot tell whether it was applied", req.Seq, w.id, dedupWindow))
			return
		}
		v, err := c.apply(hr, req)
		o := outcome{seq: req.Seq, version: v}
		if err != nil {
			o.code, o.msg = classify(err)
			c.out = proto.AppendError(c.out, o.code, o.msg)
		} else {
			c.out = proto.AppendOKVersion(c.out, v)
		}
		w.record(o)
		return
	}
	v, err := c.apply(hr, req)
	if err != nil {
		c.fail(err)
		return
	}
	if compat {
		c.out = proto.AppendOK(c.out)
		return
	}
	c.out = proto.AppendOKVersion(c.out, v)
}

// apply performs a WRITE or SET on the region.
func (c *conn) apply(hr *host.Region, req *proto.Request) (uint64, error) {
	o := region.WriteOptions{Timeout: c.s.cfg.LockTimeout, Label: c.label, Conditional: req.HasIfVer, IfVersion: req.IfVersion}
	if req.HasFence {
		l, ok := c.leases[string(req.ID)]
		if !ok || l.token != req.Fence || l.hr != hr {
			return 0, fmt.Errorf("%w: this connection holds no lock on %q with token %d", region.ErrFenced, req.ID, req.Fence)
		}
		o.Fenced, o.Fence = true, req.Fence
	}
	var v uint64
	err := hr.Do(func(r *region.Region) (err error) {
		if req.HasAt {
			v, err = r.WriteAt(req.Offset, req.Payload, o)
		} else {
			v, err = r.Write(req.Payload, o)
		}
		return err
	})
	return v, err
}

func (c *conn) create(req *proto.Request) {
	o := host.CreateOptions{Size: req.Size, Durable: req.Durable}
	if req.Layout != nil {
		l, err := region.ParseLayout(string(req.Layout))
		if err != nil {
			c.out = proto.AppendError(c.out, proto.CodeBadRequest, err.Error())
			return
		}
		o.Layout = l
	}
	r, err := c.s.h.Create(string(req.ID), o)
	if err != nil {
		c.fail(err)
		return
	}
	c.appendJSON(r.Info())
}

func (c *conn) appendJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.out = proto.AppendError(c.out, proto.CodeInternal, err.Error())
		return
	}
	c.out = proto.AppendJSON(c.out, b)
}

// meta builds the metadata of a region, as sent first on a connection and
// in USE replies.
func (c *conn) meta(r *host.Region) proto.Meta {
	in := r.Info()
	return proto.Meta{
		Proto: "shmgr/1", Server: c.s.cfg.ServerName, HostID: in.HostID,
		ShmID: in.ShmID, Size: in.Size, Layout: in.Layout,
		LockOffset: in.LockOffset, LenOffset: in.LenOffset, DataOffset: in.DataOffset, MaxDataSize: in.MaxDataSize,
		Version: in.Version, OSName: in.OSName, CtlName: in.CtlName, OSKind: in.OSKind,
		Nonce: in.Nonce, Durable: in.Durable, Created: in.Created, Auth: "none", Session: c.s.session,
	}
}

// HostInfo is the JSON of INFO without an id.
type HostInfo struct {
	Server      string    `json:"server"`
	Proto       string    `json:"proto"`
	HostID      string    `json:"host_id"`
	PID         int       `json:"pid"`
	Default     string    `json:"default"`
	Regions     int       `json:"regions"`
	Connections int       `json:"connections"`
	Accepted    uint64    `json:"accepted"`
	Started     time.Time `json:"started"`
	Auth        string    `json:"auth"`
	MaxLine     int       `json:"max_line"`
	MaxPayload  int64     `json:"max_payload"`
	LockTimeout string    `json:"lock_timeout"`
}

func (c *conn) hostInfo() HostInfo {
	lt := c.s.cfg.LockTimeout
	if lt <= 0 {
		lt = region.DefaultTimeout
	}
	return HostInfo{
		Server: c.s.cfg.ServerName, Proto: "shmgr/1", HostID: c.s.h.HostID(), PID: os.Getpid(),
		Default: c.s.h.DefaultID(), Regions: len(c.s.h.List()), Connections: c.s.Connections(),
		Accepted: c.s.accepted.Load(), Started: c.s.started.UTC().Truncate(time.Second), Auth: "none",
		MaxLine: c.s.cfg.Limits.MaxLine, MaxPayload: c.s.cfg.Limits.MaxPayload, LockTimeout: lt.String(),
	}
}

// fail answers with the error's code and message.
func (c *conn) fail(err error) {
	code, msg := classify(err)
	c.out = proto.AppendError(c.out, code, msg)
}

// classify maps an error to its wire code and message. A conflict's
// message starts with the region's current version, so clients can read it.
func classify(err error) (proto.Code, string) {
	var ce *region.ConflictError
	switch {
	case errors.As(err, &ce):
		return proto.CodeConflict, strconv.FormatUint(ce.Current, 10) + " " + ce.Error()
	case errors.Is(err, region.ErrTooLarge):
		return proto.CodeTooLarge, err.Error()
	case errors.Is(err, region.ErrInvalidUTF8):
		return proto.CodeInvalidUTF8, err.Error()
	case errors.Is(err, region.ErrLockTimeout):
		return proto.CodeLockTimeout, err.Error()
	case errors.Is(err, region.ErrOutOfRange):
		return proto.CodeOutOfRange, err.Error()
	case errors.Is(err, region.ErrBadSize):
		return proto.CodeBadRequest, err.Error()
	case errors.Is(err, host.ErrNotFound):
		return proto.CodeNotFound, err.Error()
	case errors.Is(err, host.ErrExists):
		return proto.CodeExists, err.Error()
	case errors.Is(err, host.ErrBadID):
		return proto.CodeBadID, err.Error()
	case errors.Is(err, host.ErrForbidden):
		return proto.CodeForbidden, err.Error()
	case errors.Is(err, host.ErrNoSpace):
		return proto.CodeLimit, err.Error()
	case errors.Is(err, host.ErrClosed):
		return proto.CodeUnavailable, "host is shutting down"
	case errors.Is(err, region.ErrFenced):
		return proto.CodeFenced, err.Error()
	}
	return proto.CodeInternal, fmt.Sprint(err)
}
