package server

import (
	"context"
	"errors"

	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
)

// This file is the Redis protocol on a cluster node: every command that
// changes a region goes through the log, as the shmgr protocol's do
// (replicate.go), and reads stay on the local copy. A read-modify-write
// (SETRANGE, SET with NX, XX or GET, a transaction) cannot hold the
// region's lock across hosts, so it is optimistic: it reads the local
// copy, computes the new content, and commits it as a write conditional
// on the version it read. The log decides on every host alike; a write
// refused because this node's copy was behind (or another client wrote
// first) catches up and runs again, up to respClusterAttempts times.
// Keyspace notifications need nothing here: they come from the region's
// watch, which moves on every host as each entry applies.

// respClusterAttempts bounds the runs of one optimistic read-modify-write
// on a cluster node.
const respClusterAttempts = 8

// errRESPBehind: the local copy is older than the version a conditional
// command names; the node catches up and runs it again.
var errRESPBehind = errors.New("this node's copy is behind the version asked for")

// respCreate makes the region of a new key (a utf8 region of size bytes):
// on the host, or through the log on a cluster node.
func (c *conn) respCreate(id []byte, size int64) (*host.Region, error) {
	if c.s.cfg.Cluster == nil {
		return c.s.h.Create(string(id), host.CreateOptions{Size: size})
	}
	if _, err := c.clusterApply(cluster.Command{Op: cluster.OpCreate, ID: string(id), Size: size}); err != nil {
		return nil, err
	}
	return c.s.h.GetBytes(id)
}

// respWrite replaces the content of hr with p, if cond at version ifVer:
// under the region's lock, or through the log on a cluster node. It
// returns the new version.
func (c *conn) respWrite(hr *host.Region, p []byte, cond bool, ifVer uint64) (uint64, error) {
	if c.s.cfg.Cluster != nil {
		return c.clusterApply(cluster.Command{Op: cluster.OpWrite, ID: hr.ID(), Data: p, Conditional: cond, IfVersion: ifVer})
	}
	o := region.WriteOptions{Timeout: c.s.cfg.LockTimeout, Label: c.label, Stop: c.halt, Conditional: cond, IfVersion: ifVer}
	var v uint64
	err := hr.Do(func(r *region.Region) (err error) {
		v, err = r.Write(p, o)
		return err
	})
	return v, err
}

// respDelete deletes region id: on the host, or through the log.
func (c *conn) respDelete(id string) error {
	if c.s.cfg.Cluster == nil {
		return c.s.h.Delete(id)
	}
	_, err := c.clusterApply(cluster.Command{Op: cluster.OpDelete, ID: id})
	return err
}

// respUpdateCluster is respAtomic's write step on a cluster node: the ops
// run on the local copy, and their result is committed conditional on the
// version they read (cond's, if given). It returns the version committed,
// or the one read if the ops changed nothing. A copy older than cond's
// version is errRESPBehind until the node has caught up once (caughtUp);
// after that the version is one the region does not have.
func (c *conn) respUpdateCluster(hr *host.Region, key []byte, ops []respOp, cond respCond, caughtUp bool) (uint64, error) {
	rc := c.resp
	var base uint64
	var v respValue
	err := hr.Do(func(r *region.Region) (err error) {
		v = respValue{key: key, exists: true, raw: r.Layout() == region.Raw, max: r.MaxContent()}
		v.b, base, err = r.AppendContent(rc.tmp[:0])
		return err
	})
	if err != nil {
		return 0, err
	}
	defer func() { rc.tmp = v.b[:0] }()
	if cond.has && base != cond.ver {
		if base < cond.ver && !caughtUp {
			return 0, errRESPBehind
		}
		return 0, &region.ConflictError{Expected: cond.ver, Current: base}
	}
	for _, op := range ops {
		c.respApply(&v, op)
	}
	if !v.changed {
		return base, nil
	}
	return c.clusterApply(cluster.Command{Op: cluster.OpWrite, ID: hr.ID(), Data: v.b, Conditional: true, IfVersion: base})
}

// respCatchUp waits until this node has applied every committed write
// (a failure is left to the next attempt's write to report).
func (c *conn) respCatchUp() {
	ctx, cancel := context.WithTimeout(context.Background(), barrierTimeout)
	defer cancel()
	c.s.cfg.Cluster.Barrier(ctx)
}

// respConflictVersion is the current version a refused conditional write
// reports: the ConflictError's, or (an error that crossed from the
// leader as its kind alone) this node's own once it has caught up.
func (c *conn) respConflictVersion(hr *host.Region, err error) uint64 {
	var ce *region.ConflictError
	if errors.As(err, &ce) {
		return ce.Current
	}
	var v uint64
	if c.s.cfg.Cluster != nil && hr != nil {
		c.respCatchUp()
		hr.Do(func(r *region.Region) error {
			v = r.Version()
			return nil
		})
	}
	return v
}
