package client

import (
	"context"

	"github.com/shmgr/shmgr/internal/proto"
)

// ReadOptions choose how a read is served. The zero value is a plain
// read, the same as Read, ReadVersion and ReadAt.
type ReadOptions struct {
	// Consistent makes the read linearizable: it sees every write that
	// was acknowledged (on any host of the cluster) before it began.
	//
	// A plain read on a cluster host is served from that host's local
	// copy: sequentially consistent per host, and at most the replication
	// lag behind the leader. With Consistent the host first confirms with
	// the leader and waits until it has applied at least as far (the
	// protocol's "GET <id> consistent"). A host that cannot reach the
	// leader refuses the read with ErrUnavailable rather than answer with
	// data that may be stale.
	//
	// On a single host (not a cluster node) Consistent costs nothing: its
	// one copy is linearizable already, and the read is a plain one.
	Consistent bool
}

// ReadWith returns the region's content and its version, read as o says.
//
// A mapped region (ModeLocal) with o.Consistent on a cluster host asks
// the host over TCP for the barrier alone (a GET of no bytes, with
// consistent) and then reads its own mapping: the host answers only once
// its shared memory holds every acknowledged write, and the mapping is
// that shared memory, so the content still goes zero-copy from the
// mapping and only a few bytes cross the connection.
func (r *Region) ReadWith(ctx context.Context, o ReadOptions) ([]byte, uint64, error) {
	return r.AppendReadWith(ctx, nil, o)
}

// AppendReadWith is ReadWith appending the content to dst (see
// AppendRead). Over TCP the word consistent is sent only to a cluster
// host: a single host's reads are linearizable as they are, and a host
// from before the word would refuse it.
func (r *Region) AppendReadWith(ctx context.Context, dst []byte, o ReadOptions) ([]byte, uint64, error) {
	if !o.Consistent {
		return r.AppendRead(ctx, dst)
	}
	if r.mode != ModeLocal {
		return r.conn.getWith(ctx, r.id, dst, proto.GetOptions{Consistent: r.conn.replicated.Load()})
	}
	if err := r.barrier(ctx); err != nil {
		return dst, 0, err
	}
	return r.AppendRead(ctx, dst)
}

// ReadAtWith is ReadAt (n bytes from offset off) read as o says (see
// ReadWith).
func (r *Region) ReadAtWith(ctx context.Context, off, n int64, o ReadOptions) ([]byte, uint64, error) {
	if !o.Consistent {
		return r.ReadAt(ctx, off, n)
	}
	if r.mode != ModeLocal {
		return r.conn.getWith(ctx, r.id, nil, proto.GetOptions{HasRange: true, Offset: off, Length: n, Consistent: r.conn.replicated.Load()})
	}
	if err := r.barrier(ctx); err != nil {
		return nil, 0, err
	}
	return r.ReadAt(ctx, off, n)
}

// barrier returns once the host of a mapped region holds every write
// acknowledged before the call (nothing to wait for on a single host).
func (r *Region) barrier(ctx context.Context) error {
	if !r.conn.replicated.Load() {
		return nil
	}
	_, _, err := r.conn.getWith(ctx, r.id, nil, proto.GetOptions{HasRange: true, Consistent: true})
	return err
}

// getWith appends a region's content (or the range o names) to dst, read
// as o says.
func (c *Conn) getWith(ctx context.Context, id string, dst []byte, o proto.GetOptions) ([]byte, uint64, error) {
	var v uint64
	err := c.do(ctx, retrySafe, func(b []byte) []byte {
		return proto.AppendGetWith(b, []byte(id), o)
	}, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyValue {
			return unexpected(rep, "VALUE")
		}
		dst = append(dst, rep.Payload...)
		v = rep.Version
		return nil
	})
	return dst, v, err
}
