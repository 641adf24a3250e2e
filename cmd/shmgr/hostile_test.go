//go:build linux

// The hostile-client suite reads the host's memory from /proc and the
// open-file limit from getrlimit: Linux only, the platform the tests run
// on.

package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// hostileCase is one malformed or abusive exchange on its own
// connection: what is sent, and the prefixes of the replies expected
// (after which the connection may be closed by the test).
type hostileCase struct {
	name    string
	send    string
	replies []string
}

// hostileCases are requests a client should never send. Every one must
// get its ERROR (and the connection stay in sync where the protocol says
// it can), never a crash, and never touch a region. None of them may
// succeed in writing: the regions are checked afterwards.
var hostileCases = []hostileCase{
	{"negative-length", "WRITE -5\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"length-overflows-int64", "WRITE 99999999999999999999\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"length-over-limit", "SET canary 9223372036854775807\n", []string{"ERROR too_large "}},
	{"length-hex", "WRITE 0x10\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"range-huge-length", "GET canary 0 9223372036854775807\nPING\n", []string{"ERROR out_of_range ", "PONG"}},
	{"range-huge-offset", "GET canary 9223372036854775807 1\nPING\n", []string{"ERROR out_of_range ", "PONG"}},
	{"range-negative", "GET canary -1 1\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"set-past-end", "SET canary 1 at=65536\nx\nPING\n", []string{"ERROR out_of_range ", "PONG"}},
	{"set-at-negative", "SET canary 1 at=-1\nx\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	// Offsets near the int64 limit that wrap around crash the host:
	// TestHostileRangeOverflow, on hosts of their own.
	{"create-huge", "CREATE hostile size=9223372036854775807\nPING\n", []string{"ERROR ", "PONG"}},
	{"lease-zero", "LOCK canary lease=0\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"version-overflow", "WATCH canary from=18446744073709551616\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"invalid-utf8-verb", "RE\xffAD\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"invalid-utf8-id", "USE caf\xc3\xa9\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"invalid-utf8-write", "WRITE 4\nab\xff\xfe\nPING\n", []string{"ERROR invalid_utf8 ", "PONG"}},
	{"invalid-utf8-set", "SET default 3\n\xc3\x28a\nPING\n", []string{"ERROR invalid_utf8 ", "PONG"}},
	{"overlong-utf8-write", "WRITE 2\n\xc0\xaf\nPING\n", []string{"ERROR invalid_utf8 ", "PONG"}},
	{"surrogate-utf8-write", "WRITE 3\n\xed\xa0\x80\nPING\n", []string{"ERROR invalid_utf8 ", "PONG"}},
	{"nul-in-command", "READ\x00\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"only-nuls", "\x00\x00\x00\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"nul-in-id", "GET can\x00ary\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"tab-separator", "GET\tcanary\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"bad-id-path", "USE ../../etc/passwd\nPING\n", []string{"ERROR bad_id ", "PONG"}},
	{"id-too-long", "GET " + strings.Repeat("a", 65) + "\nPING\n", []string{"ERROR bad_id ", "PONG"}},
	{"line-too-long", strings.Repeat("A", 5000) + "\nPING\n", []string{"ERROR line_too_long ", "PONG"}},
	{"reply-as-request", "VALUE 1 5\nhello\nPING\n", []string{"ERROR unknown_command ", "ERROR unknown_command ", "PONG"}},
	{"empty-lines", "\r\n\n   \n\r\nPING\n", []string{"PONG"}},
	{"payload-wrong-length", "WRITE 2\nabc\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"auth-without-token", "AUTH\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"unknown-option", "SET canary 1 evil=1\nx\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"repeated-option", "SET canary 1 at=0 at=1\nx\nPING\n", []string{"ERROR bad_request ", "PONG"}},
	{"fence-not-held", "SET canary 1 fence=7\nx\nPING\n", []string{"ERROR fenced ", "PONG"}},
	{"unlock-not-held", "UNLOCK canary 1\nPING\n", []string{"ERROR fenced ", "PONG"}},
	{"delete-default", "DELETE default\nPING\n", []string{"ERROR forbidden ", "PONG"}},
	{"truncated-write", "WRITE 100\nabc", nil},
	{"truncated-set", "SET default 10\n", nil},
	{"truncated-line", "GET defa", nil},
	{"truncated-then-close-mid-crlf", "WRITE 3\nabc\r", nil},
}

// hostileStats are numbers the suite reports.
type hostileStats struct {
	garbageConns, garbageBytes atomic.Int64
	halfOpen, halfClosedByHost atomic.Int64
	abandoned                  atomic.Int64
	neverReaderGETs            atomic.Int64
	neverReaderDropped         atomic.Int64 // ns until dropped
	greedyBytes                atomic.Int64
}

// percentile returns the p-th percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// nofile returns the soft limit on open files.
func nofile(t testing.TB) uint64 {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	return rl.Cur
}

// hostileArgs are the host flags of the hostile-client suite.
var hostileArgs = []string{"--read-timeout", "1s", "--write-timeout", "1s"}

// TestHostile attacks one host with every kind of bad client at once,
// for a few seconds, while a well-behaved client keeps reading. The host
// must stay up and answer, the good client keep working, every abusive
// connection go away, and no region change. How fast the good client's
// reads stay and how much memory the host takes meanwhile are figures,
// not pass marks on a shared machine: BenchmarkHostile reports them.
//
// It does not run in parallel with other tests, so that the latencies it
// logs are the host's and not the machine's.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile-client suite skipped in -short mode")
	}
	f := runHostile(t, startHost(t, hostileArgs...))
	if len(f.during) == 0 {
		t.Errorf("the good client made no read during the abuse")
	}
}

// BenchmarkHostile runs the hostile-client suite on a fresh host per
// iteration and reports what TestHostile only logs: the well-behaved
// client's READ p99 before and during the abuse (and their ratio), and
// the host's peak RSS. Run it alone (go test -run '^$' -bench Hostile
// -benchtime 3x ./cmd/shmgr/): docs/PERFORMANCE.md has its figures.
func BenchmarkHostile(b *testing.B) {
	var p99b, p99d, ratio, peak, abandoned float64
	for range b.N {
		f := runHostile(b, shmtest.StartHost(b, hostileArgs...))
		if len(f.during) == 0 {
			b.Fatal("the good client made no read during the abuse")
		}
		pb, pd := percentile(f.before, 0.99), percentile(f.during, 0.99)
		p99b += float64(pb.Microseconds())
		p99d += float64(pd.Microseconds())
		ratio += float64(pd) / float64(max(pb, 1))
		peak += float64(f.peakKiB) / 1024
		abandoned += float64(f.withAbandonedKiB) / 1024
	}
	n := float64(b.N)
	b.ReportMetric(p99b/n, "p99-before-µs")
	b.ReportMetric(p99d/n, "p99-during-µs")
	b.ReportMetric(ratio/n, "p99-during/before")
	b.ReportMetric(peak/n, "rss-peak-MiB")
	b.ReportMetric(abandoned/n, "rss-abandoned-MiB")
}

// hostileFigures are what one run of the suite measured.
type hostileFigures struct {
	before, during []time.Duration // the good client's READ latencies
	peakKiB        int64           // the host's peak RSS during the abuse
	// withAbandonedKiB is the host's RSS with every abandoned connection
	// still open.
	withAbandonedKiB int64
}

// runHostile attacks host h (started with hostileArgs) as TestHostile
// says, fails t on any misbehaviour, and returns the figures.
func runHostile(t testing.TB, h *shmtest.Host) hostileFigures {
	t.Helper()
	pid := hostPID(t, h)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d (garbage and canary content)", seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))

	// The regions that must come out unchanged.
	const defaultText = "before the abuse: ✓ 你好"
	h.MustCLI(t, "write", defaultText)
	h.MustCLI(t, "create", "canary", "--layout", "raw", "--size", "65536")
	canary := make([]byte, 65536)
	for i := range canary {
		canary[i] = byte(rng.Uint32())
	}
	canaryFile := filepath.Join(t.TempDir(), "canary.bin")
	if err := os.WriteFile(canaryFile, canary, 0o600); err != nil {
		t.Fatal(err)
	}
	h.MustCLI(t, "write", "--id", "canary", "--file", canaryFile)
	h.MustCLI(t, "create", "big", "--layout", "raw", "--size", strconv.Itoa(1<<20))
	def := regionInfo(t, h, "default")
	canaryVersion := regionInfo(t, h, "canary").Version

	// The well-behaved client: READ latencies before the abuse.
	good := dialRaw(t, h.Addr)
	wantRead := "OK " + defaultText + "\n"
	readOnce := func() (time.Duration, error) {
		start := time.Now()
		good.deadline()
		if _, err := io.WriteString(good.nc, "READ\n"); err != nil {
			return 0, err
		}
		l, err := good.br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if l != wantRead {
			return 0, fmt.Errorf("READ = %q, want %q", l, wantRead)
		}
		return time.Since(start), nil
	}
	var before []time.Duration
	for range 500 {
		d, err := readOnce()
		if err != nil {
			t.Fatalf("good client before the abuse: %v", err)
		}
		before = append(before, d)
	}
	rssBefore := rssKiB(t, pid)

	// The abuse, all at once.
	var st hostileStats
	var wg sync.WaitGroup
	done := make(chan struct{})
	abuse := func(name string, fn func()) {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %v", name, r)
				}
			}()
			fn()
		})
	}
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", h.Addr, ioTimeout) }

	// Random garbage, seeded: 4 streams of 12 connections, 32 KiB each.
	for g := range 4 {
		r := mrand.New(mrand.NewPCG(seed, uint64(100+g)))
		abuse("garbage", func() {
			for range 12 {
				nc, err := dial()
				if err != nil {
					t.Errorf("garbage: dial: %v", err)
					return
				}
				st.garbageConns.Add(1)
				buf := make([]byte, 32<<10)
				for i := range buf {
					buf[i] = byte(r.Uint32())
				}
				nc.SetDeadline(time.Now().Add(ioTimeout))
				n, _ := nc.Write(buf)
				st.garbageBytes.Add(int64(n))
				nc.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, nc) // the host's errors, until it closes
				nc.Close()
			}
		})
	}
	// Malformed, truncated, huge and negative frames.
	caseErrs := make(chan string, len(hostileCases))
	for _, hc := range hostileCases {
		abuse("case "+hc.name, func() {
			nc, err := dial()
			if err != nil {
				caseErrs <- fmt.Sprintf("%s: dial: %v", hc.name, err)
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(ioTimeout))
			br := bufio.NewReader(nc)
			if _, err := br.ReadString('\n'); err != nil {
				caseErrs <- fmt.Sprintf("%s: metadata line: %v", hc.name, err)
				return
			}
			if _, err := io.WriteString(nc, hc.send); err != nil {
				caseErrs <- fmt.Sprintf("%s: send: %v", hc.name, err)
				return
			}
			for i, want := range hc.replies {
				l, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(l, want) {
					caseErrs <- fmt.Sprintf("%s: reply %d = %q (%v), want %q...", hc.name, i+1, trim(l), err, want)
					return
				}
			}
		})
	}
	// Half-written commands left open: the read timeout must end them.
	for i := range 40 {
		abuse("half-open", func() {
			nc, err := dial()
			if err != nil {
				t.Errorf("half-open: dial: %v", err)
				return
			}
			defer nc.Close()
			st.halfOpen.Add(1)
			half := []string{"REA", "WRITE 10\nabc", "SET canary 5\nab", "GET can"}[i%4]
			nc.SetDeadline(time.Now().Add(ioTimeout))
			io.WriteString(nc, half)
			b, err := io.ReadAll(nc)
			if err == nil && bytes.Contains(b, []byte("ERROR limit connection closed: too long sending one request")) {
				st.halfClosedByHost.Add(1)
			}
		})
	}
	// Connections opened and abandoned, as many as the open-file limit
	// allows (the host and this process each hold one end).
	nAbandon := 2000
	if lim := nofile(t); uint64(nAbandon) > (lim-400)/2 {
		nAbandon = int((lim - 400) / 2)
		t.Logf("RLIMIT_NOFILE %d: abandoning %d connections instead of 2000", lim, nAbandon)
	}
	abandoned := make(chan []net.Conn, 1)
	abuse("abandon", func() {
		var conns []net.Conn
		for range nAbandon {
			nc, err := dial()
			if err != nil {
				t.Errorf("abandon: dial %d: %v", len(conns), err)
				break
			}
			conns = append(conns, nc)
			st.abandoned.Add(1)
		}
		abandoned <- conns
	})
	// A client that pipelines reads of a 1 MiB region and never reads:
	// once the host stops taking its requests (it is stuck writing
	// replies), the write timeout must drop it, which fails a write here
	// with a reset.
	abuse("never-reads", func() {
		nc, err := dial()
		if err != nil {
			t.Errorf("never-reads: dial: %v", err)
			return
		}
		defer nc.Close()
		start := time.Now()
		req := []byte(strings.Repeat("GET big\n", 128))
		for time.Since(start) < 15*time.Second {
			nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(req); err != nil {
				if !isTimeout(err) {
					st.neverReaderDropped.Store(int64(time.Since(start)))
				}
				return
			}
			st.neverReaderGETs.Add(128)
		}
	})

	// Not abuse, but load: a client that pipelines reads of the 1 MiB
	// region and takes every reply at full speed, for 2 s.
	abuse("greedy-reader", func() {
		nc, err := dial()
		if err != nil {
			t.Errorf("greedy-reader: dial: %v", err)
			return
		}
		defer nc.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			req := []byte(strings.Repeat("GET big\n", 128))
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc.SetWriteDeadline(time.Now().Add(ioTimeout))
				if _, err := nc.Write(req); err != nil {
					return
				}
			}
		}()
		nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.Copy(io.Discard, nc)
		st.greedyBytes.Store(n)
	})

	// Meanwhile: the good client keeps reading, and the host's RSS is
	// sampled.
	abuseStart := time.Now()
	go func() { wg.Wait(); close(done) }()
	var during []time.Duration
	var goodErr error
	peak := rssBefore
	lastRSS := time.Now()
	for loop := true; loop; {
		select {
		case <-done:
			loop = false
		default:
		}
		d, err := readOnce()
		if err != nil {
			goodErr = err
			<-done
			break
		}
		during = append(during, d)
		if time.Since(lastRSS) > 20*time.Millisecond {
			peak = max(peak, rssKiB(t, pid))
			lastRSS = time.Now()
		}
	}
	var conns []net.Conn
	select {
	case conns = <-abandoned:
	default:
	}
	abuseTook := time.Since(abuseStart)
	withAbandoned := rssKiB(t, pid)
	peak = max(peak, withAbandoned)
	for _, c := range conns {
		c.Close()
	}
	close(caseErrs)
	for e := range caseErrs {
		t.Error(e)
	}

	// The host is up and answers.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		t.Fatalf("the host process is gone: %v\nstderr:\n%s", err, h.Stderr())
	}
	ping := dialRaw(t, h.Addr)
	if got := ping.do("PING\n"); got != "PONG\n" {
		t.Errorf("PING after the abuse = %q", got)
	}
	ping.nc.Close()
	if goodErr != nil {
		t.Errorf("the well-behaved client stopped working during the abuse: %v", goodErr)
	}
	// No region changed.
	if got := readContent(t, h, "canary", "--mode", "tcp"); got != string(canary) {
		t.Errorf("the canary region changed during the abuse (first difference at byte %d)", firstDiff(got, string(canary)))
	}
	if v := regionInfo(t, h, "canary").Version; v != canaryVersion {
		t.Errorf("canary version %d after the abuse, want %d: something wrote it", v, canaryVersion)
	}
	raw, err := os.ReadFile(filepath.Join(shmDir, def.OSName))
	if err != nil {
		t.Fatal(err)
	}
	lock, data := utf8Object(t, raw)
	if lock != 0 || string(data) != defaultText || int64(len(raw)) != def.Size {
		t.Errorf("default region object after the abuse: lock %d, data %q, %d bytes; want 0, %q, %d", lock, data, len(raw), defaultText, def.Size)
	}
	if got := readContent(t, h, "", "--mode", "tcp"); got != defaultText {
		t.Errorf("default region reads %q after the abuse", got)
	}
	// Every abusive connection goes away.
	ctl := dialRaw(t, h.Addr)
	var open []string
	shmtest.CheckFor(t, 10*time.Second, "abusive connections are still open", func() bool {
		var hi struct {
			Clients []struct {
				Addr  string    `json:"addr"`
				Since time.Time `json:"since"`
			} `json:"clients"`
		}
		ctl.jsonReply("INFO\n", &hi)
		open = open[:0]
		for _, c := range hi.Clients {
			if a := c.Addr; a != ctl.nc.LocalAddr().String() && a != good.nc.LocalAddr().String() {
				open = append(open, a)
			}
		}
		if len(open) > 0 && len(open) < 10 {
			t.Logf("still open: %v", open)
		}
		return len(open) == 0
	})
	rssAfter := rssKiB(t, pid)

	p99b, p99d := percentile(before, 0.99), percentile(during, 0.99)
	t.Logf("good client READ latency: before p50 %v p99 %v (%d reads); during the abuse p50 %v p99 %v (%d reads)",
		percentile(before, 0.5), p99b, len(before), percentile(during, 0.5), p99d, len(during))
	t.Logf("host RSS: %d MiB before, peak %d MiB, %d MiB with %d abandoned connections open, %d MiB after",
		rssBefore/1024, peak/1024, withAbandoned/1024, len(conns), rssAfter/1024)
	t.Logf("abuse lasted %v", abuseTook.Round(time.Millisecond))
	t.Logf("abuse: %d garbage connections (%d KiB), %d hostile frames, %d half-open (%d closed by the read timeout with ERROR limit), "+
		"%d abandoned, never-reader sent %d GETs and was dropped after %v, greedy reader took %d MiB of replies",
		st.garbageConns.Load(), st.garbageBytes.Load()>>10, len(hostileCases), st.halfOpen.Load(), st.halfClosedByHost.Load(),
		st.abandoned.Load(), st.neverReaderGETs.Load(), time.Duration(st.neverReaderDropped.Load()).Round(time.Millisecond),
		st.greedyBytes.Load()>>20)

	if n := st.halfClosedByHost.Load(); n != st.halfOpen.Load() {
		t.Errorf("%d of %d half-written requests were ended by the read timeout with ERROR limit", n, st.halfOpen.Load())
	}
	if st.neverReaderDropped.Load() == 0 {
		t.Errorf("the client that never reads was not dropped")
	}
	if int(st.abandoned.Load()) != nAbandon {
		t.Errorf("only %d of %d connections could be opened", st.abandoned.Load(), nAbandon)
	}
	return hostileFigures{before: before, during: during, peakKiB: peak, withAbandonedKiB: withAbandoned}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestHostileRangeOverflow: offsets and lengths near the int64 limit are
