package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// readRegion returns a region's content and version on one host.
func readRegion(t testing.TB, h *host.Host, id string) ([]byte, uint64) {
	t.Helper()
	r, err := h.Get(id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	var b []byte
	var v uint64
	if err := r.Do(func(rr *region.Region) (err error) {
		b, v, err = rr.AppendContent(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return b, v
}

// knowsLeader waits until n has heard from a leader: a follower that has
// not forwards nothing ("no leader is known").
func knowsLeader(tb testing.TB, n *Node) {
	tb.Helper()
	shmtest.CheckFor(tb, 30*time.Second, "node "+n.cfg.ID+" has not heard from a leader", func() bool { id, _ := n.Leader(); return id != "" })
}

// TestForwardReadYourWrite: a write through a follower is in that
// follower's region, at the version Apply returned, the moment Apply
// returns (the follower waits for the entry's log index, which the
// leader's answer carries). Without the wait the follower is a commit
// timeout behind, and most of these reads see the version before.
func TestForwardReadYourWrite(t *testing.T) {
	l := startLocal(t, 3, nil)
	li := l.leader(t)
	fi := (li + 1) % 3
	f, fh := l.nodes[fi], l.hosts[fi]
	knowsLeader(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.Apply(ctx, Command{Op: OpCreate, ID: "ryw", Size: 64, Layout: region.Raw}); err != nil {
		t.Fatal(err)
	}
	// CREATE through the follower: the region is there at once.
	if _, err := fh.Get("ryw"); err != nil {
		t.Fatalf("region missing on the follower right after CREATE: %v", err)
	}
	for i := range 50 {
		want := fmt.Appendf(nil, "write %d", i)
		v, err := f.Apply(ctx, Command{Op: OpWrite, ID: "ryw", Data: want})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, gv := readRegion(t, fh, "ryw")
		if gv != v || !bytes.HasPrefix(got, want) {
			t.Fatalf("write %d: follower read %q at version %d right after Apply, want %q at version %d", i, got, gv, want, v)
		}
	}
	// A conditional write that loses is an entry too: the follower has
	// applied as far as the state it was judged against.
	_, v := readRegion(t, fh, "ryw")
	if _, err := f.Apply(ctx, Command{Op: OpWrite, ID: "ryw", Data: []byte("stale"), Conditional: true, IfVersion: v - 1}); err == nil {
		t.Fatalf("conditional write at version %d succeeded, want a conflict", v-1)
	}
}

// TestForwardConcurrentOnce: writes forwarded from many goroutines on
// both followers at once (over shared, reused connections) each apply
// exactly once: the region's version is exactly the number of writes, on
// every node, and every writer's last write is in its slot.
func TestForwardConcurrentOnce(t *testing.T) {
	const writers, each = 24, 15
	l := startLocal(t, 3, nil)
	li := l.leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := l.nodes[li].Apply(ctx, Command{Op: OpCreate, ID: "many", Size: writers * 8, Layout: region.Raw}); err != nil {
		t.Fatal(err)
	}
	_, base := readRegion(t, l.hosts[li], "many")
	for _, n := range l.nodes {
		knowsLeader(t, n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		f := l.nodes[(li+1+w%2)%3] // the two followers, alternately
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], uint64(w<<16|i))
				if _, err := f.Apply(ctx, Command{Op: OpWriteAt, ID: "many", Off: int64(w * 8), Data: b[:]}); err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := base + writers*each
	for i, h := range l.hosts {
		var got []byte
		var v uint64
		shmtest.CheckFor(t, 30*time.Second, fmt.Sprintf("node %d not at version %d", i, want), func() bool {
			got, v = readRegion(t, h, "many")
			return v >= want
		})
		if v != want {
			t.Fatalf("node %d at version %d, want exactly %d (%d writes after version %d)", i, v, want, writers*each, base)
		}
		for w := range writers {
			if g := binary.LittleEndian.Uint64(got[w*8:]); g != uint64(w<<16|(each-1)) {
				t.Errorf("node %d, slot %d = %#x, want %#x", i, w, g, w<<16|(each-1))
			}
		}
	}
	// The followers reused their connections: far fewer than one per write.
	for i, n := range l.nodes {
		if i == li {
			continue
		}
		n.mux.pool.mu.Lock()
		idle := len(n.mux.pool.idle)
		n.mux.pool.mu.Unlock()
		if idle == 0 || idle > writers {
			t.Errorf("follower %d keeps %d idle connections to the leader, want 1 to %d", i, idle, writers)
		}
	}
}

// TestAlive: an idle forwarding connection whose peer closed it is not
// reused; one whose peer is still there is.
func TestAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	if !alive(c) {
		t.Fatal("alive = false on an open connection, want true")
	}
	s.Close()
	shmtest.CheckFor(t, 10*time.Second, "a connection its peer closed still looks alive", func() bool { return !alive(c) })
}

// TestBarrierIdle: a follower's Barrier on a cluster that has had no
// write since its leader was elected returns: the leader's last entry is
// then one the state machine never sees (the leader's no-op), so waiting
// for the state machine to reach its index would wait for the next write.
func TestBarrierIdle(t *testing.T) {
	l := startLocal(t, 3, nil)
	li := l.leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, n := range l.nodes {
		// Barrier, like a forwarded write, needs a leader the node knows
		// of; the election that made li may not have reached it yet.
		knowsLeader(t, n)
		if err := n.Barrier(ctx); err != nil {
			t.Fatalf("Barrier on node %d (leader %d) with no writes: %v", i, li, err)
		}
	}
}
