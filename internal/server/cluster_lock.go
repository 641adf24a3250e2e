package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// On a cluster node a lease is replicated state: LOCK, RENEW and UNLOCK
// are entries of the log, the fencing token is the index of the entry
// that granted the lease, and the FSM checks every write against the
// region's lease when the write applies (docs/CLUSTER.md, "Leases and
// tokens"). What a client sees is the single host's protocol, with one
// widening: the token, not the connection, holds the lease, so a write
// with fence=<token>, a RENEW or an UNLOCK is accepted through any host
// of the cluster. The connection that took a lease still ends it when it
// closes.

// leaseRetry bounds how long RENEW and UNLOCK retry a command that met
// no leader (an election takes about a second).
const leaseRetry = 5 * time.Second

// leasePoll is the longest pause between two tries of a LOCK (or a
// write) that a live lease holds up: an UNLOCK frees the lock at once,
// and the next try sees it within this.
const leasePoll = 50 * time.Millisecond

// leaseNode is what a LOCK asks of a cluster node beyond Cluster: the
// lease it has applied for a region (*cluster.Node has it).
type leaseNode interface {
	Lease(id string) (cluster.LeaseInfo, bool)
}

// newRequest names one LOCK, RENEW or UNLOCK for the log's exactly-once
// records: the protocol gives these no request id, so each request gets
// one at random, sent again with each of its own tries.
func newRequest() uint64 { return rand.Uint64() | 1 }

// retry says which failures clusterRetry tries again.
type retry struct {
	// held: a live lease held the region (the entry was refused and did
	// nothing).
	held bool
	// lost: no leader, or a lost answer; safe only for a command with a
	// Request id, which the log applies at most once.
	lost bool
}

// clusterRetry commits cmd, trying again until until on the failures r
// names. A refusal because a lease holds the region says how long the
// lease is still taken for; the next try comes then, or after leasePoll
// if sooner. Shutdown (c.halt) ends the wait.
func (c *conn) clusterRetry(cmd cluster.Command, until time.Time, r retry) (uint64, error) {
	for {
		v, err := c.clusterApply(cmd)
		if err == nil {
			return v, nil
		}
		held := errors.Is(err, shmerr.ErrLockTimeout)
		lost := cmd.Request != 0 && (errors.Is(err, shmerr.ErrUnavailable) || errors.Is(err, shmerr.ErrUnknownOutcome))
		left := time.Until(until)
		if !(r.held && held || r.lost && lost) || left <= 0 {
			return 0, err
		}
		pause := leasePoll
		if held && v > 0 && time.Duration(v)*time.Millisecond < pause {
			pause = time.Duration(v) * time.Millisecond
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-t.C:
		case <-c.halt:
			t.Stop()
			return 0, fmt.Errorf("%w (%v)", region.ErrStopped, err)
		}
	}
}

// clusterWrite commits a WRITE or SET. One without fence= waits, as a
// single host's writer waits for the lock, while a live lease holds the
// region, up to Config.LockTimeout; then it fails with lock_timeout.
func (c *conn) clusterWrite(cmd cluster.Command) (uint64, error) {
	return c.clusterRetry(cmd, time.Now().Add(c.s.cfg.LockTimeout), retry{held: !cmd.Fenced})
}

// clusterLock serves LOCK on a cluster node: the lease is granted by the
// log, and a LOCK that a live lease holds up tries again until its wait
// ends.
func (c *conn) clusterLock(req *proto.Request) {
	id := string(req.ID)
	if l, ok := c.leases[id]; ok {
		if c.clusterHolds(id, l.token) {
			c.refuse(proto.CodeForbidden, fmt.Sprintf("this connection holds the lock of %q already: UNLOCK it first", req.ID))
			return
		}
		delete(c.leases, id) // lost: expired, perhaps taken over
	}
	lease, ok := c.leaseLength(req)
	if !ok {
		return
	}
	wait, ok := c.lockWait(req)
	if !ok {
		return
	}
	cmd := cluster.Command{Op: cluster.OpLock, ID: id, Lease: max(lease.Milliseconds(), 1), Request: newRequest()}
	token, err := c.clusterRetry(cmd, time.Now().Add(wait), retry{held: true, lost: true})
	if err != nil {
		c.fail(err)
		return
	}
	if c.leases == nil {
		c.leases = map[string]heldLease{}
	}
	c.leases[id] = heldLease{token: token}
	c.nleases.Store(int32(len(c.leases)))
	c.out = proto.AppendOKVersion(c.out, token)
}

// clusterHolds reports whether the lease with token on id is live as far
// as this node has applied it, on this host's clock.
func (c *conn) clusterHolds(id string, token uint64) bool {
	n, ok := c.s.cfg.Cluster.(leaseNode)
	if !ok {
		return false
	}
	l, ok := n.Lease(id)
	return ok && l.Token == token && time.Now().Before(l.Deadline)
}

// clusterRenew serves RENEW on a cluster node.
func (c *conn) clusterRenew(req *proto.Request) {
	lease, ok := c.leaseLength(req)
	if !ok {
		return
	}
	cmd := cluster.Command{Op: cluster.OpRenew, ID: string(req.ID), Token: req.Token, Lease: max(lease.Milliseconds(), 1), Request: newRequest()}
	if _, err := c.clusterRetry(cmd, time.Now().Add(leaseRetry), retry{lost: true}); err != nil {
		if errors.Is(err, shmerr.ErrFenced) {
			c.forgetLease(string(req.ID), req.Token)
		}
		c.fail(err)
		return
	}
	c.out = proto.AppendOK(c.out)
}

// clusterUnlock serves UNLOCK on a cluster node.
func (c *conn) clusterUnlock(req *proto.Request) {
	cmd := cluster.Command{Op: cluster.OpUnlock, ID: string(req.ID), Token: req.Token, Request: newRequest()}
	_, err := c.clusterRetry(cmd, time.Now().Add(leaseRetry), retry{lost: true})
	if err == nil || errors.Is(err, shmerr.ErrFenced) {
		c.forgetLease(string(req.ID), req.Token)
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.out = proto.AppendOK(c.out)
}

// forgetLease drops the connection's record of the lease with token on
// id, if it has one.
func (c *conn) forgetLease(id string, token uint64) {
	if l, ok := c.leases[id]; ok && l.token == token {
		delete(c.leases, id)
		c.nleases.Store(int32(len(c.leases)))
	}
}

// releaseClusterLeases ends the leases the connection took, as a single
// host does when a connection closes: one UNLOCK each, bounded, since
// the connection is going (a lease whose UNLOCK fails ends at its
// deadline).
func (c *conn) releaseClusterLeases() {
	for id, l := range c.leases {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.s.cfg.Cluster.Apply(ctx, cluster.Command{Op: cluster.OpUnlock, ID: id, Token: l.token, Request: newRequest()})
		cancel()
		if err != nil && !errors.Is(err, shmerr.ErrFenced) {
			c.s.cfg.Logf("cluster: release lease %d on %q of a closed connection: %v (it ends at its deadline)", l.token, id, err)
		}
		delete(c.leases, id)
	}
	c.nleases.Store(0)
}
