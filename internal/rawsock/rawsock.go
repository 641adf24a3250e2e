// Package rawsock serves TCP connections with raw non-blocking reads and
// writes: the host's connections, and the client library's.
//
// A net.Conn reads and writes through syscall.Syscall, which tells the Go
// scheduler about each call. When the process has been idle, the
// scheduler's monitor thread sleeps, and the first such call after a
// wake-up wakes it again: a futex wake, two context switches and a
// nanosleep for every request a lone client makes, on the critical path
// of its reply. Reads and writes on a non-blocking socket never block, so
// they need no such notice: Wrap's connection makes them with
// syscall.RawSyscall through the connection's syscall.RawConn, waiting for
// readiness (and honouring deadlines) through the runtime's poller as
// net.Conn does.
//
// A connection can also spin (SetReadSpin): a Read that finds the socket
// empty keeps trying, yielding to other goroutines, for a short while
// before it sleeps. A client that sends its next request within that
// while then finds the reading goroutine awake: no wake-up of a sleeping
// thread, and on a virtual machine no wake-up of an idle CPU, on the path
// of its reply.
package rawsock

import (
	"net"
	"time"
)

// Spinner is a connection whose reads can spin before they wait (see the
// package comment). Wrap's connections are Spinners where reads are raw.
type Spinner interface {
	// SetReadSpin sets how long each Read keeps trying an empty socket
	// before it waits on the poller (0: not at all). It must not be called
	// during a Read.
	SetReadSpin(d time.Duration)
	// Spun reports whether the last Read spun, and if so whether the
	// bytes came during the spin.
	Spun() (spun, found bool)
}

// WrapListener returns ln with the connections it accepts passed through
// Wrap: under a TLS listener, the TLS connections then read and write
// their records with raw system calls too.
func WrapListener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(nc), nil
}

// Wrap returns nc with Read and Write made as raw system calls where the
// platform and the connection allow it (TCP and Unix sockets on Linux),
// else nc itself. Every other method is nc's.
func Wrap(nc net.Conn) net.Conn {
	return wrap(nc)
}
