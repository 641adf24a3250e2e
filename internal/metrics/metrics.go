// Package metrics counts what a host does and writes it in the Prometheus
// text exposition format. Counters are atomic and cost one atomic add on
// the hot path; there is no registry and no dependency.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down.
type Gauge struct{ v atomic.Int64 }

// Add adds n (which may be negative).
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Load returns the value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// Buckets are the upper bounds of latency histograms, in seconds: 1 µs to
// 10 s, three per decade.
var Buckets = []float64{
	1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
	1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Histogram counts observations into Buckets.
type Histogram struct {
	counts [23]atomic.Uint64 // len(Buckets)+1: the last is +Inf
	sumNS  atomic.Uint64
}

// Observe records a duration.
func (h *Histogram) Observe(d time.Duration) { h.ObserveN(d, 1) }

// ObserveN records n observations of d each.
func (h *Histogram) ObserveN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	i := sort.SearchFloat64s(Buckets, d.Seconds())
	h.counts[i].Add(n)
	h.sumNS.Add(uint64(max(d, 0)) * n)
}

// Set is a family of counters, gauges or histograms told apart by one
// label. It creates members on first use and is safe for concurrent use.
type Set[T any] struct {
	mu sync.RWMutex
	m  map[string]*T
}

// Get returns the member for the label value.
func (s *Set[T]) Get(label string) *T {
	s.mu.RLock()
	v, ok := s.m[label]
	s.mu.RUnlock()
	if ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*T{}
	}
	if v, ok = s.m[label]; !ok {
		v = new(T)
		s.m[label] = v
	}
	return v
}

func (s *Set[T]) each(fn func(label string, v *T)) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	for _, k := range keys {
		fn(k, s.Get(k))
	}
}

// MaxKinds bounds the number of commands and of outcomes the request
// tables hold.
const MaxKinds = 32

// Host holds every metric a host exports. Its zero value is ready to use
// once CommandNames and OutcomeNames are set.
type Host struct {
	// CommandNames names the commands by index; OutcomeNames names the
	// outcomes by index (0 must be "ok").
	CommandNames, OutcomeNames []string
	// Requests counts requests by [command][outcome] index.
	Requests [MaxKinds][MaxKinds]Counter
	// Latency by command index.
	Latency [MaxKinds]Histogram
	// BytesIn and BytesOut count payload bytes received and sent.
	BytesIn, BytesOut Counter
	// Connections open now, and accepted in all.
	Connections      Gauge
	ConnectionsTotal Counter
	// Watchers open now; Events pushed.
	Watchers Gauge
	Events   Counter
	// LockTimeouts counts writes that gave up waiting for a lock;
	// LockWaits counts lease grants that had to wait.
	LockTimeouts Counter
	// AuthFailures counts AUTH with a wrong or missing token.
	AuthFailures Counter
	// LimitRefusals by limit name.
	LimitRefusals Set[Counter]
	// SpinFound counts reads that spun (busy polling) and found the next
	// request; SpinSlept those that spun in vain, then slept.
	SpinFound, SpinSlept Counter
}

// Request records one request: its command and outcome indexes and how
// long it took.
func (h *Host) Request(cmd, outcome int, d time.Duration) {
	h.RequestsN(cmd, outcome, 1, d)
}

// RequestsN records n requests with the same command and outcome that
// took d each.
func (h *Host) RequestsN(cmd, outcome int, n uint64, d time.Duration) {
	if cmd < 0 || cmd >= MaxKinds || outcome < 0 || outcome >= MaxKinds || n == 0 {
		return
	}
	h.Requests[cmd][outcome].Add(n)
	h.Latency[cmd].ObserveN(d, n)
}

func name(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return strconv.Itoa(i)
}

