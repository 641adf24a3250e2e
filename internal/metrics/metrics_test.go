package metrics

import (
	"bufio"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bucketOf returns the index of the bucket Observe put one observation of
// d in.
func bucketOf(t *testing.T, d time.Duration) int {
	t.Helper()
	var h Histogram
	h.Observe(d)
	at := -1
	for i := range h.counts {
		if n := h.counts[i].Load(); n == 1 && at < 0 {
			at = i
		} else if n != 0 {
			t.Fatalf("Observe(%v) touched bucket %d as well", d, i)
		}
	}
	if at < 0 {
		t.Fatalf("Observe(%v) counted nothing", d)
	}
	return at
}

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	if len(Buckets)+1 != len(new(Histogram).counts) {
		t.Fatalf("%d buckets but %d counters; want one more counter, for +Inf", len(Buckets), len(new(Histogram).counts))
	}
	for i := 1; i < len(Buckets); i++ {
		if Buckets[i] <= Buckets[i-1] {
			t.Fatalf("Buckets not increasing at %d: %v <= %v", i, Buckets[i], Buckets[i-1])
		}
	}
	inf := len(Buckets)
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Nanosecond, 0},
		{time.Microsecond, 0}, // le is inclusive: exactly 1µs is in le="1e-06"
		{time.Microsecond + 1, 1},
		{2500 * time.Nanosecond, 1},
		{2501 * time.Nanosecond, 2},
		{time.Millisecond, 9},
		{999 * time.Microsecond, 9},
		{time.Second, 18},
		{time.Second + 1, 19},
		{10 * time.Second, inf - 1},
		{10*time.Second + 1, inf},
		{time.Hour, inf},
		{math.MaxInt64, inf},
	}
	for _, tt := range tests {
		if got := bucketOf(t, tt.d); got != tt.want {
			le := "+Inf"
			if got < len(Buckets) {
				le = formatFloat(Buckets[got])
			}
			t.Errorf("Observe(%v) went to bucket %d (le=%s), want %d", tt.d, got, le, tt.want)
		}
	}
	// Every positive duration lands in the first bucket whose bound it
	// does not exceed.
	for i, ub := range Buckets {
		d := time.Duration(ub * 1e9)
		if got := bucketOf(t, d); got != i {
			t.Errorf("Observe(%v), exactly bucket %d's bound, went to %d", d, i, got)
		}
	}
}

func TestHistogramSum(t *testing.T) {
	t.Parallel()
	var h Histogram
	h.Observe(1500 * time.Millisecond)
	h.Observe(-time.Second) // counted, but adds nothing to the sum
	h.Observe(500 * time.Millisecond)
	if got := h.sumNS.Load(); got != uint64(2*time.Second) {
		t.Errorf("sum = %d ns, want 2e9", got)
	}
}

// sample is one line of the text format.
type sample struct {
	name   string
	labels string // inside the braces, as written
	value  float64
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^{}]*)\})? (\S+)$`)
var labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"$`)

// parseText checks the Prometheus text format: every sample belongs to a
// family announced by HELP and then TYPE, labels are well formed, values
// are numbers, and no series repeats. It returns the samples and each
// family's type.
func parseText(t *testing.T, text string) ([]sample, map[string]string) {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("output does not end with a newline")
	}
	types := map[string]string{}
	helps := map[string]bool{}
	seen := map[string]bool{}
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# HELP "):
			f := strings.SplitN(l, " ", 4)
			if len(f) < 4 || f[3] == "" {
				t.Errorf("line %d: HELP without text: %q", n, l)
				continue
			}
			helps[f[2]] = true
		case strings.HasPrefix(l, "# TYPE "):
			f := strings.Fields(l)
			if len(f) != 4 {
				t.Errorf("line %d: malformed TYPE: %q", n, l)
				continue
			}
			if !helps[f[2]] {
				t.Errorf("line %d: TYPE %s before its HELP", n, f[2])
			}
			if _, dup := types[f[2]]; dup {
				t.Errorf("line %d: family %s declared twice", n, f[2])
			}
			switch f[3] {
			case "counter", "gauge", "histogram":
			default:
				t.Errorf("line %d: unknown type %q", n, f[3])
			}
			types[f[2]] = f[3]
		case strings.HasPrefix(l, "#") || l == "":
			t.Errorf("line %d: unexpected %q", n, l)
		default:
			m := sampleRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("line %d: not a sample: %q", n, l)
				continue
			}
			s := sample{name: m[1], labels: m[3]}
			v, err := strconv.ParseFloat(m[4], 64)
			if err != nil {
				t.Errorf("line %d: value %q: %v", n, m[4], err)
			}
			s.value = v
			if s.labels != "" {
				for _, kv := range strings.Split(s.labels, ",") {
					if !labelRE.MatchString(kv) {
						t.Errorf("line %d: malformed label %q", n, kv)
					}
				}
			}
			family := s.name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(s.name, suf); ok && types[b] == "histogram" {
					family = b
				}
			}
			if types[family] == "" {
				t.Errorf("line %d: sample of %s before its TYPE", n, family)
			}
			key := s.name + "{" + s.labels + "}"
			if seen[key] {
				t.Errorf("line %d: series %s repeated", n, key)
			}
			seen[key] = true
			out = append(out, s)
		}
	}
	return out, types
}

