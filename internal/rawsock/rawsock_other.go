//go:build !linux

package rawsock

import "net"

func wrap(nc net.Conn) net.Conn { return nc }