// WriteText writes every metric in the Prometheus text format.
func (h *Host) WriteText(w io.Writer) error {
	var b strings.Builder
	head := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	head("shmgr_requests_total", "counter", "Requests handled, by command and outcome (ok or the error code).")
	for c := range MaxKinds {
		for o := range MaxKinds {
			if n := h.Requests[c][o].Load(); n > 0 {
				fmt.Fprintf(&b, "shmgr_requests_total{command=%q,outcome=%q} %d\n", name(h.CommandNames, c), name(h.OutcomeNames, o), n)
			}
		}
	}
	head("shmgr_request_duration_seconds", "histogram", "Time to handle a request, by command (requests of one command pipelined back to back are timed together and counted at their mean).")
	for c := range MaxKinds {
		hist := &h.Latency[c]
		var total uint64
		for i := range hist.counts {
			total += hist.counts[i].Load()
		}
		if total == 0 {
			continue
		}
		cmd := name(h.CommandNames, c)
		var cum uint64
		for i, ub := range Buckets {
			cum += hist.counts[i].Load()
			fmt.Fprintf(&b, "shmgr_request_duration_seconds_bucket{command=%q,le=%q} %d\n", cmd, formatFloat(ub), cum)
		}
		cum += hist.counts[len(Buckets)].Load()
		fmt.Fprintf(&b, "shmgr_request_duration_seconds_bucket{command=%q,le=\"+Inf\"} %d\n", cmd, cum)
		fmt.Fprintf(&b, "shmgr_request_duration_seconds_sum{command=%q} %s\n", cmd, formatFloat(float64(hist.sumNS.Load())/1e9))
		fmt.Fprintf(&b, "shmgr_request_duration_seconds_count{command=%q} %d\n", cmd, cum)
	}
	head("shmgr_payload_bytes_total", "counter", "Payload bytes, by direction.")
	fmt.Fprintf(&b, "shmgr_payload_bytes_total{direction=\"in\"} %d\n", h.BytesIn.Load())
	fmt.Fprintf(&b, "shmgr_payload_bytes_total{direction=\"out\"} %d\n", h.BytesOut.Load())
	head("shmgr_connections", "gauge", "Open client connections.")
	fmt.Fprintf(&b, "shmgr_connections %d\n", h.Connections.Load())
	head("shmgr_connections_total", "counter", "Client connections accepted.")
	fmt.Fprintf(&b, "shmgr_connections_total %d\n", h.ConnectionsTotal.Load())
	head("shmgr_watchers", "gauge", "Open watches.")
	fmt.Fprintf(&b, "shmgr_watchers %d\n", h.Watchers.Load())
	head("shmgr_events_total", "counter", "Change events pushed to watchers.")
	fmt.Fprintf(&b, "shmgr_events_total %d\n", h.Events.Load())
	head("shmgr_lock_timeouts_total", "counter", "Writes and LOCKs that gave up waiting for a region's lock.")
	fmt.Fprintf(&b, "shmgr_lock_timeouts_total %d\n", h.LockTimeouts.Load())
	head("shmgr_auth_failures_total", "counter", "AUTH requests with a wrong token, and requests refused for lack of one.")
	fmt.Fprintf(&b, "shmgr_auth_failures_total %d\n", h.AuthFailures.Load())
	head("shmgr_limit_refusals_total", "counter", "Requests and connections refused by a limit, by limit.")
	h.LimitRefusals.each(func(k string, c *Counter) {
		fmt.Fprintf(&b, "shmgr_limit_refusals_total{limit=%q} %d\n", k, c.Load())
	})
	head("shmgr_busy_poll_reads_total", "counter", "Reads that spun waiting for a lone client's next request (--busy-poll), by whether it came during the spin.")
	fmt.Fprintf(&b, "shmgr_busy_poll_reads_total{outcome=\"found\"} %d\n", h.SpinFound.Load())
	fmt.Fprintf(&b, "shmgr_busy_poll_reads_total{outcome=\"slept\"} %d\n", h.SpinSlept.Load())
	_, err := io.WriteString(w, b.String())
	return err
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