// refused (out_of_range), never allowed to wrap around. Each request runs
// against a fresh host, since a wrap-around crashes it.
func TestHostileRangeOverflow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, req, want, who string
	}{
		// A utf8 range is clipped to the content's end (client.Region.ReadAt).
		{"get-utf8", "GET default 1 9223372036854775807\n", "VALUE 1 4\n", "any client that may read the default region (a read-only token will do)"},
		{"get-raw", "GET raw 1 9223372036854775807\n", "ERROR out_of_range ", "any client that may read a raw region"},
		{"set-at-raw", "SET raw 1 at=9223372036854775807\nx\n", "ERROR out_of_range ", "any client that may write a raw region"},
		{"set-at-utf8", "SET default 1 at=9223372036854775807\nx\n", "ERROR ", "any client that may write the default region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startHost(t)
			h.MustCLI(t, "write", "hello")
			h.MustCLI(t, "create", "raw", "--layout", "raw", "--size", "64")
			pid := hostPID(t, h)
			c := dialRaw(t, h.Addr)
			c.send(tt.req + "PING\n")
			c.deadline()
			first, err1 := c.br.ReadString('\n')
			if strings.HasPrefix(first, "VALUE ") {
				rest, _ := c.br.ReadString('\n')
				first += rest
			}
			second, err2 := c.br.ReadString('\n')
			if err1 == nil && strings.HasPrefix(first, tt.want) && err2 == nil && second == "PONG\n" {
				return
			}
			alive := true
			shmtest.CheckFor(t, 5*time.Second, "host state unknown", func() bool {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				alive = err == nil && !strings.Contains(string(b), ") Z ")
				return !alive || dialOK(h.Addr)
			})
			panicLine := ""
			for _, l := range strings.Split(h.Stderr(), "\n") {
				if strings.HasPrefix(l, "panic:") {
					panicLine = l
				}
			}
			if !alive || panicLine != "" {
				t.Errorf("BUG: %q crashed the host (%s; reply %q, %v). The range check adds offset and length in int64 "+
					"and the sum wraps negative: internal/region/read.go appendLocked (\"off+n > l\", then slices "+
					"r.data[base+off:base+end] with end < 0) and WriteAt (\"off+int64(len(p)) > r.max\", then commit slices "+
					"r.data[off:off+len]). Compare without overflow: n > l-off, int64(len(p)) > r.max-off. Who can do it: %s. "+
					"A local client panics the same way (shmgr read --mode local --offset 1 --length 9223372036854775807)",
					strings.TrimSpace(tt.req), panicLine, first, err1, tt.who)
			} else {
				t.Errorf("%q: replies %q (%v), %q (%v); want %q..., then PONG", strings.TrimSpace(tt.req), first, err1, second, err2, tt.want)
			}
		})
	}
}

// dialOK reports whether a host answers at addr.
func dialOK(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Second))
	l, err := bufio.NewReader(nc).ReadString('\n')
	return err == nil && strings.HasPrefix(l, "{")
}
