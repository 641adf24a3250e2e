package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// BenchmarkWatchLatency measures how long a committed write takes to reach
// its watchers: from just before Write to each watcher's Next returning
// that version. The writer maps the region (a local write costs a few
// microseconds), so the numbers are the notification path: for mode=tcp
// the host's hub wakes on the futex and pushes an EVENT to every watcher's
// connection; for mode=local each watcher sleeps on the futex itself.
//
// One op is one write, delivered to every watcher before the next write.
// p50-us, p99-us and max-us are over every (write, watcher) delivery;
// last-p50-us and last-p99-us are the time until the last watcher of a
// write had it.
func BenchmarkWatchLatency(b *testing.B) {
	h := shmtest.StartHost(b, "--quiet")
	c := connect(b, h.Addr, client.ModeTCP)
	cases := []struct {
		mode     client.Mode
		watchers int
	}{
		{client.ModeTCP, 1},
		{client.ModeTCP, 100},
		{client.ModeTCP, 1000},
		{client.ModeLocal, 1},
		{client.ModeLocal, 10},
	}
	for i, bc := range cases {
		b.Run(fmt.Sprintf("mode=%v/watchers=%d", bc.mode, bc.watchers), func(b *testing.B) {
			if bc.watchers > 100 && testing.Short() {
				b.Skip("1000 watchers: skipped in -short mode")
			}
			benchWatchLatency(b, h, c, fmt.Sprintf("watchbench-%d", i), bc.mode, bc.watchers)
		})
	}
}

// watchTarget is the write every watcher waits for.
type watchTarget struct {
	version atomic.Uint64
	start   atomic.Int64 // time.Now().UnixNano() just before the Write
}

func benchWatchLatency(b *testing.B, h *shmtest.Host, c *client.Conn, id string, mode client.Mode, watchers int) {
	ctx := b.Context()
	if _, err := c.Create(ctx, id, client.CreateOptions{Size: 4096}); err != nil {
		b.Fatalf("Create(%q): %v", id, err)
	}
	writer := dial(b, h.Addr, id, client.ModeLocal)
	src := dial(b, h.Addr, id, mode) // the watchers' Region

	// Start the watchers, a few at a time (each remote one dials its own
	// connection), and take each one's first event, the current state.
	ws := make([]*client.Watcher, watchers)
	var setup sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, watchers)
	for i := range ws {
		setup.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			w, err := src.Watch(ctx, client.WatchOptions{})
			if err != nil {
				errs <- fmt.Errorf("watcher %d: Watch: %w", i, err)
				return
			}
			ws[i] = w
			if _, err := w.Next(ctx); err != nil {
				errs <- fmt.Errorf("watcher %d: first Next: %w", i, err)
			}
		})
	}
	setup.Wait()
	b.Cleanup(func() {
		for _, w := range ws {
			if w != nil {
				w.Close()
			}
		}
	})
	// Registered after the watchers' Close, so it runs first: deleting a
	// region stops its hub at once, while a hub whose last watcher has
	// gone sleeps until its next wake-up.
	b.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Delete(dctx, id); err != nil {
			b.Errorf("cleanup: Delete(%q): %v", id, err)
		}
	})
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	// Each watcher goroutine records its delivery latencies and reports
	// every delivery of the target version on got.
	var target watchTarget
	got := make(chan struct{}, watchers)
	lat := make([][]time.Duration, watchers)
	var running sync.WaitGroup
	wctx, stop := context.WithCancel(ctx)
	defer func() { stop(); running.Wait() }()
	for i, w := range ws {
		lat[i] = make([]time.Duration, 0, b.N)
		running.Go(func() {
			for {
				ev, err := w.Next(wctx)
				now := time.Now().UnixNano()
				if err != nil {
					return
				}
				if ev.Version == target.version.Load() {
					lat[i] = append(lat[i], time.Duration(now-target.start.Load()))
					got <- struct{}{}
				}
			}
		})
	}

	msg := []byte("watch me")
	last := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		// Set the target first: the version is known once Write returns,
		// so watchers compare against the version to come.
		v0, err := writer.Version(ctx)
		if err != nil {
			b.Fatal(err)
		}
		target.version.Store(v0 + 1)
		t0 := time.Now()
		target.start.Store(t0.UnixNano())
		v, err := writer.Write(ctx, msg)
		if err != nil {
			b.Fatal(err)
		}
		if v != v0+1 {
			b.Fatalf("write %d: version %d, want %d (another writer?)", n, v, v0+1)
		}
		timeout := time.NewTimer(30 * time.Second)
		for k := range watchers {
			select {
			case <-got:
			case <-timeout.C:
				b.Fatalf("write %d (version %d): %d of %d watchers had it after 30s", n, v, k, watchers)
			}
		}
		timeout.Stop()
		last = append(last, time.Since(t0))
	}
	b.StopTimer()

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) != b.N*watchers {
		b.Fatalf("%d deliveries, want %d", len(all), b.N*watchers)
	}
	slices.Sort(all)
	slices.Sort(last)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(percentile(all, 50)), "p50-us")
	b.ReportMetric(us(percentile(all, 99)), "p99-us")
	b.ReportMetric(us(all[len(all)-1]), "max-us")
	b.ReportMetric(us(percentile(last, 50)), "last-p50-us")
	b.ReportMetric(us(percentile(last, 99)), "last-p99-us")
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}
