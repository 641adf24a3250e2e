package main_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// benchResult is the JSON of one test of "shmgr bench --json", as a
// script reads it.
type benchResult struct {
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
}

// runBench runs "shmgr bench --json ARGS" and returns its results.
func runBench(t *testing.T, args ...string) []benchResult {
	t.Helper()
	out, errOut, code := shmtest.Run(t, nil, append([]string{"bench", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("shmgr bench %v: exit %d: %s", args, code, errOut)
	}
	var res []benchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("shmgr bench %v: JSON: %v\n%s", args, err, out)
	}
	return res
}

// checkResults checks one result per test, in order, each sane: the
// requests asked for (when want > 0), no errors, a rate, and quantiles in
// order.
func checkResults(t *testing.T, what string, res []benchResult, tests []string, want uint64) {
	t.Helper()
	if len(res) != len(tests) {
		t.Fatalf("%s: %d results, want %d (%v): %+v", what, len(res), len(tests), tests, res)
	}
	for i, r := range res {
		q := []float64{r.P50us, r.P90us, r.P99us, r.P999us, r.MaxUs}
		ordered := q[0] > 0
		for j := 1; j < len(q); j++ {
			ordered = ordered && q[j-1] <= q[j]
		}
		if r.Test != tests[i] || r.Errors != 0 || r.OpsPerSec <= 0 || r.Seconds <= 0 || !ordered || want > 0 && r.Requests != want {
			t.Errorf("%s: result %d = %+v; want test %s, %d requests, no errors, a rate and p50 <= p90 <= p99 <= p99.9 <= max", what, i, r, tests[i], want)
		}
	}
}

// TestBench runs the load generator against a host process: the network
// tests with connections, pipelining and value size as asked, the local
// and watch tests, the table, and no progress line when the output is
// not a terminal.
func TestBench(t *testing.T) {
	t.Parallel()
	h := startHost(t)

	res := runBench(t, "-q", "--host", h.Addr, "-t", "read,write,mixed", "-c", "2", "-P", "4", "-d", "64", "-n", "400")
	checkResults(t, "network", res, []string{"read", "write", "mixed"}, 400)
	for _, r := range res {
		if r.Protocol != "shmgr" || r.Conns != 2 || r.Pipeline != 4 || r.Size != 64 {
			t.Errorf("%s: protocol %s, -c %d, -P %d, -d %d; want shmgr, 2, 4, 64", r.Test, r.Protocol, r.Conns, r.Pipeline, r.Size)
		}
	}
	// The region it made and wrote: raw, -d bytes.
	if got := h.MustCLI(t, "read", "--id", "bench"); got != strings.Repeat("x", 64) {
		t.Errorf("after the write test the bench region holds %q, want 64 x", got)
	}

	res = runBench(t, "-q", "--host", h.Addr, "--id", "lb", "-t", "local-read,local-write,memcpy", "-c", "1", "-d", "4096", "-n", "2000")
	checkResults(t, "local", res, []string{"local-read", "local-write", "memcpy"}, 2000)

	res = runBench(t, "-q", "--host", h.Addr, "--id", "wb", "-t", "watch", "--watchers", "3", "-d", "16", "-n", "40")
	checkResults(t, "watch", res, []string{"watch"}, 0)
	if res[0].Requests < 40 {
		t.Errorf("watch: %d notifications measured for 40 writes to 3 watchers, want at least 40", res[0].Requests)
	}

	// The table, and no progress line on a pipe.
	out, errOut, code := shmtest.Run(t, nil, "bench", "--host", h.Addr, "-t", "read", "-c", "1", "-n", "200", "-d", "64")
	if code != 0 || !strings.Contains(out, "ops/s") || !strings.Contains(out, "p99.9 µs") || !strings.Contains(out, "read") {
		t.Errorf("bench table: exit %d, %q", code, out)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("bench printed a progress line to a pipe: %q", errOut)
	}
}

// TestBenchProgress checks the live progress line on a terminal (a
// pseudo-terminal made by script(1)).
func TestBenchProgress(t *testing.T) {
	t.Parallel()
	scriptPath, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed: no pseudo-terminal to test the progress line on")
	}
	h := startHost(t)
	cmd := shmtest.Binary(t) + " bench --host " + h.Addr + " -t read -c 1 --duration 700ms -d 64"
	out, err := exec.Command(scriptPath, "-qec", cmd, "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("script -c %q: %v\n%s", cmd, err, out)
	}
	s := string(out)
	if !strings.Contains(s, "\rread") || !strings.Contains(s, "requests") || !strings.Contains(s, "\r\x1b[K") {
		t.Errorf("on a terminal, bench showed no progress line (\\r read ... requests ... ops/s, then cleared): %q", s)
	}
}

// startEcho runs "shmgr bench --serve-echo" on loopback and returns its
// address.
func startEcho(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(shmtest.Binary(t), "bench", "--serve-echo", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "echo server listening on ")
	if err != nil || !ok {
		t.Fatalf("echo server said %q, %v", line, err)
	}
	return addr
}

// startRedis runs redis-server on a free loopback port, without
// persistence, and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (.ci/run installs it)")
	}
	port := freePort(t)
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	shmtest.CheckFor(t, 10*time.Second, "redis-server did not listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// TestBenchOtherServers drives the bare echo server and Redis with the
// same generator, as the comparison does.
func TestBenchOtherServers(t *testing.T) {
	t.Parallel()
	res := runBench(t, "-q", "--protocol", "echo", "--host", startEcho(t), "-t", "echo", "-c", "2", "-P", "2", "-d", "32", "-n", "300")
	checkResults(t, "echo", res, []string{"echo"}, 300)

	res = runBench(t, "-q", "--protocol", "redis", "--host", startRedis(t), "-t", "read,write", "-c", "2", "-P", "4", "-d", "64", "-n", "400")
	checkResults(t, "redis", res, []string{"read", "write"}, 400)
	if res[0].Protocol != "redis" {
		t.Errorf("redis result protocol %q", res[0].Protocol)
	}
}

// TestBenchFlagErrors checks that bad flags are usage errors that say
// what is wrong, found before any test runs.
func TestBenchFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "10", "--duration", "1s"}, "give -n or --duration, not both"},
		{[]string{"-c", "0"}, "-c 0: want at least 1 connection"},
		{[]string{"-P", "0"}, "-P 0: want at least 1 request in flight"},
		{[]string{"-d", "-1"}, "-d -1: the value size cannot be negative"},
		{[]string{"-n", "0"}, "-n 0: want at least 1 request"},
		{[]string{"--duration", "-1s"}, "--duration -1s: must be positive"},
		{[]string{"--watchers", "0"}, "--watchers 0: want at least 1"},
		{[]string{"--protocol", "memcached"}, `--protocol "memcached": use shmgr, redis, echo`},
		{[]string{"-t", "read,bogus"}, `unknown test "bogus": use read, write, mixed, echo`},
		{[]string{"--protocol", "etcd", "-P", "4"}, "-P 4: etcd is driven with one request in flight per connection"},
		{[]string{"-t", "lag"}, "-t lag needs --follower ADDR"},
	} {
		// No host listens at this address: a refusal there would mean the
		// flags were not checked first.
		args := append([]string{"bench", "--host", "127.0.0.1:1"}, tc.args...)
		out, errOut, code := shmtest.Run(t, nil, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("bench %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}
