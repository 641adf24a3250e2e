package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
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
}

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{Mode: ModeAuto, DialTimeout: 5 * time.Second, RequestTimeout: 30 * time.Second, LockTimeout: 5 * time.Second}
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
	return o
}

// Info describes a region, as the host reports it. It never holds an
// address: outside the host a region is named only by its shm_id.
type Info struct {
	ShmID       string    `json:"shm_id"`
	Size        int64     `json:"size"`
	Layout      string    `json:"layout"`
	LockOffset  int64     `json:"lock_offset"`
	LenOffset   int64     `json:"len_offset"`
	DataOffset  int64     `json:"data_offset"`
	MaxDataSize int64     `json:"max_data_size"`
	Version     uint64    `json:"version"`
	OSName      string    `json:"os_name"`
	CtlName     string    `json:"ctl_name"`
	OSKind      string    `json:"os_kind"`
	Nonce       string    `json:"nonce"`
	Durable     bool      `json:"durable"`
	Created     time.Time `json:"created"`
	HostID      string    `json:"host_id"`
	Locked      bool      `json:"locked"`
	LockPID     uint32    `json:"lock_pid,omitempty"`
	LockOwner   string    `json:"lock_owner,omitempty"`
}

// HostInfo describes a host.
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
}

// Conn is a TCP connection to a host. It is safe for concurrent use;
// requests take turns.
type Conn struct {
	addr string
	opts Options
	meta Info
	srv  string

	// mu serialises requests and protects everything below.
	mu     sync.Mutex
	nc     net.Conn
	rp     *proto.ReplyParser
	in     []byte
	r, w   int
	out    []byte
	broken error
	closed bool
}

// Connect dials a host at addr ("host:port"; a missing port means
// DefaultPort) and reads its metadata line.
func Connect(ctx context.Context, addr string, o Options) (*Conn, error) {
	o = o.withDefaults()
	addr = withPort(addr)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.DialTimeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to host %s: %w", addr, err)
	}
	c := &Conn{addr: addr, opts: o, nc: nc, rp: proto.NewReplyParser(proto.DefaultMaxLine*16, proto.DefaultMaxPayload), in: make([]byte, 64<<10)}
	stop := c.watch(ctx)
	line, err := c.readLine()
	stop()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to host %s: reading metadata line: %w", addr, ctxErr(ctx, err))
	}
	m, err := proto.ParseMeta(line)
	if err != nil {
		nc.Close()
		if bytes.HasPrefix(line, []byte("ERROR ")) {
			return nil, fmt.Errorf("connect to host %s: host refused: %s", addr, bytes.TrimSpace(line[6:]))
		}
		return nil, fmt.Errorf("connect to host %s: not a shmgr host? %w: %w", addr, ErrProtocol, err)
	}
	c.meta = infoFromMeta(m)
	c.srv = m.Server
	return c, nil
}

func withPort(addr string) string {
	if addr == "" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultPort))
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return net.JoinHostPort(addr, strconv.Itoa(DefaultPort))
	}
	return addr
}

func infoFromMeta(m proto.Meta) Info {
	return Info{
		ShmID: m.ShmID, Size: m.Size, Layout: m.Layout, LockOffset: m.LockOffset, LenOffset: m.LenOffset,
		DataOffset: m.DataOffset, MaxDataSize: m.MaxDataSize, Version: m.Version, OSName: m.OSName,
		CtlName: m.CtlName, OSKind: m.OSKind, Nonce: m.Nonce, Durable: m.Durable, Created: m.Created, HostID: m.HostID,
	}
}

// Addr returns the host's address.
func (c *Conn) Addr() string { return c.addr }

// Default returns the info of the host's default region, from the
// metadata line it sent on connect.
func (c *Conn) Default() Info { return c.meta }

// Server returns the host's software name and version.
func (c *Conn) Server() string { return c.srv }

// Close closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.nc.Close()
}

