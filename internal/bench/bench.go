// Package bench is shmgr's load generator: it drives a shmgr host (or a
// Redis server, or a bare TCP echo server, with the same code) with many
// connections and pipelined requests, and reports throughput and latency
// quantiles. "shmgr bench" is its command line.
package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one benchmark run.
type Config struct {
	// Addr is the server's address (the leader's, for the lag test).
	Addr string
	// Follower is, for the lag test, the address of a cluster follower on
	// this machine, whose region the test maps; FollowerToken its token.
	Follower, FollowerToken string
	// Protocol is "shmgr", "redis", "echo" or "etcd" (its JSON gateway:
	// read and write only).
	Protocol string
	// ID is the region (shmgr) or key (redis) to use.
	ID string
	// Conns is the number of connections (-c).
	Conns int
	// Pipeline is the number of requests in flight per connection (-P).
	Pipeline int
	// Size is the value size in bytes (-d).
	Size int
	// Requests stops each test after this many requests in all (-n); 0:
	// run for Duration.
	Requests int
	// Duration stops each test after this long when Requests is 0.
	Duration time.Duration
	// Tests to run: read, write, mixed (shmgr, redis; read and write for
	// etcd), echo (echo), local-read, local-write, memcpy, watch, lag
	// (shmgr cluster).
	Tests []string
	// Watchers is the number of watchers for the watch test.
	Watchers int
	// WatchLocal makes the watchers map the region (local mode) instead of
	// watching over TCP.
	WatchLocal bool
	// Token and TLS fingerprint for a protected shmgr host.
	Token, Fingerprint string
	// Progress, if set, is called about 10 times a second with the
	// current test and the requests done so far.
	Progress func(test string, done uint64, elapsed time.Duration)
}

// Result is one test's outcome.
type Result struct {
	Test      string  `json:"test"`
	Protocol  string  `json:"protocol"`
	Conns     int     `json:"conns"`
	Pipeline  int     `json:"pipeline"`
	Size      int     `json:"size"`
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P90us     float64 `json:"p90_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	// CPUus is the server's CPU time per request in µs, when known
	// (filled in by callers that can read the server's accounting).
	CPUus float64 `json:"server_cpu_us,omitempty"`
}

func (c *Config) defaults() error {
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 1
	}
	if c.Size < 0 {
		return fmt.Errorf("-d %d: the value size cannot be negative", c.Size)
	}
	if c.Requests <= 0 && c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Protocol == "" {
		c.Protocol = "shmgr"
	}
	if c.ID == "" {
		c.ID = "bench"
	}
	if c.Watchers <= 0 {
		c.Watchers = 1
	}
	return nil
}

// Tests are the tests Run knows, in the order the CLI lists them.
var Tests = []string{"read", "write", "mixed", "echo", "local-read", "local-write", "memcpy", "watch", "lag"}

// Protocols are the protocols of the network tests.
var Protocols = []string{"shmgr", "redis", "echo", "etcd"}

// CheckTests says which of tests, if any, Run does not know.
func CheckTests(tests []string) error {
	for _, t := range tests {
		if !slices.Contains(Tests, t) {
			return fmt.Errorf("unknown test %q: use %s", t, strings.Join(Tests, ", "))
		}
	}
	return nil
}

// Run runs every test of cfg in order.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := CheckTests(cfg.Tests); err != nil {
		return nil, err
	}
	var out []Result
	for _, t := range cfg.Tests {
		var r Result
		var err error
		switch {
		case cfg.Protocol == "etcd":
			r, err = runEtcd(ctx, cfg, t)
		case t == "lag":
			r, err = runLag(ctx, cfg)
		default:
			r, err = runTest(ctx, cfg, t)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", t, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// runTest runs one test of the shmgr, redis or echo protocol.
func runTest(ctx context.Context, cfg Config, t string) (Result, error) {
	switch t {
	case "read", "write", "mixed", "echo":
		return runNetwork(ctx, cfg, t)
	case "local-read", "local-write", "memcpy":
		return runLocal(ctx, cfg, t)
	case "watch":
		return runWatch(ctx, cfg)
	}
	return Result{}, fmt.Errorf("unknown test %q", t)
}

// result turns a histogram into a Result.
func result(cfg Config, test string, h *Hist, errs uint64, elapsed time.Duration) Result {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return Result{
		Test: test, Protocol: cfg.Protocol, Conns: cfg.Conns, Pipeline: cfg.Pipeline, Size: cfg.Size,
		Requests: h.Count(), Errors: errs, Seconds: elapsed.Seconds(),
		OpsPerSec: float64(h.Count()) / elapsed.Seconds(),
		P50us:     us(h.Quantile(0.5)), P90us: us(h.Quantile(0.9)), P99us: us(h.Quantile(0.99)),
		P999us: us(h.Quantile(0.999)), MaxUs: us(h.Max()),
	}
}

// budget hands out work: either a count of requests or a deadline.
type budget struct {
	left     atomic.Int64
	deadline time.Time
	counted  bool
	done     atomic.Uint64
}

func newBudget(cfg Config) *budget {
	b := &budget{}
	if cfg.Requests > 0 {
		b.counted = true
		b.left.Store(int64(cfg.Requests))
	} else {
		b.deadline = time.Now().Add(cfg.Duration)
	}
	return b
}

// take claims up to n requests; it returns how many may be sent (0: stop).
func (b *budget) take(n int) int {
	if !b.counted {
		if time.Now().After(b.deadline) {
			return 0
		}
		return n
	}
	left := b.left.Add(-int64(n))
	if left >= 0 {
		return n
	}
	if got := n + int(left); got > 0 {
		return got
	}
	return 0
}

// progress reports the budget's progress until stop is closed.
func progress(cfg Config, test string, b *budget, start time.Time, stop chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	if cfg.Progress == nil {
		return
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			cfg.Progress(test, b.done.Load(), time.Since(start))
		}
	}
}

// errorsJoin keeps the first few distinct errors.
type errorList struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
}

func (l *errorList) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(l.errs, "; "))
}
