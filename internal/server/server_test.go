package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/metrics"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// ioTimeout bounds every read and write of a test connection, so a
// server that stops answering fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// testServer is a Server in this process, on 127.0.0.1:0, serving a host
// in a temporary data directory.
type testServer struct {
	srv  *Server
	h    *host.Host
	addr string
	dir  string
	m    *metrics.Host
	log  *logBuf
	// read counts the bytes the server has read from its connections.
	read *atomic.Int64
}

// logBuf collects the server's log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// countingListener counts what the server reads from its connections, so
// a test can tell that a request has been taken in. It counts on
// rawsock's connections, which "shmgr host" reads through.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: rawsock.Wrap(c), n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// startServer starts a server with cfg (its Metrics and Logf are set
// here) for a host configured by tune (may be nil), serving TLS if
// tlsCfg is set. Everything is shut down, and every shared-memory object
// of the host removed, when the test ends.
func startServer(t *testing.T, cfg Config, tune func(*host.Config), tlsCfg *tls.Config) *testServer {
	t.Helper()
	return startServing(t, cfg, tune, tlsCfg, false)
}

// startServing is startServer, serving the Redis protocol (ServeRESP)
// if resp.
func startServing(t testing.TB, cfg Config, tune func(*host.Config), tlsCfg *tls.Config, resp bool) *testServer {
	t.Helper()
	dir := t.TempDir()
	hc := host.DefaultConfig(dir)
	if tune != nil {
		tune(&hc)
	}
	// Cleanups run last-registered first: shut down, then close the
	// host, remove the objects and check none is left (OpenHost).
	h := shmtest.OpenHost(t, hc)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{h: h, addr: ln.Addr().String(), dir: dir, m: &metrics.Host{}, log: &logBuf{}, read: new(atomic.Int64)}
	var l net.Listener = countingListener{Listener: ln, n: ts.read}
	if cfg.BusyPoll > 0 {
		// Reads spin on the raw TCP connection, under TLS too, as "shmgr
		// host" serves them: ts.read stays 0.
		l = rawsock.WrapListener(ln)
	}
	if tlsCfg != nil {
		l = tls.NewListener(l, tlsCfg)
	}
	cfg.Metrics, cfg.Logf = ts.m, ts.log.logf
	ts.srv = New(h, cfg)
	served := make(chan error, 1)
	serve := ts.srv.Serve
	if resp {
		serve = ts.srv.ServeRESP
	}
	go func() { served <- serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if err := h.Close(); err != nil {
			t.Errorf("host Close: %v", err)
		}
	})
	return ts
}

// refusals returns the server's limit refusals by limit name.
// (read from the metrics text: the set is not enumerable from here).
func (ts *testServer) refusals() map[string]uint64 {
	var b strings.Builder
	ts.m.WriteText(&b)
	out := map[string]uint64{}
	for _, l := range strings.Split(b.String(), "\n") {
		rest, ok := strings.CutPrefix(l, `shmgr_limit_refusals_total{limit="`)
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(rest, `"} `)
		n, _ := strconv.ParseUint(v, 10, 64)
		out[k] = n
	}
	return out
}

// tconn is a bare client connection that speaks the protocol by hand.
type tconn struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	meta string
}

// dial connects and reads the metadata line; the connection is closed
// when the test ends.
func dial(t testing.TB, addr string) *tconn {
	t.Helper()
	c := &tconn{t: t}
	c.nc, c.br, c.meta = shmtest.Dial(t, addr, ioTimeout)
	if !strings.HasPrefix(c.meta, "{") {
		t.Fatalf("first line %q, want the metadata line", c.meta)
	}
	return c
}

func (c *tconn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send %.60q: %v", s, err)
	}
}

func (c *tconn) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a line: %v (got %q)", err, s)
	}
	return s
}

// frame reads one frame: a line and, for VALUE, JSON, EVENT and DELTA, its
// payload and newline.
func (c *tconn) frame() string {
	c.t.Helper()
	l := c.line()
	f := strings.Fields(l)
	n := -1
	switch {
	case len(f) == 3 && f[0] == "VALUE", len(f) == 2 && f[0] == "JSON", len(f) == 4 && f[0] == "EVENT", len(f) == 6 && f[0] == "DELTA":
		n, _ = strconv.Atoi(f[len(f)-1])
	}
	if n < 0 {
		return l
	}
	p := make([]byte, n+1)
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("payload of %q: %v", l, err)
	}
	return l + string(p)
}

// reply reads the next reply, skipping pushed EVENT frames.
func (c *tconn) reply() string {
	c.t.Helper()
	for {
		if f := c.frame(); !strings.HasPrefix(f, "EVENT ") && !strings.HasPrefix(f, "DELTA ") {
			return f
		}
	}
}

func (c *tconn) do(req string) string {
	c.t.Helper()
	c.send(req)
	return c.reply()
}

// expect sends req and checks that the reply starts with want.
func (c *tconn) expect(req, want string) string {
	c.t.Helper()
	got := c.do(req)
	if !strings.HasPrefix(got, want) {
		c.t.Errorf("%.60q: reply %.200q, want %q...", req, got, want)
	}
	return got
}

// drain reads until the server closes the connection (or ioTimeout) and
// returns the lines it sent and whether it closed.
func (c *tconn) drain() (lines []string, closed bool) {
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		s, err := c.br.ReadString('\n')
		if s != "" {
			lines = append(lines, s)
		}
		if err != nil {
			var ne net.Error
			return lines, !errors.As(err, &ne) || !ne.Timeout()
		}
	}
}

