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
package rawsock

import "net"

// Wrap returns nc with Read and Write made as raw system calls where the
// platform and the connection allow it (TCP and Unix sockets on Linux),
// else nc itself. Every other method is nc's.
func Wrap(nc net.Conn) net.Conn {
	return wrap(nc)
}