// watch applies ctx to the connection until the returned stop is called.
func (c *Conn) watch(ctx context.Context) (stop func()) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.opts.RequestTimeout)
	}
	c.nc.SetDeadline(dl)
	if ctx.Done() == nil {
		return func() {}
	}
	s := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	return func() { s() }
}

func ctxErr(ctx context.Context, err error) error {
	if ce := ctx.Err(); ce != nil {
		return ce
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

// do sends one request (already encoded by enc into the out buffer) and
// reads its reply; fn sees the reply while the buffer is valid.
func (c *Conn) do(ctx context.Context, enc func([]byte) []byte, fn func(proto.Reply) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	stop := c.watch(ctx)
	defer stop()
	c.out = enc(c.out[:0])
	if _, err := c.nc.Write(c.out); err != nil {
		c.broken = ctxErr(ctx, err)
		return fmt.Errorf("host %s: %w", c.addr, c.broken)
	}
	if cap(c.out) > 1<<20 {
		c.out = nil
	}
	for {
		if c.r < c.w {
			rep, n, err := c.rp.Next(c.in[c.r:c.w])
			if err != nil {
				c.broken = err
				return fmt.Errorf("host %s: %w: %w", c.addr, ErrProtocol, err)
			}
			if n > 0 {
				c.r += n
				if rep.Kind == proto.ReplyEvent {
					continue // pushed events are for watchers
				}
				if rep.Kind == proto.ReplyError {
					return replyError(rep)
				}
				return fn(rep)
			}
		}
		if err := c.fill(); err != nil {
			c.broken = ctxErr(ctx, err)
			return fmt.Errorf("host %s: %w", c.addr, c.broken)
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

func (c *Conn) doJSON(ctx context.Context, enc func([]byte) []byte, v any) error {
	return c.do(ctx, enc, func(rep proto.Reply) error {
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
	return c.do(ctx, proto.AppendPing, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyPong {
			return unexpected(rep, "PONG")
		}
		return nil
	})
}

// HostInfo returns the host's description.
func (c *Conn) HostInfo(ctx context.Context) (HostInfo, error) {
	var hi HostInfo
	err := c.doJSON(ctx, func(b []byte) []byte { return proto.AppendInfo(b, nil) }, &hi)
	return hi, err
}

// Info returns a region's description.
func (c *Conn) Info(ctx context.Context, id string) (Info, error) {
	var in Info
	if err := checkID(id); err != nil {
		return in, err
	}
	err := c.doJSON(ctx, func(b []byte) []byte { return proto.AppendInfo(b, []byte(id)) }, &in)
	return in, err
}

// List returns every region on the host, sorted by shm_id.
func (c *Conn) List(ctx context.Context) ([]Info, error) {
	var out []Info
	err := c.doJSON(ctx, proto.AppendList, &out)
	return out, err
}

// Create makes a new region on the host.
func (c *Conn) Create(ctx context.Context, id string, o CreateOptions) (Info, error) {
	var in Info
	if err := checkID(id); err != nil {
		return in, err
	}
	err := c.doJSON(ctx, func(b []byte) []byte {
		return proto.AppendCreate(b, []byte(id), proto.CreateOptions{Size: o.Size, Layout: o.Layout, Durable: o.Durable})
	}, &in)
	return in, err
}

// Delete removes a region from the host.
func (c *Conn) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	return c.do(ctx, func(b []byte) []byte { return proto.AppendDelete(b, []byte(id)) }, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		return nil
	})
}

// get appends a region's content (or a range, n >= 0) to dst.
func (c *Conn) get(ctx context.Context, id string, dst []byte, off, n int64, ranged bool) ([]byte, uint64, error) {
	var v uint64
	err := c.do(ctx, func(b []byte) []byte {
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

// set writes p (at off when at is set, only at version ifVer when cond is
// set) and returns the new version.
func (c *Conn) set(ctx context.Context, id string, p []byte, o proto.SetOptions) (uint64, error) {
	var v uint64
	err := c.do(ctx, func(b []byte) []byte { return proto.AppendSet(b, []byte(id), p, o) }, func(rep proto.Reply) error {
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