// jsonList sends LIST and returns the shm_ids.
func (c *tconn) list() []string {
	c.t.Helper()
	rep := c.do("LIST\n")
	head, body, _ := strings.Cut(rep, "\n")
	if !strings.HasPrefix(head, "JSON ") {
		c.t.Fatalf("LIST: %q", rep)
	}
	var infos []struct {
		ShmID string `json:"shm_id"`
	}
	if err := json.Unmarshal([]byte(body), &infos); err != nil {
		c.t.Fatalf("LIST JSON: %v\n%s", err, body)
	}
	var ids []string
	for _, in := range infos {
		ids = append(ids, in.ShmID)
	}
	return ids
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxConns: 2}, nil, nil)
	a := dial(t, ts.addr)
	dial(t, ts.addr)

	nc, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("third connection: %v after %q; want ERROR limit, then EOF", err, b)
	}
	if !strings.HasPrefix(string(b), "ERROR limit ") || !strings.Contains(string(b), "2 connections") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("third connection got %q, want one line \"ERROR limit ... 2 connections ...\" and EOF", b)
	}
	if n := ts.refusals()["connections"]; n != 1 {
		t.Errorf("limit refusals for connections = %d, want 1", n)
	}
	if n := ts.m.Connections.Load(); n != 2 {
		t.Errorf("connections gauge = %d, want 2 (the refused one is not counted)", n)
	}
	if got := a.do("PING\n"); got != "PONG\n" {
		t.Errorf("an admitted connection after a refusal: PING = %q", got)
	}
	// A slot freed is a slot offered again.
	a.nc.Close()
	shmtest.CheckFor(t, 5*time.Second, "a new connection was not admitted after one closed", func() bool {
		nc, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
		if err != nil {
			return false
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetReadDeadline(time.Now().Add(ioTimeout))
		l, _ := bufio.NewReader(nc).ReadString('\n')
		return strings.HasPrefix(l, "{")
	})
	if !strings.Contains(ts.log.String(), "refused connection from 127.0.0.1:") {
		t.Errorf("the refusal was not logged:\n%s", ts.log)
	}
}

func TestRequestSize(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Limits: proto.Limits{MaxLine: 256, MaxPayload: 1024}}, nil, nil)
	c := dial(t, ts.addr)
	c.expect("WRITE 5\nfirst\n", "OK")
	big := strings.Repeat("x", 1025)
	for _, tt := range []struct{ name, req, want string }{
		{"write", "WRITE 1025\n" + big + "\n", "ERROR too_large "},
		{"set", "SET default 5000\n" + strings.Repeat("y", 5000) + "\n", "ERROR too_large "},
		{"set-crlf", "SET default 2000\r\n" + strings.Repeat("z", 2000) + "\r\n", "ERROR too_large "},
		{"line", "GET " + strings.Repeat("a", 300) + "\n", "ERROR line_too_long "},
	} {
		c.expect(tt.req, tt.want)
		// The payload was skipped: the next request is read as one.
		if got := c.do("PING\n"); got != "PONG\n" {
			t.Fatalf("%s: PING after the refusal = %q; the connection lost its framing", tt.name, got)
		}
	}
	if got := c.do("READ\n"); got != "OK first\n" {
		t.Errorf("READ after refused writes = %q, want the content before them", got)
	}
	exact := strings.Repeat("e", 1024)
	c.expect("WRITE 1024\n"+exact+"\n", "OK")
	if got := c.do("READ\n"); got != "OK "+exact+"\n" {
		t.Errorf("a payload of exactly the limit was not written")
	}
	if n := ts.refusals()["request_size"]; n != 4 {
		t.Errorf("limit refusals for request_size = %d, want 4", n)
	}
}

func TestRegionLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, func(hc *host.Config) { hc.MaxRegions, hc.MaxRegionSize = 3, 8192 }, nil)
	c := dial(t, ts.addr)
	if got := c.expect("CREATE huge size=8193\n", "ERROR limit "); !strings.Contains(got, "--max-region-size") {
		t.Errorf("region over the size limit: %q does not name --max-region-size", got)
	}
	c.expect("CREATE a size=8192 layout=raw\n", "JSON ")
	c.expect("CREATE b\n", "JSON ")
	if got := c.expect("CREATE c\n", "ERROR limit "); !strings.Contains(got, "--max-regions") || !strings.Contains(got, "3 regions") {
		t.Errorf("region over the count limit: %q does not say 3 regions and --max-regions", got)
	}
	c.expect("DELETE b\n", "OK")
	c.expect("CREATE c\n", "JSON ")
	if got, want := c.list(), []string{"a", "c", "default"}; !slices.Equal(got, want) {
		t.Errorf("LIST = %v, want %v", got, want)
	}
	if n := ts.refusals()["CREATE"]; n != 2 {
		t.Errorf("limit refusals for CREATE = %d, want 2 (%v)", n, ts.refusals())
	}
}

func TestMaxWatches(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxWatches: 2}, nil, nil)
	c := dial(t, ts.addr)
	for _, id := range []string{"w1", "w2", "w3"} {
		c.expect("CREATE "+id+"\n", "JSON ")
	}
	c.expect("WATCH w1\n", "OK 0")
	c.expect("WATCH w2\n", "OK 0")
	if got := c.expect("WATCH w3\n", "ERROR limit "); !strings.Contains(got, "2 regions") {
		t.Errorf("third watch: %q does not say how many are allowed", got)
	}
	c.expect("WATCH w1 from=0\n", "OK 0") // watching again only moves the start
	c.expect("UNWATCH w2\n", "OK")
	c.expect("WATCH w3\n", "OK 0")
	if n := ts.m.Watchers.Load(); n != 2 {
		t.Errorf("watchers gauge = %d, want 2", n)
	}
	if n := ts.refusals()["WATCH"]; n != 1 {
		t.Errorf("limit refusals for WATCH = %d, want 1", n)
	}
	c.nc.Close()
	shmtest.CheckFor(t, 5*time.Second, "watchers gauge did not return to 0 after the connection closed", func() bool { return ts.m.Watchers.Load() == 0 })
}