func newHost() *Host {
	return &Host{
		CommandNames: []string{"NONE", "READ", "WRITE"},
		OutcomeNames: []string{"ok", "bad_request", "unknown_command"},
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	h := newHost()
	h.Request(1, 0, 3*time.Microsecond)  // READ ok, le=5e-06
	h.Request(1, 0, 3*time.Microsecond)  // READ ok
	h.Request(1, 0, 20*time.Millisecond) // READ ok, le=0.025
	h.Request(1, 0, time.Minute)         // READ ok, +Inf only
	h.Request(2, 1, time.Millisecond)    // WRITE bad_request
	h.Request(5, 9, time.Millisecond)    // names beyond the tables are numbers
	h.Request(-1, 0, time.Millisecond)   // out of range: ignored
	h.Request(0, MaxKinds, time.Millisecond)
	h.BytesIn.Add(10)
	h.BytesOut.Add(20)
	h.Connections.Add(3)
	h.Connections.Add(-1)
	h.ConnectionsTotal.Add(7)
	h.Watchers.Add(1)
	h.Events.Inc()
	h.LockTimeouts.Inc()
	h.AuthFailures.Add(4)
	h.LimitRefusals.Get("connections").Add(2)
	h.LimitRefusals.Get("CREATE").Inc()
	h.SpinFound.Add(5)
	h.SpinSlept.Inc()

	var b strings.Builder
	if err := h.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	samples, types := parseText(t, text)
	for fam, typ := range map[string]string{
		"shmgr_requests_total": "counter", "shmgr_request_duration_seconds": "histogram",
		"shmgr_payload_bytes_total": "counter", "shmgr_connections": "gauge", "shmgr_connections_total": "counter",
		"shmgr_watchers": "gauge", "shmgr_events_total": "counter", "shmgr_lock_timeouts_total": "counter",
		"shmgr_auth_failures_total": "counter", "shmgr_limit_refusals_total": "counter",
		"shmgr_busy_poll_reads_total": "counter",
	} {
		if types[fam] != typ {
			t.Errorf("family %s has type %q, want %q", fam, types[fam], typ)
		}
	}
	want := map[string]float64{
		`shmgr_requests_total{command="READ",outcome="ok"}`:                4,
		`shmgr_requests_total{command="WRITE",outcome="bad_request"}`:      1,
		`shmgr_requests_total{command="5",outcome="9"}`:                    1,
		`shmgr_payload_bytes_total{direction="in"}`:                        10,
		`shmgr_payload_bytes_total{direction="out"}`:                       20,
		`shmgr_connections{}`:                                              2,
		`shmgr_connections_total{}`:                                        7,
		`shmgr_watchers{}`:                                                 1,
		`shmgr_events_total{}`:                                             1,
		`shmgr_lock_timeouts_total{}`:                                      1,
		`shmgr_auth_failures_total{}`:                                      4,
		`shmgr_limit_refusals_total{limit="connections"}`:                  2,
		`shmgr_limit_refusals_total{limit="CREATE"}`:                       1,
		`shmgr_busy_poll_reads_total{outcome="found"}`:                     5,
		`shmgr_busy_poll_reads_total{outcome="slept"}`:                     1,
		`shmgr_request_duration_seconds_bucket{command="READ",le="1e-06"}`: 0,
		`shmgr_request_duration_seconds_bucket{command="READ",le="5e-06"}`: 2,
		`shmgr_request_duration_seconds_bucket{command="READ",le="0.01"}`:  2,
		`shmgr_request_duration_seconds_bucket{command="READ",le="0.025"}`: 3,
		`shmgr_request_duration_seconds_bucket{command="READ",le="10"}`:    3,
		`shmgr_request_duration_seconds_bucket{command="READ",le="+Inf"}`:  4,
		`shmgr_request_duration_seconds_count{command="READ"}`:             4,
		`shmgr_request_duration_seconds_count{command="WRITE"}`:            1,
	}
	got := map[string]float64{}
	for _, s := range samples {
		got[s.name+"{"+s.labels+"}"] = s.value
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	if s := got[`shmgr_request_duration_seconds_sum{command="READ"}`]; math.Abs(s-60.020006) > 1e-9 {
		t.Errorf("READ latency sum = %v s, want 60.020006", s)
	}
	// Commands and outcomes that never happened have no series; a command
	// whose requests all fell out of range has no histogram.
	for k := range got {
		if strings.Contains(k, `outcome="unknown_command"`) || strings.Contains(k, `command="NONE"`) {
			t.Errorf("series %s for something that never happened", k)
		}
	}

	// Buckets are cumulative, their bounds increase, and +Inf is _count.
	type hist struct {
		les    []float64
		counts []float64
	}
	hs := map[string]*hist{}
	for _, s := range samples {
		if s.name != "shmgr_request_duration_seconds_bucket" {
			continue
		}
		cmd, le, _ := strings.Cut(s.labels, ",le=")
		le = strings.Trim(le, `"`)
		f, err := strconv.ParseFloat(le, 64)
		if err != nil {
			t.Errorf("bucket bound %q: %v", le, err)
		}
		if hs[cmd] == nil {
			hs[cmd] = &hist{}
		}
		hs[cmd].les = append(hs[cmd].les, f)
		hs[cmd].counts = append(hs[cmd].counts, s.value)
	}
	for cmd, h := range hs {
		if len(h.les) != len(Buckets)+1 || !math.IsInf(h.les[len(h.les)-1], 1) {
			t.Errorf("%s: %d buckets ending at %v, want %d ending at +Inf", cmd, len(h.les), h.les[len(h.les)-1], len(Buckets)+1)
		}
		for i := 1; i < len(h.les); i++ {
			if h.les[i] <= h.les[i-1] || h.counts[i] < h.counts[i-1] {
				t.Errorf("%s: bucket %d (le=%v, %v) does not follow (le=%v, %v)", cmd, i, h.les[i], h.counts[i], h.les[i-1], h.counts[i-1])
			}
		}
		name := strings.TrimPrefix(cmd, "command=")
		if c := got["shmgr_request_duration_seconds_count{command="+name+"}"]; c != h.counts[len(h.counts)-1] {
			t.Errorf("%s: _count %v differs from the +Inf bucket %v", cmd, c, h.counts[len(h.counts)-1])
		}
	}
	if len(hs) != 3 {
		t.Errorf("histograms for %d commands, want 3 (READ, WRITE, 5)", len(hs))
	}
}

func TestWriteTextEmpty(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := newHost().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	samples, types := parseText(t, b.String())
	if len(types) != 11 {
		t.Errorf("%d families declared, want all 11 even with nothing counted", len(types))
	}
	for _, s := range samples {
		if s.value != 0 {
			t.Errorf("fresh host: %s{%s} = %v", s.name, s.labels, s.value)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func TestWriteTextError(t *testing.T) {
	t.Parallel()
	if err := newHost().WriteText(failWriter{}); err == nil {
		t.Errorf("WriteText to a failing writer: no error")
	}
}

// TestConcurrent counts from many goroutines while another writes the
// text (for -race), and checks nothing is lost.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	h := newHost()
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range each {
				h.Request(1, 0, time.Duration(j)*time.Microsecond)
				h.LimitRefusals.Get(fmt.Sprintf("limit%d", (i+j)%4)).Inc()
				h.Connections.Add(1)
				h.Connections.Add(-1)
			}
		})
	}
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var b strings.Builder
			h.WriteText(&b)
		}
	})
	wg.Wait()
	close(stop)
	writer.Wait()
	if n := h.Requests[1][0].Load(); n != workers*each {
		t.Errorf("%d requests counted, want %d", n, workers*each)
	}
	var refusals uint64
	h.LimitRefusals.each(func(_ string, c *Counter) { refusals += c.Load() })
	if refusals != workers*each {
		t.Errorf("%d refusals counted, want %d", refusals, workers*each)
	}
	if c := h.Connections.Load(); c != 0 {
		t.Errorf("connections gauge = %d after balanced adds", c)
	}
}

// FuzzHistogramObserve: any duration lands in exactly one bucket, the
// first whose bound it does not exceed (+Inf past the last), and the
// written histogram stays cumulative.
func FuzzHistogramObserve(f *testing.F) {
	f.Fuzz(func(t *testing.T, ns int64) {
		var h Histogram
		d := time.Duration(ns)
		h.Observe(d)
		s := d.Seconds()
		want := len(Buckets)
		for i, ub := range Buckets {
			if s <= ub {
				want = i
				break
			}
		}
		for i := range h.counts {
			n := h.counts[i].Load()
			if (i == want) != (n == 1) || n > 1 {
				t.Fatalf("Observe(%v): bucket %d holds %d, want the observation in bucket %d only", d, i, n, want)
			}
		}
		if got, wantSum := h.sumNS.Load(), uint64(max(d, 0)); got != wantSum {
			t.Fatalf("Observe(%v): sum %d ns, want %d", d, got, wantSum)
		}
	})
}
