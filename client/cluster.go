package client

// This file holds cluster administration: the status of every node of
// the cluster the host belongs to, and membership changes, which the host
// forwards to the cluster's leader.

import (
	"context"
	"encoding/json"

	"github.com/shmgr/shmgr/internal/proto"
)

// ClusterStatus returns the host's cluster status as JSON: its own node's
// status and indexes, the members, and in "nodes" every member's own
// status as fetched over the cluster's Raft port (with "reachable" false
// and an "error" for a member that did not answer). A host that is not a
// cluster node answers ErrForbidden.
func (c *Conn) ClusterStatus(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.doJSON(ctx, retrySafe, proto.AppendClusterStatus, &raw)
	return raw, err
}

// ClusterAdd adds node name, whose Raft port is at addr, to the cluster
// as a voter. On a cluster whose Raft port runs on TLS, fingerprint is
// the SHA-256 fingerprint of the new node's certificate (its host prints
// it as "tls sha256"); without TLS it must be empty. It needs the admin
// token. A lost reply is ErrUnknownOutcome (the change may have been
// made: look with ClusterStatus; adding again is harmless).
func (c *Conn) ClusterAdd(ctx context.Context, name, addr, fingerprint string) error {
	if err := checkID(name); err != nil {
		return err
	}
	return c.doOK(ctx, func(b []byte) []byte {
		return proto.AppendClusterAdd(b, []byte(name), []byte(addr), []byte(fingerprint))
	})
}

// ClusterRemove removes node name from the cluster. It needs the admin
// token.
func (c *Conn) ClusterRemove(ctx context.Context, name string) error {
	if err := checkID(name); err != nil {
		return err
	}
	return c.doOK(ctx, func(b []byte) []byte { return proto.AppendClusterRemove(b, []byte(name)) })
}

// ClusterLeader hands the cluster's leadership to node name and returns
// once it leads. It needs the admin token.
func (c *Conn) ClusterLeader(ctx context.Context, name string) error {
	if err := checkID(name); err != nil {
		return err
	}
	return c.doOK(ctx, func(b []byte) []byte { return proto.AppendClusterLeader(b, []byte(name)) })
}

// doOK sends a request that is never retried and expects OK.
func (c *Conn) doOK(ctx context.Context, enc func([]byte) []byte) error {
	return c.do(ctx, retryNever, enc, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		return nil
	})
}
