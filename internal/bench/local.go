package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shmgr/shmgr/client"
)

// localBatch is how many local operations share one pair of timestamps:
// a 4 KiB copy takes about as long as reading the clock twice, so timing
// each one would measure the clock.
const localBatch = 64

// runLocal runs local-read or local-write (through the client library on a
// directly mapped region) or memcpy (the ceiling: a plain copy of the same
// bytes).
func runLocal(ctx context.Context, cfg Config, test string) (Result, error) {
	payload := bytes.Repeat([]byte{'x'}, cfg.Size)
	var regions []*client.Region
	if test != "memcpy" {
		if cfg.Protocol != "shmgr" {
			return Result{}, fmt.Errorf("%s needs a shmgr host", test)
		}
		if err := prepare(ctx, cfg); err != nil {
			return Result{}, err
		}
		o := client.DefaultOptions()
		o.Mode, o.Token = client.ModeLocal, cfg.Token
		if cfg.Fingerprint != "" {
			tc, err := client.PinnedTLS(cfg.Fingerprint)
			if err != nil {
				return Result{}, err
			}
			o.TLS = tc
		}
		for range cfg.Conns {
			r, err := client.Dial(ctx, cfg.Addr, cfg.ID, o)
			if err != nil {
				for _, r := range regions {
					r.Close()
				}
				return Result{}, fmt.Errorf("local mode: %w", err)
			}
			regions = append(regions, r)
		}
		defer func() {
			for _, r := range regions {
				r.Close()
			}
		}()
	}
	b := newBudget(cfg)
	hists := make([]Hist, cfg.Conns)
	var errs errorList
	start := time.Now()
	var wg, pwg sync.WaitGroup
	stop := make(chan struct{})
	pwg.Add(1)
	go progress(cfg, test, b, start, stop, &pwg)
	for i := range cfg.Conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dst := make([]byte, 0, cfg.Size)
			mem := make([]byte, cfg.Size)
			for ctx.Err() == nil {
				n := b.take(localBatch)
				if n == 0 {
					return
				}
				t0 := time.Now()
				for range n {
					var err error
					switch test {
					case "memcpy":
						copy(mem, payload)
					case "local-read":
						dst, _, err = regions[i].AppendRead(ctx, dst[:0])
					case "local-write":
						_, err = regions[i].Write(ctx, payload)
					}
					if err != nil {
						errs.add(err)
						return
					}
				}
				hists[i].AddN(time.Since(t0)/time.Duration(n), uint64(n))
				b.done.Add(uint64(n))
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	pwg.Wait()
	var h Hist
	for i := range hists {
		h.Merge(&hists[i])
	}
	c := cfg
	c.Protocol = "local"
	if test == "memcpy" {
		c.Protocol = "memory"
	}
	c.Pipeline = 1
	return result(c, test, &h, 0, elapsed), errs.err()
}

// runWatch measures write-to-notification latency: one writer commits,
// cfg.Watchers watchers (each on its own connection, or mapping the region
// when WatchLocal is set) receive; every delivery's latency is measured from
// just before the write. The writer waits for every watcher to see each
// version before the next write, so no event is coalesced away.
func runWatch(ctx context.Context, cfg Config) (Result, error) {
	if err := prepare(ctx, cfg); err != nil {
		return Result{}, err
	}
	o := client.DefaultOptions()
	o.Mode, o.Token = client.ModeTCP, cfg.Token
	if cfg.Fingerprint != "" {
		tc, err := client.PinnedTLS(cfg.Fingerprint)
		if err != nil {
			return Result{}, err
		}
		o.TLS = tc
	}
	wo := o
	if cfg.WatchLocal {
		wo.Mode = client.ModeLocal
	}
	writer, err := client.Dial(ctx, cfg.Addr, cfg.ID, o)
	if err != nil {
		return Result{}, err
	}
	defer writer.Close()
	payload := bytes.Repeat([]byte{'w'}, cfg.Size)
	v0, err := writer.Write(ctx, payload)
	if err != nil {
		return Result{}, err
	}
	type watcher struct {
		r *client.Region
		w *client.Watcher
	}
	ws := make([]watcher, cfg.Watchers)
	for i := range ws {
		r, err := client.Dial(ctx, cfg.Addr, cfg.ID, wo)
		if err == nil {
			ws[i].r = r
			ws[i].w, err = r.Watch(ctx, client.WatchOptions{From: v0, HasFrom: true})
		}
		if err != nil {
			for _, x := range ws[:i+1] {
				if x.w != nil {
					x.w.Close()
				}
				if x.r != nil {
					x.r.Close()
				}
			}
			return Result{}, fmt.Errorf("watcher %d: %w", i+1, err)
		}
	}
	defer func() {
		for _, x := range ws {
			x.w.Close()
			x.r.Close()
		}
	}()
	writes := cfg.Requests
	if writes <= 0 {
		writes = 1000
	}
	var (
		mu   sync.Mutex
		h    Hist
		sent = map[uint64]time.Time{}
	)
	seen := make(chan struct{}, cfg.Watchers)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, x := range ws {
		wg.Add(1)
		go func(w *client.Watcher) {
			defer wg.Done()
			for {
				ev, err := w.Next(wctx)
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				if t0, ok := sent[ev.Version]; ok {
					h.Add(now.Sub(t0))
				}
				mu.Unlock()
				seen <- struct{}{}
			}
		}(x.w)
	}
	start := time.Now()
	for i := range writes {
		mu.Lock()
		t0 := time.Now()
		sent[v0+uint64(i)+1] = t0
		mu.Unlock()
		if _, err := writer.Write(ctx, payload); err != nil {
			return Result{}, err
		}
		for range cfg.Watchers {
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				return Result{}, fmt.Errorf("a watcher missed version %d for 10s", v0+uint64(i)+1)
			}
		}
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	c := cfg
	c.Conns = cfg.Watchers
	return result(c, "watch", &h, 0, elapsed), nil
}
