//go:build unix

package cluster

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peek looks at a TCP socket without reading from it or waiting.
func peek(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekUnknown
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peekClosed
	}
	res := peekUnknown
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
			res = peekEmpty
		case err != nil || n == 0:
			res = peekClosed
		default:
			res = peekData
		}
		return true // never wait for the poller
	})
	if err != nil {
		return peekClosed
	}
	return res
}
