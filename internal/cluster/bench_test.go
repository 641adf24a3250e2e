package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// local is a cluster of nodes in this process, each with its own host, on
// loopback TCP: for benchmarks, where a control hop per write would hide
// what is measured.
type local struct {
	nodes []*Node
	hosts []*host.Host
}

func startLocal(tb testing.TB, n int, tweak func(*Config)) *local {
	tb.Helper()
	peers := map[string]string{}
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		peers[string(rune('a'+i))] = ln.Addr().String()
		ln.Close()
	}
	l := &local{}
	for i := 0; i < n; i++ {
		id := string(rune('a' + i))
		h := openHost(tb)
		// Raft's default timeouts: on a shared, busy machine shorter ones
		// lose the leader in the middle of a measurement.
		cfg := Config{ID: id, Bind: peers[id], Peers: peers, DataDir: tb.TempDir(), Host: h}
		if tweak != nil {
			tweak(&cfg)
		}
		nd, err := Start(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { nd.Close() }) // before the host's cleanup
		l.nodes, l.hosts = append(l.nodes, nd), append(l.hosts, h)
	}
	return l
}

// leader waits for a leader and returns its index.
func (l *local) leader(tb testing.TB) int {
	tb.Helper()
	at := -1
	shmtest.CheckFor(tb, 30*time.Second, "no leader", func() bool {
		for i, n := range l.nodes {
			if n.IsLeader() {
				at = i
				return true
			}
		}
		return false
	})
	return at
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkApply: commit latency of one write at one connection (the
// caller waits for each before the next), through a three-node cluster
// with fsync, by size; 64 MiB goes as 64 pieces and a commit. It also
// reports the replication lag: from Apply returning on the leader to the
// version being visible in a follower's mapping.
//
// commit= is Config.CommitTimeout: Raft's default of 50 ms against this
// package's 1 ms, side by side.
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct {
		size   int
		commit time.Duration
	}{{4 << 10, 50 * time.Millisecond}, {4 << 10, time.Millisecond}, {1 << 20, time.Millisecond}, {64 << 20, time.Millisecond}} {
		size := bc.size
		b.Run(fmt.Sprintf("size=%s/commit=%v", sizeName(size), bc.commit), func(b *testing.B) {
			l := startLocal(b, 3, func(c *Config) { c.CommitTimeout = bc.commit })
			li := l.leader(b)
			leader, fh := l.nodes[li], l.hosts[(li+1)%3]
			ctx := context.Background()
			if _, err := leader.Apply(ctx, Command{Op: OpCreate, ID: "bench", Size: int64(max(size, 4096)), Layout: region.Raw}); err != nil {
				b.Fatal(err)
			}
			shmtest.CheckFor(b, 30*time.Second, "region not on the follower", func() bool { _, err := fh.Get("bench"); return err == nil })
			fr, _ := fh.Get("bench")
			data := make([]byte, size)
			var lat, lag []time.Duration
			elections := 0
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data[0] = byte(i)
				t0 := time.Now()
				v, err := leader.Apply(ctx, Command{Op: OpWrite, ID: "bench", Data: data})
				if errors.Is(err, ErrNotLeader) || errors.Is(err, shmerr.ErrUnknownOutcome) {
					// The machine is shared: a busy moment can cost the
					// leader its lease. Count it, and go on with the next.
					if elections++; elections > 10 {
						b.Fatalf("%d elections: %v", elections, err)
					}
					li = l.leader(b)
					leader, fh = l.nodes[li], l.hosts[(li+1)%3]
					fr, _ = fh.Get("bench")
					i--
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				lat = append(lat, t1.Sub(t0))
				// Poll the follower's mapped version (bounded), yielding
				// so as not to starve the nodes of the two cores.
				for ; ; runtime.Gosched() {
					var fv uint64
					fr.Do(func(rr *region.Region) error { fv = rr.Version(); return nil })
					if fv >= v {
						break
					}
					if time.Since(t1) > 10*time.Second {
						b.Fatalf("follower stuck at version %d, leader at %d", fv, v)
					}
				}
				lag = append(lag, time.Since(t1))
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-us")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-us")
			b.ReportMetric(float64(percentile(lag, 0.5).Microseconds()), "lag-p50-us")
			b.ReportMetric(float64(percentile(lag, 0.99).Microseconds()), "lag-p99-us")
			b.ReportMetric(float64(elections), "elections")
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkApplyParallel: throughput of 4 KiB writes from 50 concurrent
// callers on the leader; Raft batches the entries of concurrent callers
// into one append and one fsync.
func BenchmarkApplyParallel(b *testing.B) {
	const conns = 50
	l := startLocal(b, 3, nil)
	leader := l.nodes[l.leader(b)]
	ctx := context.Background()
	if _, err := leader.Apply(ctx, Command{Op: OpCreate, ID: "bench", Size: 1 << 20, Layout: region.Raw}); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4096)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < b.N; i += conns {
				if _, err := leader.Apply(ctx, Command{Op: OpWriteAt, ID: "bench", Off: int64(c * 4096), Data: data}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkLocalRead: a 4 KiB seqlock read of a region on a follower of a
// three-node cluster against the same read on a single host, side by side:
// replication adds nothing to the read path.
func BenchmarkLocalRead(b *testing.B) {
	read := func(b *testing.B, r *host.Region) {
		var buf []byte
		b.SetBytes(4096)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r.Do(func(rr *region.Region) (err error) {
				buf, _, err = rr.AppendContent(buf[:0])
				return err
			})
		}
	}
	b.Run("host=single", func(b *testing.B) {
		h := openHost(b)
		r, err := h.Create("bench", host.CreateOptions{Size: 4096, Layout: region.Raw})
		if err != nil {
			b.Fatal(err)
		}
		read(b, r)
	})
	b.Run("host=follower", func(b *testing.B) {
		l := startLocal(b, 3, nil)
		li := l.leader(b)
		if _, err := l.nodes[li].Apply(context.Background(), Command{Op: OpCreate, ID: "bench", Size: 4096, Layout: region.Raw}); err != nil {
			b.Fatal(err)
		}
		fh := l.hosts[(li+1)%3]
		var r *host.Region
		shmtest.CheckFor(b, 30*time.Second, "region not on the follower", func() bool { var err error; r, err = fh.Get("bench"); return err == nil })
		read(b, r)
	})
}

// BenchmarkApplyFollower: a write through a follower at one connection,
// by size: forwarded to the leader, committed, and applied on the
// follower before Apply returns (it waits for the entry's log index).
// The difference from BenchmarkApply's p50 is the forwarding and the
// follower learning of the commit (the leader's next AppendEntries, at
// most two CommitTimeouts later when nothing else is written).
func BenchmarkApplyFollower(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 20} {
		b.Run("size="+sizeName(size), func(b *testing.B) {
			l := startLocal(b, 3, nil)
			li := l.leader(b)
			f := l.nodes[(li+1)%3]
			knowsLeader(b, f)
			ctx := context.Background()
			if _, err := f.Apply(ctx, Command{Op: OpCreate, ID: "bench", Size: int64(max(size, 4096)), Layout: region.Raw}); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, size)
			var lat []time.Duration
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data[0] = byte(i)
				t0 := time.Now()
				if _, err := f.Apply(ctx, Command{Op: OpWrite, ID: "bench", Data: data}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-us")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-us")
		})
	}
}
