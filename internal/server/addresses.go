package server

import (
	"context"
	"net"
)

// Listen listens on a TCP address with the server's keepalive settings:
// the kernel probes an idle connection after 5 s, every 5 s, and drops it
// after 3 unanswered probes.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Addresses lists the addresses clients can use to reach a server bound
// to bound: that address, or, when bound to all interfaces, every
// interface address, non-loopback IPv4 first, link-local ones left out.
func Addresses(bound net.IP) []string {
	if !bound.IsUnspecified() {
		return []string{bound.String()}
	}
	var v4, v6, loop []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipn.IP
		switch {
		case ip.IsLoopback():
			loop = append(loop, ip.String())
		case ip.IsLinkLocalUnicast():
		case ip.To4() != nil:
			v4 = append(v4, ip.String())
		default:
			v6 = append(v6, ip.String())
		}
	}
	out := append(append(v4, v6...), loop...)
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}
