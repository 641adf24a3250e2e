package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/resp"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// startRESP starts a server for a fresh host serving the Redis protocol
// on a loopback port (TLS if tlsCfg is set), as startServer does.
func startRESP(t testing.TB, cfg Config, tlsCfg *tls.Config) *testServer {
	t.Helper()
	return startServing(t, cfg, nil, tlsCfg, true)
}

// rconn is a bare RESP client connection.
type rconn struct {
	t   testing.TB
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
}

func rdial(t testing.TB, nc net.Conn) *rconn {
	t.Cleanup(func() { nc.Close() })
	return &rconn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func rdialTCP(t testing.TB, addr string) *rconn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return rdial(t, nc)
}

func (c *rconn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one reply and renders it; "EOF" when the server closed the
// connection.
func (c *rconn) reply() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if r, n, err := resp.ParseReply(c.buf); err != nil {
			c.t.Fatalf("reply %q: %v", c.buf, err)
		} else if n > 0 {
			s := r.String()
			c.buf = c.buf[n:]
			return s
		}
		b := make([]byte, 4096)
		n, err := c.br.Read(b)
		if n == 0 && err != nil {
			return "EOF"
		}
		c.buf = append(c.buf, b[:n]...)
	}
}

func cmd(args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return resp.AppendCommand(nil, bs...)
}

func (c *rconn) do(args ...string) string {
	c.t.Helper()
	c.write(cmd(args...))
	return c.reply()
}

// TestRESPPipelineOrder sends a thousand mixed commands in one write:
// the replies come in request order, errors in their places.
func TestRESPPipelineOrder(t *testing.T) {
	ts := startRESP(t, Config{}, nil)
	c := rdialTCP(t, ts.addr)
	var in []byte
	var want []string
	for i := range 250 {
		v := fmt.Sprintf("v%d", i)
		in = append(in, cmd("SET", "k", v)...)
		in = append(in, cmd("GET", "k")...)
		in = append(in, "PING\r\n"...)
		in = append(in, cmd("NOPE", v)...)
		want = append(want, "OK", fmt.Sprintf("%q", v), "PONG", fmt.Sprintf("(error ERR unknown command 'NOPE', with args beginning with: '%s' )", v))
	}
	c.write(in)
	for i, w := range want {
		if got := c.reply(); got != w {
			t.Fatalf("reply %d = %s, want %s", i, got, w)
		}
	}
}

// TestRESPSplit writes a pipelined stream one byte per write: the server
// reassembles every command.
func TestRESPSplit(t *testing.T) {
	ts := startRESP(t, Config{}, nil)
	c := rdialTCP(t, ts.addr)
	in := append(cmd("SET", "k", "a\r\nb"), cmd("GET", "k")...)
	in = append(in, "ECHO \"x y\"\r\n"...)
	for _, b := range in {
		c.write([]byte{b})
	}
	for _, w := range []string{"OK", `"a\r\nb"`, `"x y"`} {
		if got := c.reply(); got != w {
			t.Fatalf("reply = %s, want %s", got, w)
		}
	}
}

// TestRESPProtocolError: a malformed request gets Redis's protocol error
// and the connection is closed; the replies before it are delivered.
func TestRESPProtocolError(t *testing.T) {
	ts := startRESP(t, Config{}, nil)
	for _, tt := range []struct{ in, want string }{
		{"*x\r\n", "(error ERR Protocol error: invalid multibulk length)"},
		{"*1\r\n:1\r\n", "(error ERR Protocol error: expected '$', got ':')"},
		{"ECHO \"a\r\n", "(error ERR Protocol error: unbalanced quotes in request)"},
	} {
		c := rdialTCP(t, ts.addr)
		c.write([]byte("PING\r\n" + tt.in))
		if got := c.reply(); got != "PONG" {
			t.Errorf("%q: first reply %s, want PONG", tt.in, got)
		}
		if got := c.reply(); got != tt.want {
			t.Errorf("%q: %s, want %s", tt.in, got, tt.want)
		}
		if got := c.reply(); got != "EOF" {
			t.Errorf("%q: after the protocol error: %s, want the connection closed", tt.in, got)
		}
	}
	shmtest.CheckFor(t, 5*time.Second, "connections not closed", func() bool { return ts.srv.Connections() == 0 })
}

