package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// startClusterHosts starts three host processes forming one cluster and
// returns them by node name, with the name of the leader.
func startClusterHosts(t *testing.T) (map[string]*shmtest.Host, string) {
	t.Helper()
	names := []string{"a", "b", "c"}
	var peers []string
	for _, n := range names {
		peers = append(peers, n+"="+shmtest.FreeAddr(t))
	}
	hosts := map[string]*shmtest.Host{}
	for _, n := range names {
		hosts[n] = shmtest.StartHostIn(t, filepath.Join(t.TempDir(), n), "--quiet", "--node", n, "--peers", strings.Join(peers, ","))
	}
	var leader string
	shmtest.CheckFor(t, 30*time.Second, "the cluster elected no leader", func() bool {
		var st struct {
			Leader string `json:"leader"`
		}
		out, _, code := hosts["a"].CLI(t, nil, "cluster", "status", "--json")
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false
		}
		leader = st.Leader
		return leader != ""
	})
	return hosts, leader
}

// TestFailoverToNextHost: a client given the three hosts of a cluster
// writes and watches through the leader; the leader is SIGKILLed
// mid-writes. The client goes on through another host: every write is
// acknowledged, each applied exactly once (the versions are 1..N, each
// acknowledged once), and the watch resumes where it was, every event
// carrying the content written at its version.
func TestFailoverToNextHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-host cluster")
	}
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) { testFailover(t, mode) })
	}
}

// testFailover is TestFailoverToNextHost with the region opened in mode:
// mapped, its reads and watch follow the Conn to the new host's objects.
func testFailover(t *testing.T, mode client.Mode) {
	hosts, leader := startClusterHosts(t)
	var addrs []string
	byAddr := map[string]string{}
	addrs = append(addrs, hosts[leader].Addr)
	for n, h := range hosts {
		byAddr[h.Addr] = n
		if n != leader {
			addrs = append(addrs, h.Addr)
		}
	}
	o := client.DefaultOptions()
	o.Mode = mode
	o.Hosts = addrs[1:]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	conn, err := client.Connect(ctx, addrs[0], o)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := conn.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Info(); got.ShmID == "" {
		t.Fatalf("no default region: %+v", got)
	}

	w, err := r.Watch(ctx, client.WatchOptions{HasFrom: true, From: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var (
		mu     sync.Mutex
		events []client.Event
	)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			ev, err := w.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
	}()

	const n, killAt = 120, 30
	acked := map[uint64]string{}
	// The host is killed by another goroutine while the writes go on, so
	// that a write is in flight when it dies (most runs).
	killed := conn.Addr()
	kill, dead := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(dead)
		select {
		case <-kill:
			hosts[byAddr[killed]].Kill(t)
		case <-ctx.Done():
		}
	}()
	defer func() { <-dead }()
	defer cancel()
	for i := 0; i < n; i++ {
		if i == killAt {
			close(kill)
		}
		p := fmt.Sprintf("write %d", i)
		v, err := r.Write(ctx, []byte(p))
		if err != nil {
			for name, h := range hosts {
				if h.Addr != killed {
					out, errOut, _ := h.CLI(t, nil, "cluster", "status", "--json")
					t.Logf("host %s: %s %s\n%s", name, out, errOut, h.Stderr())
				}
			}
			t.Fatalf("write %d (connected to %s, killed %s): %v", i, conn.Addr(), killed, err)
		}
		if prev, dup := acked[v]; dup {
			t.Fatalf("write %d acknowledged at version %d, which %q had", i, v, prev)
		}
		acked[v] = p
	}
	if now := conn.Addr(); now == killed {
		t.Errorf("still connected to the killed host %s", killed)
	}
	if r.Mode() != mode {
		t.Errorf("region mode %v, want %v (%s)", r.Mode(), mode, r.WhyNotLocal())
	}
	// The host that answered the last write had applied it: the region,
	// mapped or not, reads it from the host the Conn is on now.
	if got, v, err := r.ReadVersion(ctx); err != nil || v != n || string(got) != acked[n] {
		t.Errorf("ReadVersion after the failover = %q, %d, %v; want %q, %d", got, v, err, acked[n], n)
	}
	for v := uint64(1); v <= n; v++ {
		if _, ok := acked[v]; !ok {
			t.Errorf("no write acknowledged at version %d: a write applied twice, or one lost", v)
		}
	}
	// Every surviving host holds the last write at version n: nothing
	// applied twice.
	for name, h := range hosts {
		if h.Addr == killed {
			continue
		}
		c, err := client.Connect(ctx, h.Addr, client.Options{Mode: client.ModeTCP})
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		var v uint64
		ok := shmtest.Poll(10*time.Second, func() bool {
			rr, err := c.Open(ctx, "")
			if err != nil {
				return false
			}
			got, v, err = rr.ReadVersion(ctx)
			rr.Close()
			return err == nil && v == n
		})
		c.Close()
		if !ok || string(got) != acked[n] {
			t.Errorf("host %s: %q at version %d, want %q at version %d", name, got, v, acked[n], n)
		}
	}

	shmtest.CheckFor(t, 30*time.Second, "the watch did not reach the last version", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0 && events[len(events)-1].Version == n
	})
	w.Close()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	var last uint64
	for _, ev := range events {
		if ev.Version <= last {
			t.Errorf("watch went from version %d to %d", last, ev.Version)
		}
		if ev.Version-last-1 != ev.Skipped {
			t.Errorf("event at version %d after %d says %d skipped", ev.Version, last, ev.Skipped)
		}
		if want := acked[ev.Version]; string(ev.Content) != want {
			t.Errorf("watch: version %d carries %q, the write acknowledged at it was %q", ev.Version, ev.Content, want)
		}
		last = ev.Version
	}
	t.Logf("%d events for %d writes; failed over from %s to %s", len(events), n, killed, conn.Addr())
}

// TestHostListParsing: a comma-separated address and Options.Hosts name
// the hosts tried in turn; the first that answers is used.
func TestHostListParsing(t *testing.T) {
	dead := shmtest.FreeAddr(t) // nobody listens there
	o := client.DefaultOptions()
	o.Mode = client.ModeTCP
	c, err := client.Connect(t.Context(), dead+" ,"+hostAddr, o)
	if err != nil {
		t.Fatalf("Connect(%q): %v", dead+","+hostAddr, err)
	}
	if got := c.Addr(); got != hostAddr {
		t.Errorf("Addr() = %s, want %s (the one that answered)", got, hostAddr)
	}
	c.Close()
	o.Hosts = []string{hostAddr}
	if c, err = client.Connect(t.Context(), dead, o); err != nil {
		t.Fatalf("Connect(%s, Hosts %s): %v", dead, hostAddr, err)
	}
	c.Close()
	o.Hosts = nil
	if _, err := client.Connect(t.Context(), dead+","+shmtest.FreeAddr(t), o); err == nil || !strings.Contains(err.Error(), "no host of") {
		t.Errorf("Connect to two dead hosts: %v, want an error naming both", err)
	}
}
