//go:build unix

package client

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// closedByPeer reports whether the other end has closed nc, by peeking at
// the socket without blocking and without consuming anything: EOF or a
// reset means closed; no data yet (EAGAIN) or pending data means open.
func closedByPeer(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case n == 0 && err == nil:
			closed = true
		case err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR):
			closed = true
		}
		return true // never wait
	})
	return closed
}