// TestHalfClose: a client that sends its requests and shuts its side
// at once (the FIN often comes with the last bytes, and a read takes
// both) gets every reply, then the host's close, at once: not at the idle
// timeout.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{IdleTimeout: time.Minute, ReadTimeout: time.Minute}, nil, nil)
	tests := []struct {
		name, send string
		want       []string
	}{
		{"one request", "PING\n", []string{"PONG\n"}},
		{"original protocol", "WRITE 2\nhi\nREAD\n", []string{"OK\n", "OK hi\n"}},
		{"partial request", "PING\nREA", []string{"PONG\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i := range 20 { // the FIN comes with the bytes, or after
				c := dial(t, ts.addr)
				c.send(tt.send)
				if err := halfClose(c, tt.want); err != nil {
					t.Fatalf("try %d: %v", i, err)
				}
			}
		})
	}
	// The last request and the FIN both wait in the socket while the host
	// serves the one before (a write waiting for a lock another
	// connection holds): the host's next read takes them together. Not
	// parallel: the cases above write the same region, and would wait
	// for the lock too. The lock is released by hand once the FIN is
	// sent: a short lease could end before a loaded host even reads the
	// write, and the write would then never wait.
	t.Run("while the host is busy", func(t *testing.T) {
		holder := dial(t, ts.addr)
		rep := holder.expect("LOCK default lease=60000\n", "OK ")
		token := strings.TrimSpace(strings.TrimPrefix(rep, "OK "))
		c := dial(t, ts.addr)
		c.send("WRITE 2\nhi\n")
		ts.waitLockWaiters(t, "default", 1)
		c.send("PING\n")
		c.nc.(*net.TCPConn).CloseWrite()
		holder.expect("UNLOCK default "+token+"\n", "OK")
		if err := halfClose(c, []string{"OK\n", "PONG\n"}); err != nil {
			t.Fatal(err)
		}
	})
}

// waitLockWaiters waits until n requests wait for region id's lock in
// the host (see region.Region.LockWaiters): the state a test sets up,
// not a guess at how long it takes to reach it.
func (ts *testServer) waitLockWaiters(t testing.TB, id string, n int) {
	t.Helper()
	hr, err := ts.h.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 20*time.Second, fmt.Sprintf("region %q: %d lock waiters never reached", id, n), func() bool {
		got := -1
		hr.Do(func(r *region.Region) error { got = r.LockWaiters(); return nil })
		return got == n
	})
}

// halfClose shuts the client's side of c and checks that the host then
// sends the lines want and closes, well before any timeout.
func halfClose(c *tconn, want []string) error {
	c.nc.(*net.TCPConn).CloseWrite()
	start := time.Now()
	lines, closed := c.drain()
	if !closed || time.Since(start) > 5*time.Second {
		return fmt.Errorf("the host did not close after %v (got %q)", time.Since(start), lines)
	}
	if !slices.Equal(lines, want) {
		return fmt.Errorf("got %q, want %q", lines, want)
	}
	return nil
}

