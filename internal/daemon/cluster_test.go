package daemon

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// clusterConfig is testConfig as the one node of a one-node cluster on a
// free loopback Raft port.
func clusterConfig(t *testing.T, dir string) (Config, string) {
	t.Helper()
	cfg := testConfig(t, dir, &shmtest.Buffer{})
	raft := freePort(t)
	cfg.Cluster = &ClusterConfig{Node: "a", Peers: map[string]string{"a": raft}}
	return cfg, raft
}

// writeDefault writes p to the default region of the host at addr and
// returns the new version.
func writeDefault(t *testing.T, addr string, p string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	r, err := client.Dial(ctx, addr, "", client.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v, err := r.Write(ctx, []byte(p))
	if err != nil {
		t.Fatalf("write %q: %v", p, err)
	}
	return v
}

// noRaftGoroutines fails the test unless every goroutine of Raft has
// ended: the daemon closed its node.
func noRaftGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	ok := shmtest.Poll(ioTimeout, func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "hashicorp/raft") && !strings.Contains(stacks, "shmgr/internal/cluster.")
	})
	if !ok {
		t.Fatalf("Raft goroutines still run after Close:\n%s", stacks)
	}
}

// TestClusterNode: a daemon with Config.Cluster runs a node over its
// host, writes go through its log, and Close closes the node (its port
// is free, its goroutines ended).
func TestClusterNode(t *testing.T) {
	dir := t.TempDir()
	cleanShm(t, dir)
	cfg, raft := clusterConfig(t, dir)
	d := start(t, cfg)
	if d.Node() == nil {
		t.Fatal("Node() is nil with Config.Cluster set")
	}
	shmtest.CheckFor(t, ioTimeout, "the one node never led", d.Node().IsLeader)
	before := d.Node().Status().AppliedIndex
	if v := writeDefault(t, d.Addr().String(), "through the log"); v != 1 {
		t.Errorf("first write: version %d, want 1", v)
	}
	if after := d.Node().Status().AppliedIndex; after <= before {
		t.Errorf("applied index %d after a write, %d before: the write did not go through the log", after, before)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	released(t, raft)
	noRaftGoroutines(t)
	checkNoGoroutines(t)

	// A restart in the same process is not tested here: raft-wal v0.4.0
	// leaves its meta database's flock held after Close, so a second
	// Start in one process would block on it. cmd/shmgr restarts a node
	// as a new process.
}
