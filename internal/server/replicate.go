package server

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/shmgr/shmgr/internal/cluster"
	"github.com/shmgr/shmgr/internal/proto"
)

// Cluster is what the server needs of a cluster node (*cluster.Node):
// committing a command, and what INFO reports.
type Cluster interface {
	// Apply commits cmd through the log (forwarding it to the leader)
	// and returns the region's version after it.
	Apply(ctx context.Context, cmd cluster.Command) (uint64, error)
	// Status is the node's own view of the cluster.
	Status() cluster.Status
	// Members lists the cluster's servers.
	Members() ([]cluster.Member, error)
	// IsLeader reports whether this node leads: the leader has applied a
	// command when Apply returns, a follower a replication lag later.
	IsLeader() bool
	// Barrier returns once this node has applied every write committed
	// before the call.
	Barrier(ctx context.Context) error
	// AddMember, RemoveServer and TransferLeadership change the
	// membership (forwarded to the leader); NodeStatuses asks every
	// member for its status. See cluster_admin.go.
	AddMember(ctx context.Context, id, addr, fingerprint string) error
	RemoveServer(ctx context.Context, id string) error
	TransferLeadership(id string) error
	NodeStatuses(ctx context.Context) ([]cluster.NodeStatus, error)
}

// applyCluster commits a WRITE or SET through the cluster's log. A keyed
// SET carries a request id made of its (cid, seq), so that a retry that
// reaches another host of the cluster (after the leader died) is answered
// by the log's idempotency records, not applied again. A SET with
// fence=<token> applies only under the live lease with that token, as
// the log has it when the entry applies (clusterWrite).
func (c *conn) applyCluster(id string, req *proto.Request) (uint64, error) {
	cmd := cluster.Command{Op: cluster.OpWrite, ID: id, Data: req.Payload, Conditional: req.HasIfVer, IfVersion: req.IfVersion,
		Fenced: req.HasFence, Token: req.Fence}
	if req.HasAt {
		cmd.Op, cmd.Off = cluster.OpWriteAt, req.Offset
	}
	if req.ClientID != nil {
		cmd.Request = requestID(req.ClientID, req.Seq)
	}
	return c.clusterWrite(cmd)
}

// applyTimeout bounds one replicated request of a small write: long
// enough to ride out an election (about a second), short enough that a
// cluster with no majority answers rather than hangs.
const applyTimeout = 10 * time.Second

// applyRate is the slowest replication, in bytes a second, a large write
// is given time for on top of applyTimeout: its pieces are forwarded,
// appended and fsynced on a majority, and applied here, one MiB at a
// time. 256 MiB at this rate is 32 s more; a fixed 10 s failed such
// writes on a loaded machine before they could commit.
const applyRate = 8 << 20

// applyBudget is how long a replicated write of n bytes may take.
func applyBudget(n int) time.Duration {
	return applyTimeout + time.Duration(n)*time.Second/applyRate
}

// clusterApply commits cmd, bounded by its applyBudget. On a follower,
// Apply returns once this node has applied the command too (it waits for
// the entry's log index, which the leader's answer carries), so that a
// client reads its own acknowledged write on the host it wrote through
// and CREATE can answer with the local region.
func (c *conn) clusterApply(cmd cluster.Command) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), applyBudget(len(cmd.Data)))
	defer cancel()
	return c.s.cfg.Cluster.Apply(ctx, cmd)
}

// ClusterInfo is the "cluster" object of INFO on a cluster node: this
// node's view (its own indexes; the others' are on their hosts).
type ClusterInfo struct {
	cluster.Status
	// Lag is how many committed entries this node has yet to apply.
	Lag uint64 `json:"lag"`
	// Members are the cluster's servers; Leader marks the one this node
	// follows.
	Members []ClusterMember `json:"members"`
	// Error is why the members could not be listed, if they could not.
	Error string `json:"error,omitempty"`
	// Nodes is every member's own status, fetched over the Raft port:
	// only in the answer to CLUSTER STATUS (cluster_admin.go), not in
	// INFO, which does not wait on other hosts.
	Nodes []cluster.NodeStatus `json:"nodes,omitempty"`
}

// ClusterMember is one server of the cluster.
type ClusterMember struct {
	cluster.Member
	Leader bool `json:"leader"`
}

// clusterInfo is INFO's cluster object, nil on a single host.
func (c *conn) clusterInfo() *ClusterInfo {
	cl := c.s.cfg.Cluster
	if cl == nil {
		return nil
	}
	st := cl.Status()
	ci := &ClusterInfo{Status: st}
	if st.CommitIndex > st.RaftApplied {
		ci.Lag = st.CommitIndex - st.RaftApplied
	}
	ms, err := cl.Members()
	if err != nil {
		ci.Error = err.Error()
	}
	for _, m := range ms {
		ci.Members = append(ci.Members, ClusterMember{Member: m, Leader: m.ID == st.Leader})
	}
	return ci
}

// requestID names a keyed write in the log: a hash of its client id and
// sequence number, never 0 (0 means "no id").
func requestID(cid []byte, seq uint64) uint64 {
	h := fnv.New64a()
	h.Write(cid)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	return h.Sum64() | 1
}