// TestReadTimeout: a request that has begun must arrive whole within the
// read timeout (slowloris), however the bytes trickle in; a client that
// sends whole requests is never cut by it.
func TestReadTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	ts := startServer(t, Config{ReadTimeout: timeout}, nil, nil)
	tests := []struct {
		name    string
		first   string
		trickle string // sent a byte every 100 ms after first
	}{
		{"half-line", "REA", ""},
		{"trickle", "P", "INGPINGPINGPINGPINGPING"},
		{"half-payload", "WRITE 10\nabc", ""},
		{"payload-no-newline", "WRITE 3\nabc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			start := time.Now()
			c.send(tt.first)
			closed := make(chan struct{})
			if tt.trickle != "" {
				go func() {
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for i := 0; i < len(tt.trickle); i++ {
						select {
						case <-closed:
							return
						case <-tick.C:
						}
						c.nc.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := c.nc.Write([]byte{tt.trickle[i]}); err != nil {
							return
						}
					}
				}()
			}
			lines, ok := c.drain()
			close(closed)
			took := time.Since(start)
			if !ok {
				t.Fatalf("not disconnected within %v (got %q)", ioTimeout, lines)
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR limit ") || !strings.Contains(lines[0], "too long sending one request") {
				t.Errorf("got %q before the close, want one \"ERROR limit ... too long sending one request\"", lines)
			}
			if took < timeout*3/4 || took > timeout+3*time.Second {
				t.Errorf("disconnected after %v, want about %v", took, timeout)
			}
		})
	}
	t.Run("whole-requests", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		start := time.Now()
		tick := time.NewTicker(timeout / 4)
		defer tick.Stop()
		for time.Since(start) < 3*timeout {
			if got := c.do("PING\n"); got != "PONG\n" {
				t.Fatalf("PING after %v = %q", time.Since(start), got)
			}
			<-tick.C
		}
	})
	t.Cleanup(func() {
		if n := ts.refusals()["read_timeout"]; n != uint64(len(tests)) {
			t.Errorf("limit refusals for read_timeout = %d, want %d", n, len(tests))
		}
		if !strings.Contains(ts.log.String(), "too long sending one request") {
			t.Errorf("read timeouts not logged:\n%s", ts.log)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	// The busy connection's requests come every idle/8, so only a stall
	// of 7/8 of the idle timeout (525 ms, in a race-enabled binary beside
	// the package's other parallel tests on two CPUs) could make it look
	// idle; with requests every idle/4 of 300 ms, a 225 ms stall did.
	const idle = 600 * time.Millisecond
	ts := startServer(t, Config{IdleTimeout: idle}, nil, nil)
	quiet := dial(t, ts.addr)
	busy := dial(t, ts.addr)
	start := time.Now()
	done := make(chan struct{})
	var busyErr atomic.Value
	go func() {
		defer close(done)
		tick := time.NewTicker(idle / 8)
		defer tick.Stop()
		for time.Since(start) < 4*idle {
			<-tick.C
			busy.nc.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := io.WriteString(busy.nc, "PING\n"); err != nil {
				busyErr.Store(err.Error())
				return
			}
			if l, err := busy.br.ReadString('\n'); err != nil || l != "PONG\n" {
				busyErr.Store(fmt.Sprintf("PING: %q, %v", l, err))
				return
			}
		}
	}()
	lines, closed := quiet.drain()
	took := time.Since(start)
	if !closed || len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR limit ") || !strings.Contains(lines[0], "idle") {
		t.Errorf("idle connection: got %q, closed %v; want \"ERROR limit ... idle\" and a close", lines, closed)
	}
	if took < idle*3/4 || took > idle+3*time.Second {
		t.Errorf("idle connection closed after %v, want about %v", took, idle)
	}
	<-done
	if e := busyErr.Load(); e != nil {
		t.Errorf("a connection sending a request every %v was cut: %v", idle/8, e)
	}
	if n := ts.refusals()["idle_timeout"]; n != 1 {
		t.Errorf("limit refusals for idle_timeout = %d, want 1", n)
	}
}

// TestIdleTimeoutWatcher: a connection that watches a region and gets
// an event every 100 ms is not idle. The Go client sends nothing on a
// watch connection while events keep coming (it PINGs only after 5 s of
// silence), so a host that counts only what the client sends drops every
// busy watcher once per --idle-timeout (10 minutes by default), and each
// reconnects.
func TestIdleTimeoutWatcher(t *testing.T) {
	t.Parallel()
	const idle = 400 * time.Millisecond
	ts := startServer(t, Config{IdleTimeout: idle}, nil, nil)
	w := dial(t, ts.addr)
	w.expect("WATCH default\n", "OK ")
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var got []string
	dropped := false
	for i := 0; time.Since(start) < 3*idle; i++ {
		<-tick.C
		// A connection per write: the writer is never idle itself, however
		// late a loaded machine runs this loop (a writer kept open was
		// closed as idle once, under load, failing the test for the
		// wrong connection).
		writer := dial(t, ts.addr)
		writer.expect(fmt.Sprintf("WRITE 1\n%d\n", i%10), "OK")
		writer.nc.Close()
		// Take what the host pushed (an event per write, unless two
		// were coalesced: then nothing comes, which is fine).
		w.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		l, err := w.br.ReadString('\n')
		var ne net.Error
		if l == "" && errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil || !strings.HasPrefix(l, "EVENT ") {
			got = append(got, fmt.Sprintf("%q (%v)", l, err))
			dropped = true
			break
		}
		w.br.ReadString('\n') // the 1-byte payload and its newline
		w.nc.SetReadDeadline(time.Time{})
	}
	if dropped {
		t.Errorf("BUG: a watching connection that received an event every 100 ms was closed as idle after %v "+
			"(--idle-timeout %v): got %s. internal/server/conn.go fill arms the idle deadline from the client's last "+
			"request only; pushed events do not count, and client.Watcher sends nothing while events flow. Count a "+
			"connection with watches (or one the pusher wrote to recently) as active",
			time.Since(start).Round(time.Millisecond), idle, strings.Join(got, ", "))
	}
}

// neverReader connects, pipelines GETs of a 1 MiB region and never reads
// a reply; it returns when the server has dropped the connection, and how
// long that took.
func neverReader(t *testing.T, ts *testServer) time.Duration {
	t.Helper()
	c := dial(t, ts.addr)
	c.expect("CREATE big size=1048576 layout=raw\n", "JSON ")
	if n := ts.srv.Connections(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	start := time.Now()
	stop := make(chan struct{})
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		req := []byte(strings.Repeat("GET big\n", 512))
		for range 200 {
			select {
			case <-stop:
				return
			default:
			}
			c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
			if _, err := c.nc.Write(req); err != nil {
				return
			}
		}
	}()
	shmtest.CheckFor(t, 15*time.Second, "a client that never reads was not disconnected", func() bool { return ts.srv.Connections() == 0 })
	took := time.Since(start)
	close(stop)
	c.nc.Close()
	<-writer
	return took
}

func TestWriteTimeout(t *testing.T) {
	t.Parallel()
	const wt = 300 * time.Millisecond
	ts := startServer(t, Config{WriteTimeout: wt}, nil, nil)
	took := neverReader(t, ts)
	t.Logf("a client that never reads was dropped after %v (write timeout %v)", took, wt)
	// The host is fine afterwards.
	c := dial(t, ts.addr)
	if got := c.do("PING\n"); got != "PONG\n" {
		t.Errorf("PING after the drop = %q", got)
	}
}

// TestWriteTimeoutReported: every limit that ends a connection is counted
// in shmgr_limit_refusals_total and logged, so an operator can tell why
// clients were dropped.
func TestWriteTimeoutReported(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{WriteTimeout: 300 * time.Millisecond}, nil, nil)
	neverReader(t, ts)
	counted := false
	for k, n := range ts.refusals() {
		if strings.Contains(k, "write") && n > 0 {
			counted = true
		}
	}
	logged := strings.Contains(strings.ToLower(ts.log.String()), "write") || strings.Contains(ts.log.String(), "replies")
	if !counted || !logged {
		t.Errorf("BUG: a connection dropped by the write timeout is not reported (counted in limit refusals: %v %v; logged: %v):\n%s\n"+
			"internal/server/conn.go flush (and push in watch.go) returns on a write error without telling a timeout apart; "+
			"on a timeout, count LimitRefusals.Get(\"write_timeout\") and log \"closing connection from X: it does not read its replies\", "+
			"as fill does for read_timeout and idle_timeout", counted, ts.refusals(), logged, ts.log)
	}
}

func TestLeaseLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil, nil)
	c := dial(t, ts.addr)
	max := strconv.FormatInt(int64(MaxLease/time.Millisecond), 10)
	over := strconv.FormatInt(int64(MaxLease/time.Millisecond)+1, 10)
	for _, lease := range []string{over, "9223372036854775807", "9223372036854"} {
		if got := c.expect("LOCK default lease="+lease+"\n", "ERROR limit "); !strings.Contains(got, max) {
			t.Errorf("LOCK lease=%s: %q does not give the maximum (%s ms)", lease, got, max)
		}
	}
	rep := c.expect("LOCK default lease="+max+" wait=0\n", "OK ")
	token := strings.TrimSpace(strings.TrimPrefix(rep, "OK "))
	c.expect("RENEW default "+token+" lease="+over+"\n", "ERROR limit ")
	c.expect("RENEW default "+token+" lease="+max+"\n", "OK")
	c.expect("UNLOCK default "+token+"\n", "OK")
	r := ts.refusals()
	if r["LOCK"] != 3 || r["RENEW"] != 1 {
		t.Errorf("limit refusals = %v, want LOCK 3 and RENEW 1", r)
	}
}

