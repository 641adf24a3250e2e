package cluster

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestRestartInProcess: a node closed and started again in the same
// process, on the same data directory, starts and keeps what it applied.
// raft-wal's Close leaves its metadata database (a bbolt file, locked with
// flock) open, so a second Open in the process blocked for good.
func TestRestartInProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := openHost(t)
	dir := t.TempDir()
	cfg := Config{ID: "a", Bind: addr, Peers: map[string]string{"a": addr}, DataDir: dir, Host: h}
	start := func(round int) *Node {
		t.Helper()
		type res struct {
			n   *Node
			err error
		}
		ch := make(chan res, 1)
		go func() { n, err := Start(cfg); ch <- res{n, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("start %d: %v", round, r.err)
			}
			return r.n
		case <-time.After(30 * time.Second):
			t.Fatalf("start %d has not returned after 30 s (is the log's lock still held?)", round)
		}
		return nil
	}
	n := start(1)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.Apply(ctx, Command{Op: OpWrite, ID: "default", Data: []byte("before the restart")}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	n = start(2)
	t.Cleanup(func() { n.Close() })
	waitLeader(t, n)
	if got := state(t, h)["default"]; !strings.Contains(got, " v=1 ") {
		t.Fatalf("after the restart the region is %s, want version 1", got)
	}
}

// waitLeader waits until n, a cluster of one, leads.
func waitLeader(t *testing.T, n *Node) {
	t.Helper()
	shmtest.CheckFor(t, 30*time.Second, "the node does not lead", n.IsLeader)
}