// TestRESPLimits: the shmgr port's limits apply, in RESP's form.
func TestRESPLimits(t *testing.T) {
	ts := startRESP(t, Config{MaxConns: 1}, nil)
	first := rdialTCP(t, ts.addr)
	if got := first.do("PING"); got != "PONG" {
		t.Fatalf("PING = %s", got)
	}
	second := rdialTCP(t, ts.addr)
	if got := second.reply(); !strings.HasPrefix(got, "(error ERR max number of clients reached") {
		t.Errorf("a connection over --max-connections got %s", got)
	}
	// The idle timeout closes a quiet connection, but not a subscriber
	// (messages flow the other way), as for shmgr watchers.
	ts3 := startRESP(t, Config{IdleTimeout: 300 * time.Millisecond}, nil)
	// The subscriber speaks last before the other: without its exemption
	// its deadline would pass first.
	sub, idle := rdialTCP(t, ts3.addr), rdialTCP(t, ts3.addr)
	sub.do("SUBSCRIBE", "__keyspace@0__:k")
	idle.do("PING")
	if got := idle.reply(); got != "(error ERR connection closed: too long idle)" {
		t.Errorf("an idle connection got %s, want the idle timeout's error", got)
	}
	if got := idle.reply(); got != "EOF" {
		t.Errorf("after the idle timeout: %s", got)
	}
	if got := sub.do("PING"); got != `*["pong" ""]` {
		t.Errorf("a subscriber as quiet as the closed connection: PING = %s, want it open", got)
	}
	// A big value is refused by the payload limit, as on the shmgr port.
	ts2 := startRESP(t, Config{Limits: proto.Limits{MaxLine: proto.DefaultMaxLine, MaxPayload: 1024}}, nil)
	c := rdialTCP(t, ts2.addr)
	if got := c.do("SET", "k", strings.Repeat("x", 2048)); !strings.Contains(got, "Protocol error: invalid bulk length") {
		t.Errorf("SET of 2 KiB with a 1 KiB payload limit = %s", got)
	}
}

