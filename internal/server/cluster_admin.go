package server

// This file serves CLUSTER: STATUS (every member's role and indexes) and
// the membership changes ADD, REMOVE and LEADER, which need the admin
// token and which the node forwards to the leader.

import (
	"context"
	"fmt"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/proto"
)

// statusWait bounds CLUSTER STATUS: each member is asked with a shorter
// timeout of its own (cluster.NodeStatuses).
const statusWait = 5 * time.Second

// membershipWait bounds a membership change: a configuration entry to
// commit, or a leadership transfer (an election).
const membershipWait = 30 * time.Second

// clusterAdmin serves a CLUSTER request.
func (c *conn) clusterAdmin(req *proto.Request) {
	cl := c.s.cfg.Cluster
	if cl == nil {
		c.refuse(proto.CodeForbidden, "this host is not a cluster node (a host joins a cluster with --node and --peers, or --join)")
		return
	}
	if req.Cluster == proto.ClusterStatus {
		ctx, cancel := context.WithTimeout(context.Background(), statusWait)
		defer cancel()
		ci := c.clusterInfo()
		var err error
		if ci.Nodes, err = cl.NodeStatuses(ctx); err != nil && ci.Error == "" {
			ci.Error = err.Error()
		}
		c.appendJSON(ci)
		return
	}
	if g := c.grant; g != &auth.AllGrant && (g.Name != auth.AdminName || g.ReadOnly || len(g.Regions) > 0) {
		c.refuse(proto.CodeForbidden, fmt.Sprintf("CLUSTER %v changes the cluster's membership: it needs the admin token, not token %q", req.Cluster, g.Name))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), membershipWait)
	defer cancel()
	id := string(req.ID)
	var err error
	switch req.Cluster {
	case proto.ClusterAdd:
		err = cl.AddMember(ctx, id, string(req.Addr), string(req.Fingerprint))
	case proto.ClusterRemove:
		err = cl.RemoveServer(ctx, id)
	case proto.ClusterLeader:
		err = cl.TransferLeadership(id)
	}
	if err != nil {
		c.fail(fmt.Errorf("cluster %v %s: %w", req.Cluster, id, err))
		return
	}
	c.s.cfg.Logf("cluster: %v %s done (asked by %s)", req.Cluster, id, c.nc.RemoteAddr())
	c.out = proto.AppendOK(c.out)
}
