package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestBarrierAfterLeaderChange: a new leader begins its term with a no-op
// entry, which Raft never hands the FSM. A barrier right after the change,
// with no write since, must still return on every node: waiting for the
// FSM to apply the no-op's index would wait for the next write.
func TestBarrierAfterLeaderChange(t *testing.T) {
	l := startLocal(t, 3, nil)
	old := l.leader(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := l.nodes[old].Apply(ctx, Command{Op: OpWrite, ID: "default", Data: []byte("before the change")}); err != nil {
		t.Fatal(err)
	}
	next := (old + 1) % len(l.nodes)
	if err := l.nodes[old].TransferLeadership(l.nodes[next].cfg.ID); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 30*time.Second, "the leadership did not move", l.nodes[next].IsLeader)
	for _, n := range l.nodes {
		// A node learns of the new leader from its first AppendEntries.
		shmtest.CheckFor(t, 30*time.Second, "a node does not know the new leader", func() bool { return n.Status().Leader == l.nodes[next].cfg.ID })
	}
	for i, n := range l.nodes {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.Barrier(bctx)
		cancel()
		if err != nil {
			st := n.Status()
			t.Errorf("node %d: Barrier after the leader changed: %v (applied %d, Raft applied %d, last index %d)", i, err, st.AppliedIndex, st.RaftApplied, st.LastIndex)
		}
	}
}