// TestRESPMetrics: RESP commands are counted in the host's metrics by
// family and outcome.
func TestRESPMetrics(t *testing.T) {
	ts := startRESP(t, Config{}, nil)
	c := rdialTCP(t, ts.addr)
	c.do("SET", "k", "v")
	c.do("GET", "k")
	c.do("GET", "k")
	c.do("SET", "k", "\xff")
	c.do("NOPE")
	c.do("QUIT")
	var b strings.Builder
	shmtest.CheckFor(t, 5*time.Second, "metrics", func() bool {
		b.Reset()
		ts.m.WriteText(&b)
		return strings.Contains(b.String(), `command="resp_connection"`)
	})
	for _, want := range []string{
		`shmgr_requests_total{command="resp_get",outcome="ok"} 2`,
		`shmgr_requests_total{command="resp_set",outcome="ok"} 1`,
		`shmgr_requests_total{command="resp_set",outcome="invalid_utf8"} 1`,
		`shmgr_requests_total{command="resp_error",outcome="unknown_command"} 1`,
		`shmgr_payload_bytes_total{direction="in"} 2`, // the values SET wrote, "v" and "\xff"
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
}

// TestRESPTLS: the listener serves TLS like the shmgr port.
func TestRESPTLS(t *testing.T) {
	cert, err := certs.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := startRESP(t, Config{}, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	pin, err := certs.PinnedConfig(certs.Fingerprint(cert.Certificate[0]))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := tls.Dial("tcp", ts.addr, pin)
	if err != nil {
		t.Fatal(err)
	}
	c := rdial(t, nc)
	if got := c.do("SET", "k", "over tls"); got != "OK" {
		t.Errorf("SET over TLS = %s", got)
	}
	if got := c.do("GET", "k"); got != `"over tls"` {
		t.Errorf("GET over TLS = %s", got)
	}
}

// TestRESPKeyspace runs subscriptions under the race detector: a
// channel, a pattern over keys made later, deletion, RESP3 pushes.
func TestRESPKeyspace(t *testing.T) {
	ts := startRESP(t, Config{}, nil)
	w := rdialTCP(t, ts.addr)
	w.do("SET", "a", "1")
	sub := rdialTCP(t, ts.addr)
	sub.do("HELLO", "3")
	if got := sub.do("SUBSCRIBE", "__keyspace@0__:a"); got != `>["subscribe" "__keyspace@0__:a" (integer 1)]` {
		t.Fatalf("SUBSCRIBE = %s", got)
	}
	if got := sub.do("PSUBSCRIBE", "__keyspace@0__:n*"); got != `>["psubscribe" "__keyspace@0__:n*" (integer 2)]` {
		t.Fatalf("PSUBSCRIBE = %s", got)
	}
	for i := range 3 {
		w.do("SET", "a", fmt.Sprint(i))
		if got := sub.reply(); got != `>["message" "__keyspace@0__:a" "set"]` {
			t.Fatalf("after SET a: %s", got)
		}
		// RESP3 lets a subscriber run commands between pushes.
		if got := sub.do("GET", "a"); got != fmt.Sprintf("%q", fmt.Sprint(i)) {
			t.Fatalf("GET a while subscribed = %s", got)
		}
	}
	w.do("SET", "new", "x")
	if got := sub.reply(); got != `>["pmessage" "__keyspace@0__:n*" "__keyspace@0__:new" "set"]` {
		t.Fatalf("after SET of a new key: %s", got)
	}
	w.do("DEL", "a")
	if got := sub.reply(); got != `>["message" "__keyspace@0__:a" "del"]` {
		t.Fatalf("after DEL a: %s", got)
	}
	w.do("SET", "a", "again")
	if got := sub.reply(); got != `>["message" "__keyspace@0__:a" "set"]` {
		t.Fatalf("after SET of a deleted key: %s", got)
	}
	if got := sub.do("UNSUBSCRIBE", "__keyspace@0__:a"); got != `>["unsubscribe" "__keyspace@0__:a" (integer 1)]` {
		t.Fatalf("UNSUBSCRIBE = %s", got)
	}
	if n := ts.m.Watchers.Load(); n != 1 {
		t.Errorf("watchers = %d after UNSUBSCRIBE, want 1 (the pattern's region)", n)
	}
}

// TestRESPWatchCounter increments one counter from several connections
// with WATCH / GET / MULTI / SET / EXEC, retrying when EXEC is aborted:
// every committed EXEC is a write at the version its WATCH saw, so no
// increment is lost and the counter ends at the number of successes.
func TestRESPWatchCounter(t *testing.T) {
	ts := startRESP(t, Config{}, nil)
	rdialTCP(t, ts.addr).do("SET", "counter", "0")
	const workers, each = 4, 25
	errc := make(chan error, workers)
	aborted := make(chan int, workers)
	for range workers {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := &rconn{t: t, nc: nc, br: bufio.NewReader(nc)}
		t.Cleanup(func() { nc.Close() })
		go func() {
			n := 0
			defer func() { aborted <- n }()
			for done := 0; done < each; {
				if n > 100*each {
					errc <- fmt.Errorf("%d aborted transactions: no progress", n)
					return
				}
				if r := c.doQuiet("WATCH", "counter"); r != "OK" {
					errc <- fmt.Errorf("WATCH = %s", r)
					return
				}
				v := c.doQuiet("GET", "counter")
				var cur int
				fmt.Sscanf(strings.Trim(v, `"`), "%d", &cur)
				c.doQuiet("MULTI")
				c.doQuiet("SET", "counter", fmt.Sprint(cur+1))
				switch r := c.doQuiet("EXEC"); r {
				case "*[OK]":
					done++
				case "(nil)":
					n++
				default:
					errc <- fmt.Errorf("EXEC = %s", r)
					return
				}
			}
			errc <- nil
		}()
	}
	total := 0
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		total += <-aborted
	}
	if got := rdialTCP(t, ts.addr).do("GET", "counter"); got != fmt.Sprintf("%q", fmt.Sprint(workers*each)) {
		t.Errorf("counter = %s after %d committed increments (%d aborted), want %d", got, workers*each, total, workers*each)
	}
	t.Logf("%d increments committed, %d transactions aborted by a conflicting write", workers*each, total)
}

// doQuiet is do for other goroutines: failures come back as the reply
// "(failed ...)" instead of ending the test from outside its goroutine.
func (c *rconn) doQuiet(args ...string) string {
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(cmd(args...)); err != nil {
		return "(failed " + err.Error() + ")"
	}
	for {
		if r, n, err := resp.ParseReply(c.buf); err != nil {
			return "(failed " + err.Error() + ")"
		} else if n > 0 {
			c.buf = c.buf[n:]
			return r.String()
		}
		b := make([]byte, 4096)
		n, err := c.br.Read(b)
		if n == 0 && err != nil {
			return "(failed " + err.Error() + ")"
		}
		c.buf = append(c.buf, b[:n]...)
	}
}

// BenchmarkRESP measures GET and SET of 4 KiB values on one loopback
// connection, 16 commands a write, against a real server. The client
// side allocates nothing per op (its requests are built once and its
// replies counted, not parsed), so allocs/op is the server's.
func BenchmarkRESP(b *testing.B) {
	ts := startRESP(b, Config{}, nil)
	value := strings.Repeat("x", 4096)
	rdialTCP(b, ts.addr).do("SET", "key:000000000042", value)
	for _, tt := range []struct {
		name  string
		req   []byte
		reply int
	}{
		{"GET", cmd("GET", "key:000000000042"), len("$4096\r\n") + 4096 + 2},
		{"SET", cmd("SET", "key:000000000042", value), len("+OK\r\n")},
	} {
		b.Run("cmd="+tt.name+"/P=16", func(b *testing.B) {
			const depth = 16
			c := rdialTCP(b, ts.addr)
			batch := bytes.Repeat(tt.req, depth)
			buf := make([]byte, 64<<10)
			b.SetBytes(4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				if _, err := c.nc.Write(batch); err != nil {
					b.Fatal(err)
				}
				for want := depth * tt.reply; want > 0; {
					n, err := c.nc.Read(buf[:min(len(buf), want)])
					if err != nil {
						b.Fatal(err)
					}
					want -= n
				}
			}
		})
	}
}

// TestRESPFaults: a client that sends half a command and stalls is
// disconnected after ReadTimeout; a SET on a region whose lock another
// holder keeps fails after LockTimeout with an error that says so, and
// the connection goes on serving.
func TestRESPFaults(t *testing.T) {
	ts := startRESP(t, Config{ReadTimeout: 300 * time.Millisecond, LockTimeout: 100 * time.Millisecond}, nil)
	slow := rdialTCP(t, ts.addr)
	slow.write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc"))
	if got := slow.reply(); got != "(error ERR connection closed: too long sending one request)" {
		t.Errorf("a stalled half command got %s", got)
	}
	if got := slow.reply(); got != "EOF" {
		t.Errorf("after the read timeout: %s", got)
	}

	hr, err := ts.h.Get("default")
	if err != nil {
		t.Fatal(err)
	}
	var token uint64
	if err := hr.Do(func(r *region.Region) (err error) {
		token, err = r.Acquire(time.Second, 10*time.Second, []byte("a test holding the lock"), nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c := rdialTCP(t, ts.addr)
	if got := c.do("SET", "default", "x"); !strings.HasPrefix(got, "(error ERR ") || !strings.Contains(got, "lock") || !strings.Contains(got, "a test holding the lock") {
		t.Errorf("SET while another holds the lock = %s, want a lock timeout naming the holder", got)
	}
	if got := c.do("GET", "default"); got != `""` {
		t.Errorf("GET while the lock is held = %s, want the old content (readers do not wait)", got)
	}
	if err := hr.Do(func(r *region.Region) error { return r.Release(token) }); err != nil {
		t.Fatal(err)
	}
	if got := c.do("SET", "default", "x"); got != "OK" {
		t.Errorf("SET after the lock was released = %s", got)
	}
	var b strings.Builder
	ts.m.WriteText(&b)
	if !strings.Contains(b.String(), "shmgr_lock_timeouts_total 1\n") {
		t.Errorf("lock timeouts not counted:\n%s", b.String())
	}
}