// TestLockWaitShutdown: Shutdown(ctx) returns once ctx ends, whatever
// the connections are doing (the net/http contract). A LOCK waiting for a
// lock that another process holds must not keep it waiting.
func TestLockWaitShutdown(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil, nil)
	hr, err := ts.h.Get("default")
	if err != nil {
		t.Fatal(err)
	}
	// Another holder (here: this process, as a local client mapping the
	// region would) takes the lock with a long lease.
	var token uint64
	if err := hr.Do(func(r *region.Region) (err error) {
		token, err = r.Acquire(time.Second, time.Minute, []byte("test holder"), nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			hr.Do(func(r *region.Region) error { return r.Release(token) })
		}
	}
	defer release()

	c := dial(t, ts.addr)
	before := ts.read.Load()
	req := "LOCK default wait=3600000\n"
	c.send(req)
	shmtest.CheckFor(t, 5*time.Second, "the server did not read the LOCK", func() bool { return ts.read.Load() >= before+int64(len(req)) })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- ts.srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		// nil if the LOCK was refused or gave up in time, DeadlineExceeded
		// if it was still waiting when ctx ended.
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want nil or context.DeadlineExceeded", err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("BUG: Shutdown(ctx) with a 300ms deadline has not returned after %v: a connection is stuck in "+
			"\"LOCK default wait=3600000\" while another process holds the lock. internal/server/lock.go passes wait= "+
			"to region.Acquire unbounded and uncancellable, and Shutdown waits for every connection goroutine "+
			"even after ctx ends; \"shmgr host\" then never exits on SIGTERM. Bound wait= (e.g. by the lock timeout "+
			"or MaxLease, answering limit like lease=) and make the wait give up when the connection stops",
			time.Since(start).Round(time.Millisecond))
		release()
		<-done
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	store, err := auth.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	admin := store.Admin()
	ro, err := store.Add(auth.Token{Name: "viewer", Access: auth.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	some, err := store.Add(auth.Token{Name: "sensor-7", Access: auth.ReadWrite, Regions: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Auth: store}, nil, nil)
	{
		c := dial(t, ts.addr)
		c.expect("AUTH "+admin+"\n", "OK rw\n")
		for _, id := range []string{"a", "b", "c"} {
			c.expect("CREATE "+id+"\n", "JSON ")
		}
	}

	t.Run("unauthenticated", func(t *testing.T) {
		c := dial(t, ts.addr)
		var meta proto.Meta
		if err := json.Unmarshal([]byte(c.meta), &meta); err != nil || meta.Auth != "token" {
			t.Errorf("metadata auth = %q (%v), want token", meta.Auth, err)
		}
		for _, req := range []string{"READ\n", "GET default\n", "LIST\n", "INFO\n", "WATCH default\n", "USE a\n", "WRITE 2\nhi\n", "SET a 2\nhi\n", "CREATE d\n", "DELETE a\n", "LOCK a\n"} {
			if got := c.expect(req, "ERROR unauthorized "); !strings.Contains(got, "AUTH") {
				t.Errorf("%q: %q does not say to send AUTH", req, got)
			}
		}
		c.expect("PING\n", "PONG")
		c.expect("QUIT\n", "OK")
	})
	t.Run("wrong-token", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.expect("AUTH "+admin[:len(admin)-1]+"\n", "ERROR unauthorized ")
		c.expect("AUTH nope\n", "ERROR unauthorized ")
		c.send("AUTH " + admin + "x\n")
		lines, closed := c.drain()
		if !closed || len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR unauthorized ") {
			t.Errorf("third wrong AUTH: got %q, closed %v; want ERROR unauthorized and a close", lines, closed)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.expect("AUTH "+ro.Secret+"\n", "OK ro\n")
		for _, req := range []string{"READ\n", "GET a\n", "INFO\n", "INFO a\n", "USE a\n", "WATCH b\n", "UNWATCH b\n", "PING\n"} {
			if got := c.do(req); strings.HasPrefix(got, "ERROR") {
				t.Errorf("read-only %q: %q", req, got)
			}
		}
		if got := c.list(); len(got) != 4 {
			t.Errorf("read-only LIST = %v, want all 4 regions", got)
		}
		for _, req := range []string{"WRITE 2\nhi\n", "SET a 2\nhi\n", "SET a 1 at=0\nh\n", "CREATE d\n", "DELETE a\n", "LOCK a\n", "RENEW a 1\n", "UNLOCK a 1\n"} {
			if got := c.expect(req, "ERROR forbidden "); !strings.Contains(got, "read-only") {
				t.Errorf("%q: %q does not say the token is read-only", req, got)
			}
			if got := c.do("PING\n"); got != "PONG\n" {
				t.Fatalf("PING after a forbidden %q = %q: framing lost", req, got)
			}
		}
	})
	t.Run("some-regions", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.expect("AUTH "+some.Secret+"\n", "OK rw regions=a,b\n")
		if got, want := c.list(), []string{"a", "b"}; !slices.Equal(got, want) {
			t.Errorf("LIST with a token for a,b = %v, want %v", got, want)
		}
		for _, req := range []string{"READ\n", "GET c\n", "INFO c\n", "USE c\n", "WATCH c\n", "SET c 1\nx\n", "DELETE c\n", "CREATE d\n", "LOCK default\n", "WRITE 1\nx\n"} {
			if got := c.expect(req, "ERROR forbidden "); !strings.Contains(got, "does not cover") {
				t.Errorf("%q: %q does not say the token does not cover the region", req, got)
			}
		}
		c.expect("SET a 2\nok\n", "OK ")
		c.expect("USE b\n", "JSON ")
		c.expect("WRITE 3\nyes\n", "OK")
		c.expect("READ\n", "OK yes")
		c.expect("GET a\n", "VALUE 1 2\nok\n")
	})
	if n := ts.m.AuthFailures.Load(); n != 11+3 {
		t.Errorf("auth failures = %d, want 14 (11 requests without AUTH, 3 wrong tokens)", n)
	}
	logs := ts.log.String()
	for _, secret := range []string{admin, ro.Secret, some.Secret} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token's secret is in the log:\n%s", logs)
		}
	}
	if strings.Count(logs, "auth failure from") != 3 {
		t.Errorf("want 3 auth failures logged:\n%s", logs)
	}
}

