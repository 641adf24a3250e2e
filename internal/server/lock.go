package server

import (
	"fmt"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// Lease limits.
const (
	// DefaultLease is the lease of a LOCK without lease=.
	DefaultLease = 10 * time.Second
	// MaxLease is the longest lease a LOCK or RENEW may ask for.
	MaxLease = 60 * time.Second
	// MaxLockWait is the longest a LOCK may wait for the lock.
	MaxLockWait = 60 * time.Second
)

// heldLease is a lock this connection holds on a client's behalf.
type heldLease struct {
	hr    *host.Region
	token uint64
}

// lock serves LOCK <id> [lease=] [wait=]: take the region's lock as a
// lease for this connection, and reply OK <fencing token>.
//
// The wait for the lock (wait=, at most MaxLockWait; else
// Config.LockTimeout) blocks the connection's loop, so requests pipelined
// behind the LOCK wait for it, and it runs inside host.Region.Do, which
// keeps the region mapped for the wait: a DELETE of the region answers
// only once the wait is over (the region is forgotten at once, so other
// requests and connections are not held up). A write's wait
// (Config.LockTimeout) is the same. Shutdown (c.halt) ends the wait
// early.
func (c *conn) lock(req *proto.Request) {
	hr, err := c.s.h.GetBytes(req.ID)
	if err != nil {
		c.fail(err)
		return
	}
	if l, ok := c.leases[string(req.ID)]; ok && !l.holds() {
		delete(c.leases, string(req.ID)) // lost: expired and taken over
	}
	if _, ok := c.leases[string(req.ID)]; ok {
		c.refuse(proto.CodeForbidden, fmt.Sprintf("this connection holds the lock of %q already: UNLOCK it first", req.ID))
		return
	}
	lease, ok := c.leaseLength(req)
	if !ok {
		return
	}
	wait, ok := c.lockWait(req)
	if !ok {
		return
	}
	var token uint64
	err = hr.Do(func(r *region.Region) (err error) {
		token, err = r.Acquire(wait, lease, c.label, c.halt)
		return err
	})
	if err != nil {
		c.fail(err)
		return
	}
	if c.leases == nil {
		c.leases = map[string]heldLease{}
	}
	c.leases[string(req.ID)] = heldLease{hr: hr, token: token}
	c.nleases.Store(int32(len(c.leases)))
	c.out = proto.AppendOKVersion(c.out, token)
}

// lockWait reads wait= (default Config.LockTimeout; 0 tries once),
// refusing more than MaxLockWait.
func (c *conn) lockWait(req *proto.Request) (time.Duration, bool) {
	if !req.HasWait {
		return c.s.cfg.LockTimeout, true
	}
	if req.Wait > int64(MaxLockWait/time.Millisecond) {
		c.refuse(proto.CodeLimit, fmt.Sprintf("wait of %d ms is longer than the maximum of %d ms: retry instead", req.Wait, MaxLockWait/time.Millisecond))
		return 0, false
	}
	if req.Wait == 0 {
		return time.Nanosecond, true // try once
	}
	return time.Duration(req.Wait) * time.Millisecond, true
}

// leaseLength reads lease= (default DefaultLease), refusing more than
// MaxLease.
func (c *conn) leaseLength(req *proto.Request) (time.Duration, bool) {
	if !req.HasLease {
		return DefaultLease, true
	}
	d := time.Duration(req.Lease) * time.Millisecond
	if d > MaxLease || req.Lease > int64(MaxLease/time.Millisecond) {
		c.refuse(proto.CodeLimit, fmt.Sprintf("lease of %d ms is longer than the maximum of %d ms: renew a shorter lease instead", req.Lease, MaxLease/time.Millisecond))
		return 0, false
	}
	return d, true
}

// holds reports whether the lease is still held.
func (l heldLease) holds() bool {
	held := false
	l.hr.Do(func(r *region.Region) error { held = r.Holds(l.token); return nil })
	return held
}

// held returns the lease this connection holds on id with token, or
// answers fenced.
func (c *conn) held(id []byte, token uint64) (heldLease, bool) {
	l, ok := c.leases[string(id)]
	if !ok || l.token != token {
		c.refuse(proto.CodeFenced, fmt.Sprintf("this connection holds no lock on %q with token %d", id, token))
		return heldLease{}, false
	}
	return l, true
}

func (c *conn) renew(req *proto.Request) {
	l, ok := c.held(req.ID, req.Token)
	if !ok {
		return
	}
	lease, ok := c.leaseLength(req)
	if !ok {
		return
	}
	if err := l.hr.Do(func(r *region.Region) error { return r.Renew(l.token, lease) }); err != nil {
		delete(c.leases, string(req.ID))
		c.fail(err)
		return
	}
	c.out = proto.AppendOK(c.out)
}

func (c *conn) unlock(req *proto.Request) {
	l, ok := c.held(req.ID, req.Token)
	if !ok {
		return
	}
	delete(c.leases, string(req.ID))
	c.nleases.Store(int32(len(c.leases)))
	if err := l.hr.Do(func(r *region.Region) error { return r.Release(l.token) }); err != nil {
		c.fail(err)
		return
	}
	c.out = proto.AppendOK(c.out)
}

// releaseLeases frees every lock the connection still holds: a client
// whose connection ends loses its leases at once.
func (c *conn) releaseLeases() {
	if c.s.cfg.Cluster != nil {
		c.releaseClusterLeases()
		return
	}
	for id, l := range c.leases {
		l.hr.Do(func(r *region.Region) error { return r.Release(l.token) })
		delete(c.leases, id)
	}
}
