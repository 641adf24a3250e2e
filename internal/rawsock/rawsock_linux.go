package rawsock

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func wrap(nc net.Conn) net.Conn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &conn{Conn: nc, rc: rc}
	c.readFn, c.writeFn = c.read, c.write
	return c
}

// conn is a socket whose Read and Write are raw system calls. The
// callbacks are bound once, so a call allocates nothing.
type conn struct {
	net.Conn
	rc syscall.RawConn

	// The reading goroutine's call state (Read is not called
	// concurrently with itself: net.Conn users serialise it).
	rbuf   []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool
	// spin is how long Read keeps trying before it waits on the poller
	// (SetReadSpin); spun and found say whether the current Read has
	// spun, and found bytes while it did.
	spin  time.Duration
	spun  bool
	found bool

	// Write's call state, under wmu.
	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(uintptr) bool
}

// read is the RawConn.Read callback: false means "not ready, wait".
func (c *conn) read(fd uintptr) bool {
	if c.tryRead(fd) {
		return true
	}
	if c.spin <= 0 || c.spun {
		return false
	}
	// Spin: try again, yielding to other goroutines between tries, until
	// the bytes come or c.spin has passed.
	c.spun = true
	start := time.Now()
	for {
		runtime.Gosched()
		if c.tryRead(fd) {
			c.found = true
			return true
		}
		if time.Since(start) >= c.spin {
			return false
		}
	}
}

// tryRead makes one read: false means the socket has nothing yet.
func (c *conn) tryRead(fd uintptr) bool {
	for {
		// recvfrom, not read: the socket call skips the file layer's
		// checks, which a spinning read would pay on every try (the
		// figure is in docs/PERFORMANCE.md).
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.rbuf))), uintptr(len(c.rbuf)), 0, 0, 0)
		switch errno {
		case 0:
			c.rn, c.rerr = int(n), nil
			if n == 0 {
				c.rerr = io.EOF
			}
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			c.rn, c.rerr = 0, os.NewSyscallError("read", errno)
			return true
		}
	}
}

// SetReadSpin sets how long each Read keeps trying an empty socket before
// it waits on the poller (0: not at all).
func (c *conn) SetReadSpin(d time.Duration) { c.spin = d }

// Spun reports whether the last Read spun, and whether it found bytes
// while it did.
func (c *conn) Spun() (spun, found bool) { return c.spun, c.found }

// write is the RawConn.Write callback: it writes until c.wbuf is sent,
// the socket is full (false: wait) or an error.
func (c *conn) write(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		// sendto, not write, for the same reason; MSG_NOSIGNAL: a peer
		// gone is EPIPE, without a SIGPIPE for the runtime to field.
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.wbuf))), uintptr(len(c.wbuf)), unix.MSG_NOSIGNAL, 0, 0)
		switch errno {
		case 0:
			c.wn += int(n)
			c.wbuf = c.wbuf[n:]
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			c.werr = os.NewSyscallError("write", errno)
			return true
		}
	}
	return true
}

// Read reads like net.Conn.Read: errors are wrapped in a *net.OpError.
func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr, c.spun, c.found = b, 0, nil, false, false
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	if err == nil {
		err = c.rerr
	}
	if err != nil && err != io.EOF {
		return c.rn, c.opError("read", err)
	}
	return c.rn, err
}

// Write writes all of b like net.Conn.Write.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = b, 0, nil
	err := c.rc.Write(c.writeFn)
	n := c.wn
	c.wbuf = nil
	if err == nil {
		err = c.werr
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// SyscallConn returns the socket's raw connection, as a *net.TCPConn
// does, for callers that peek at the socket themselves.
func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// opError wraps err like net.Conn does. The poller's errors (deadline,
// closed) come from RawConn wrapped as a "raw-read" or "raw-write"
// *net.OpError: that wrapping is replaced.
func (c *conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