// TestUnauthenticatedPayload: on a host that requires a token, a client
// that has not authenticated can do nothing with a payload. The host must
// not wait for (and hold in memory) up to --max-request bytes of it:
// with the default 1 GiB limit, a few unauthenticated connections would
// exhaust the host's memory.
func TestUnauthenticatedPayload(t *testing.T) {
	t.Parallel()
	store, err := auth.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Auth: store, ReadTimeout: 5 * time.Second}, nil, nil)
	for _, req := range []string{"WRITE 1073741824\n", "SET default 104857600\n"} {
		t.Run(strings.Fields(req)[0], func(t *testing.T) {
			t.Parallel()
			c := dial(t, ts.addr)
			c.send(req) // the payload never follows
			c.nc.SetReadDeadline(time.Now().Add(time.Second))
			l, err := c.br.ReadString('\n')
			var ne net.Error
			switch {
			case err == nil && (strings.HasPrefix(l, "ERROR unauthorized ") || strings.HasPrefix(l, "ERROR too_large ")):
			case err != nil && !(errors.As(err, &ne) && ne.Timeout()):
				// Hung up at once: fine too.
			default:
				t.Errorf("BUG: %q from an unauthenticated client: no answer within 1s (%q, %v); the host waits for "+
					"the whole announced payload before it checks AUTH, and allocates a buffer for it (internal/server/conn.go "+
					"fill grows c.in to Parser.Need(); permitted() runs only once the request is complete). An attacker "+
					"without a token can make the host hold --max-request bytes (1 GiB by default) per connection. "+
					"Refuse payloads before AUTH: e.g. parse with MaxPayload 0 until AUTH succeeds, answering unauthorized "+
					"and skipping the payload without buffering it", strings.TrimSpace(req), l, err)
			}
		})
	}
}

// TestTLSStalledClientAtLimit: a TLS client that connects while the host
// is full and never sends its ClientHello must not freeze the server.
func TestTLSStalledClientAtLimit(t *testing.T) {
	t.Parallel()
	cert, err := certs.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{MaxConns: 1, ReadTimeout: 2 * time.Second}, nil,
		&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	pin, err := certs.PinnedConfig(certs.Fingerprint(cert.Certificate[0]))
	if err != nil {
		t.Fatal(err)
	}
	tlsDial := func(timeout time.Duration) (*tls.Conn, string, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", ts.addr, pin)
		if err != nil {
			return nil, "", err
		}
		c.SetDeadline(time.Now().Add(timeout))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			c.Close()
			return nil, l, err
		}
		return c, l, nil
	}
	a, meta, err := tlsDial(ioTimeout)
	if err != nil || !strings.HasPrefix(meta, "{") {
		t.Fatalf("first TLS client: %q, %v", meta, err)
	}
	// The host is full. A client connects and sends nothing.
	stalled, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	shmtest.CheckFor(t, 5*time.Second, "the stalled connection was not refused", func() bool { return ts.refusals()["connections"] == 1 })
	a.Close()

	start := time.Now()
	var ok bool
	var last error
	for time.Since(start) < 3*time.Second {
		c, l, err := tlsDial(time.Second)
		if err == nil && strings.HasPrefix(l, "{") {
			c.Close()
			ok = true
			break
		}
		if c != nil {
			c.Close()
		}
		last = err
	}
	conns := make(chan int, 1)
	go func() { conns <- ts.srv.Connections() }()
	frozen := false
	select {
	case <-conns:
	case <-time.After(time.Second):
		frozen = true
	}
	if !ok || frozen {
		t.Errorf("BUG: one TLS client that connects while the host is at --max-connections and never sends a ClientHello "+
			"freezes the server: no client got in for %v after a slot freed (last error: %v), Server.Connections() blocked: %v. "+
			"internal/server/server.go track writes the \"ERROR limit\" refusal with nc.Write while holding s.mu, in the accept "+
			"loop; on a *tls.Conn, Write first runs the handshake, which reads with no deadline (SetWriteDeadline does not "+
			"bound it). Refuse without holding s.mu and off the accept loop (a goroutine with SetDeadline, not only "+
			"SetWriteDeadline), or close TLS connections over the limit without a reply",
			time.Since(start).Round(time.Millisecond), last, frozen)
	}
	stalled.Close() // lets a stuck accept loop go on, for the cleanup
	if frozen {
		<-conns
	}
}

func TestMetricsCounted(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil, nil)
	c := dial(t, ts.addr)
	c.expect("WRITE 5\nhello\n", "OK")
	c.expect("READ\n", "OK hello")
	c.expect("READ\n", "OK hello")
	c.expect("FROB\n", "ERROR unknown_command ")
	c.expect("GET nope\n", "ERROR not_found ")
	var b strings.Builder
	if err := ts.m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		`shmgr_requests_total{command="READ",outcome="ok"} 2` + "\n",
		`shmgr_requests_total{command="WRITE",outcome="ok"} 1` + "\n",
		`shmgr_requests_total{command="GET",outcome="not_found"} 1` + "\n",
		`shmgr_requests_total{command="NONE",outcome="unknown_command"} 1` + "\n",
		`shmgr_request_duration_seconds_count{command="READ"} 2` + "\n",
		`shmgr_request_duration_seconds_bucket{command="READ",le="+Inf"} 2` + "\n",
		`shmgr_payload_bytes_total{direction="in"} 5` + "\n",
		"shmgr_connections 1\n",
		"shmgr_connections_total 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", strings.TrimSpace(want), text)
		}
	}
	// The names tables cover every command (the RESP families follow
	// the shmgr commands) and every error code.
	if got := ts.m.CommandNames; len(got) != int(proto.CmdCluster)+1+int(numRESPFamilies) || got[proto.CmdRead] != "READ" || got[proto.CmdCluster] != "CLUSTER" || len(got) > metrics.MaxKinds {
		t.Errorf("CommandNames = %v", got)
	}
	if got := ts.m.OutcomeNames; got[0] != "ok" || got[proto.CodeFenced] != "fenced" || len(got) > metrics.MaxKinds {
		t.Errorf("OutcomeNames = %v", got)
	}
}

