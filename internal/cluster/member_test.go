package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// version returns region id's version on h, or -1 if h lacks it.
func version(h *host.Host, id string) int64 {
	r, err := h.Get(id)
	if err != nil {
		return -1
	}
	v := int64(-1)
	r.Do(func(rr *region.Region) error { v = int64(rr.Version()); return nil })
	return v
}

// TestMembership: a fourth node started empty is added and gets the
// regions (snapshot and log); leadership is transferred to it and it takes
// writes; a node is removed and stops following, while the three left go
// on committing. Writes go through every step.
func TestMembership(t *testing.T) {
	l := startLocal(t, 3, nil)
	ctx := context.Background()
	li := l.leader(t)
	leader := l.nodes[li]
	if _, err := leader.Apply(ctx, Command{Op: OpCreate, ID: "m", Size: 4096}); err != nil {
		t.Fatal(err)
	}
	// write writes through n, again while n knows no leader (just after a
	// transfer, for a moment): ErrNotLeader says nothing was written.
	write := func(n *Node, i int) uint64 {
		t.Helper()
		var v uint64
		var err error
		shmtest.CheckFor(t, 30*time.Second, "no leader for a write", func() bool {
			v, err = n.Apply(ctx, Command{Op: OpWrite, ID: "m", Data: []byte(fmt.Sprint("write ", i))})
			return !errors.Is(err, ErrNotLeader)
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		return v
	}
	for i := 0; i < 5; i++ {
		write(leader, i)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dh := openHost(t)
	d, err := Start(Config{ID: "d", Bind: addr, DataDir: t.TempDir(), Host: dh})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := leader.AddVoter(ctx, "d", addr); err != nil {
		t.Fatal(err)
	}
	v := write(leader, 5)
	shmtest.CheckFor(t, 30*time.Second, "the added node did not catch up", func() bool { return version(dh, "m") == int64(v) })
	if ms, _ := leader.Members(); len(ms) != 4 {
		t.Fatalf("members after add: %v", ms)
	}

	if err := leader.TransferLeadership("d"); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 30*time.Second, "leadership did not move to d", d.IsLeader)
	v = write(d, 6)
	// Through the old leader, now a follower: forwarded to d.
	v2 := write(leader, 7)
	if v2 != v+1 {
		t.Fatalf("forwarded write got version %d after %d", v2, v)
	}

	gone := l.nodes[li]
	goneHost := l.hosts[li]
	// Everything written so far reaches it before it goes, so that what
	// it holds afterwards is exactly that.
	shmtest.CheckFor(t, 30*time.Second, "the node to remove did not catch up", func() bool { return version(goneHost, "m") == int64(v2) })
	if err := d.RemoveServer(ctx, gone.cfg.ID); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 30*time.Second, "the removed node still counts itself a member", func() bool {
		ms, _ := d.Members()
		return len(ms) == 3
	})
	stuck := int64(v2)
	for i := 8; i < 12; i++ {
		v = write(d, i)
	}
	for i, h := range append(l.hosts, dh) {
		if i == li {
			continue
		}
		shmtest.CheckFor(t, 30*time.Second, "a member did not follow", func() bool { return version(h, "m") == int64(v) })
	}
	if got := version(goneHost, "m"); got != stuck {
		t.Fatalf("the removed node went on applying: %d, was %d", got, stuck)
	}
}