func TestGrantText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		g    auth.Grant
		want string
	}{
		{auth.AllGrant, "rw"},
		{auth.Grant{Name: "x", ReadOnly: true}, "ro"},
		{auth.Grant{Name: "x", Regions: []string{"a"}}, "rw regions=a"},
		{auth.Grant{Name: "x", ReadOnly: true, Regions: []string{"a", "b.c", "d-e_f"}}, "ro regions=a,b.c,d-e_f"},
	} {
		if got := string(grantText(tt.g)); got != tt.want {
			t.Errorf("grantText(%+v) = %q, want %q", tt.g, got, tt.want)
		}
	}
}

// parseGrantText reads grantText's documented form back: "rw" or "ro",
// then " regions=a,b" when limited.
func parseGrantText(s string) (readOnly bool, regions []string, err error) {
	f := strings.Split(s, " ")
	switch f[0] {
	case "rw":
	case "ro":
		readOnly = true
	default:
		return false, nil, fmt.Errorf("access %q", f[0])
	}
	switch len(f) {
	case 1:
		return readOnly, nil, nil
	case 2:
		v, ok := strings.CutPrefix(f[1], "regions=")
		if !ok || v == "" {
			return false, nil, fmt.Errorf("field %q", f[1])
		}
		return readOnly, strings.Split(v, ","), nil
	}
	return false, nil, fmt.Errorf("%d fields", len(f))
}

// FuzzGrantText: the AUTH reply's text says exactly what the grant
// allows, for any read-only flag and any list of valid region ids, and
// it fits on an OK line.
func FuzzGrantText(f *testing.F) {
	f.Fuzz(func(t *testing.T, readOnly bool, list string) {
		var regions []string
		if list != "" {
			for _, id := range strings.Split(list, ",") {
				if proto.ValidID([]byte(id)) {
					regions = append(regions, id)
				}
			}
		}
		g := auth.Grant{Name: "fuzz", ReadOnly: readOnly, Regions: regions}
		text := string(grantText(g))
		for i := 0; i < len(text); i++ {
			if text[i] < ' ' || text[i] > '~' {
				t.Fatalf("grantText(%+v) = %q: byte %#x cannot go on an OK line", g, text, text[i])
			}
		}
		ro, got, err := parseGrantText(text)
		if err != nil || ro != readOnly || !slices.Equal(got, regions) {
			t.Fatalf("grantText(%+v) = %q, reads back as ro=%v regions=%q (%v)", g, text, ro, got, err)
		}
		// The reply as the host sends it parses as one OK reply with this
		// text.
		rep := proto.AppendOKText(nil, []byte(text))
		r, n, err := proto.NewReplyParser(proto.DefaultMaxLine, 0).Next(rep)
		if err != nil || n != len(rep) || r.Kind != proto.ReplyOK || string(r.Text) != text {
			t.Fatalf("AUTH reply %q parses as %v %q (%d of %d bytes, %v)", rep, r.Kind, r.Text, n, len(rep), err)
		}
	})
}

// FuzzValidID: the protocol's id grammar (proto.ValidID, which the parser
// applies to every id on the wire) and the host's (host.CheckID, which
// Create applies) accept exactly the same ids.
func FuzzValidID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id []byte) {
		wire := proto.ValidID(id)
		err := host.CheckID(string(id))
		if wire != (err == nil) {
			t.Fatalf("id %q: proto.ValidID = %v, host.CheckID = %v", id, wire, err)
		}
		if err != nil && !errors.Is(err, host.ErrBadID) {
			t.Fatalf("host.CheckID(%q) = %v, want ErrBadID", id, err)
		}
		if wire {
			// A valid id goes through a request line intact.
			req, _, perr := proto.NewParser(proto.DefaultLimits()).Next([]byte("USE " + string(id) + "\n"))
			if perr != nil || req.Cmd != proto.CmdUse || string(req.ID) != string(id) {
				t.Fatalf("USE %q parses as %v %q, %v", id, req.Cmd, req.ID, perr)
			}
		}
	})
}

// TestTokenRevocation: removing a token, or changing what it grants, cuts
// the connections that authenticated with it (idle, watching or busy)
// within seconds; other connections go on.
func TestTokenRevocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	add := func(name, access string) string {
		tok, err := store.Add(auth.Token{Name: name, Access: access})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Secret
	}
	idleTok, watchTok, busyTok, keepTok, changeTok := add("idle", auth.ReadWrite), add("watcher", auth.ReadWrite),
		add("busy", auth.ReadWrite), add("keeper", auth.ReadOnly), add("changed", auth.ReadOnly)
	ts := startServer(t, Config{Auth: store}, nil, nil)

	idle := dial(t, ts.addr)
	idle.expect("AUTH "+idleTok+"\n", "OK rw")
	watcher := dial(t, ts.addr)
	watcher.expect("AUTH "+watchTok+"\n", "OK rw")
	watcher.expect("WATCH default\n", "OK ")
	busy := dial(t, ts.addr)
	busy.expect("AUTH "+busyTok+"\n", "OK rw")
	keeper := dial(t, ts.addr)
	keeper.expect("AUTH "+keepTok+"\n", "OK ro")
	changed := dial(t, ts.addr)
	changed.expect("AUTH "+changeTok+"\n", "OK ro")

	for _, name := range []string{"idle", "watcher", "busy"} {
		if err := store.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	// "changed" gets write access by an edit of the file, as an operator
	// might make: a grant that changed is not the one authenticated.
	ts2, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts2 {
		if ts2[i].Name == "changed" {
			ts2[i].Access = auth.ReadWrite
		}
	}
	b, err := json.Marshal(map[string]any{"tokens": ts2})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tokens.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, store.Path()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	// The busy connection sends requests until it is cut.
	busyLines := []string{}
	for time.Since(start) < ioTimeout {
		busy.nc.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(busy.nc, "GET default\n"); err != nil {
			// Cut while idle between two requests: its last words are
			// still to be read.
			lines, _ := busy.drain()
			busyLines = append(busyLines, lines...)
			break
		}
		l, err := busy.br.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(l, "ERROR ") {
			busyLines = append(busyLines, l)
			break
		}
		busy.frame() // the value's payload line
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if len(busyLines) == 0 || !strings.HasPrefix(busyLines[len(busyLines)-1], "ERROR unauthorized ") || !strings.Contains(busyLines[len(busyLines)-1], "removed or changed") {
		t.Errorf("busy connection's last replies %q, want ERROR unauthorized ... removed or changed", busyLines)
	}
	if took > 4*tokenCheck {
		t.Errorf("busy connection cut after %v, want within about %v", took, tokenCheck)
	}
	for name, c := range map[string]*tconn{"idle": idle, "watcher": watcher, "changed": changed} {
		lines, closed := c.drain()
		if !closed || len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "ERROR unauthorized ") {
			t.Errorf("%s connection: got %q, closed %v; want ERROR unauthorized and a close", name, lines, closed)
		}
	}
	keeper.expect("GET default\n", "VALUE ")
	keeper.expect("SET default 1\nx\n", "ERROR forbidden ")
	if !strings.Contains(ts.log.String(), `its token "watcher" was removed or changed`) {
		t.Errorf("revocation not logged:\n%s", ts.log)
	}
}

// TestWatchDelta: a watcher that asks for deltas gets, after its first
// full EVENT, DELTA frames carrying only the changed bytes, which rebuild
// each version exactly; a watcher that did not ask keeps full EVENTs; and
// the metadata line says the host can.
func TestWatchDelta(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil, nil)
	c := dial(t, ts.addr)
	var meta proto.Meta
	if err := json.Unmarshal([]byte(c.meta), &meta); err != nil || !slices.Contains(meta.Features, proto.FeatureDelta) {
		t.Fatalf("metadata features = %v (%v), want %q", meta.Features, err, proto.FeatureDelta)
	}
	const size = 64 << 10
	c.expect(fmt.Sprintf("CREATE big size=%d layout=raw\n", size), "JSON ")
	dw, fw := dial(t, ts.addr), dial(t, ts.addr)
	dw.expect("WATCH big delta=1\n", "OK 0")
	fw.expect("WATCH big\n", "OK 0")

	// frame reads one pushed frame and returns its header words and
	// payload.
	frame := func(w *tconn) ([]string, []byte) {
		t.Helper()
		f := w.frame()
		head, payload, _ := strings.Cut(f, "\n")
		return strings.Fields(head), []byte(strings.TrimSuffix(payload, "\n"))
	}
	content := make([]byte, size) // what the delta watcher rebuilds
	if h, p := frame(dw); h[0] != "EVENT" || len(p) != size {
		t.Fatalf("delta watcher's first frame %q (%d bytes), want a full EVENT of %d", h, len(p), size)
	} else {
		copy(content, p)
	}
	frame(fw)
	want := make([]byte, size)
	held := map[string][]byte{} // content by version, as the watcher rebuilt it
	for i, off := range []int{0, 1000, size - 3} {
		patch := []byte{byte('a' + i), byte('b' + i), byte('c' + i)}
		c.expect(fmt.Sprintf("SET big %d at=%d\n%s\n", len(patch), off, patch), "OK ")
		copy(want[off:], patch)
		h, p := frame(dw)
		if h[0] != "DELTA" || len(h) != 6 {
			t.Fatalf("change %d: delta watcher got %q, want a DELTA frame", i, h)
		}
		sz, _ := strconv.ParseInt(h[3], 10, 64)
		at, _ := strconv.ParseInt(h[4], 10, 64)
		if len(p) > len(patch) || at != int64(off) {
			t.Errorf("change %d: DELTA of %d bytes at %d, want the %d changed bytes at %d", i, len(p), at, len(patch), off)
		}
		got, err := proto.ApplyDelta(content, sz, at, p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("change %d: the rebuilt content differs from the region's (%v): header %q, %d bytes, first diff at %d", i, err, h, len(got), firstDiffIndex(got, want))
		}
		content = got
		held[h[2]] = got
		if h, p := frame(fw); h[0] != "EVENT" || !bytes.Equal(p, want) {
			t.Fatalf("change %d: full watcher got %q (%d bytes), want the whole content in an EVENT", i, h, len(p))
		}
	}

	// A watcher that holds an older version (two changes back) gets one
	// DELTA spanning both changes.
	late := dial(t, ts.addr)
	late.expect("WATCH big from=1 delta=1\n", "OK 3")
	h, p := frame(late)
	if h[0] != "DELTA" || h[2] != "3" || len(p) >= size {
		t.Fatalf("watcher resuming from version 1 got %q (%d bytes), want one DELTA to version 3", h, len(p))
	}
	sz, _ := strconv.ParseInt(h[3], 10, 64)
	at, _ := strconv.ParseInt(h[4], 10, 64)
	if got, err := proto.ApplyDelta(held["1"], sz, at, p); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the DELTA from version 1 does not rebuild version 3 (%v)", err)
	}
}

// firstDiffIndex returns the first index where a and b differ (or the
// shorter length).
func firstDiffIndex(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
