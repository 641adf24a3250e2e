package main_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/resp"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// respToken is the admin token of the hosts (and the requirepass of the
// Redis servers) in these tests.
const respToken = "shm_5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"

// startRESPHost starts a host with --resp-listen on a free loopback port
// and returns it with the RESP address.
func startRESPHost(t *testing.T, args ...string) (*shmtest.Host, string) {
	t.Helper()
	h := startHost(t, append([]string{"--resp-listen", "127.0.0.1:0"}, args...)...)
	v := bannerValue(t, h, "redis")
	addr, _, _ := strings.Cut(v, " ")
	return h, addr
}

// startRedisArgs starts Debian's redis-server on a free loopback port, with
// no persistence, and stops it when the test ends. It skips the test,
// saying why, if redis-server is not installed.
func startRedisArgs(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
	}
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		dir := t.TempDir()
		cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "log")}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		up := false
		shmtest.CheckFor(t, 10*time.Second, "redis-server did not start", func() bool {
			select {
			case <-done:
				return true
			default:
			}
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				up = true
			}
			return up
		})
		if up {
			return addr
		}
	}
	t.Fatal("redis-server exited three times at start (port taken?)")
	return ""
}

// respClient is a raw RESP connection.
type respClient struct {
	t   testing.TB
	nc  net.Conn
	buf []byte
	r   *bufio.Reader
}

func dialRESP(t testing.TB, addr string) *respClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &respClient{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *respClient) send(cmds ...[]string) {
	c.t.Helper()
	var b []byte
	for _, args := range cmds {
		bs := make([][]byte, len(args))
		for i, a := range args {
			bs[i] = []byte(a)
		}
		b = resp.AppendCommand(b, bs...)
	}
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads one reply.
func (c *respClient) read() resp.Reply {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		if len(c.buf) > 0 {
			r, n, err := resp.ParseReply(c.buf)
			if err != nil {
				c.t.Fatalf("reply %q: %v", c.buf, err)
			}
			if n > 0 {
				// Detach the reply from the buffer before moving on.
				r = cloneReply(r)
				c.buf = c.buf[n:]
				return r
			}
		}
		chunk := make([]byte, 64<<10)
		n, err := c.r.Read(chunk)
		if err != nil {
			c.t.Fatalf("read (have %q): %v", c.buf, err)
		}
		c.buf = append(c.buf, chunk[:n]...)
	}
}

func cloneReply(r resp.Reply) resp.Reply {
	r.Str = slices.Clone(r.Str)
	for i := range r.Elems {
		r.Elems[i] = cloneReply(r.Elems[i])
	}
	return r
}

func (c *respClient) do(args ...string) resp.Reply {
	c.t.Helper()
	c.send(args)
	return c.read()
}

// respStep is one step of a scripted session: a command on connection
// conn (0 or 1), or, with no args, one more reply (a pushed message) to
// read on it.
type respStep struct {
	conn int
	args []string
}

func s0(args ...string) respStep { return respStep{0, args} }
func s1(args ...string) respStep { return respStep{1, args} }
func push0() respStep            { return respStep{0, nil} }

// normalise rewrites what must differ between Redis and shmgr in the
// reply to args: server names, versions and ids; INFO's and COMMAND's
// contents (reduced to their shape); the order of KEYS and SCAN.
func normalise(args []string, r resp.Reply) string {
	cmd := strings.ToUpper(args[0])
	sub := ""
	if len(args) > 1 {
		sub = strings.ToUpper(args[1])
	}
	switch {
	case cmd == "HELLO" && r.Type != '-':
		for i := 0; i+1 < len(r.Elems); i += 2 {
			switch string(r.Elems[i].Str) {
			case "server", "version":
				r.Elems[i+1] = resp.Reply{Type: '$', Str: []byte("*")}
			case "id":
				r.Elems[i+1] = resp.Reply{Type: ':'}
			}
		}
	case cmd == "CLIENT" && sub == "ID", cmd == "COMMAND" && sub == "COUNT":
		r.Int = 0
	case cmd == "INFO":
		return fmt.Sprintf("(info type %c, loading:0 %v)", r.Type, strings.Contains(string(r.Str), "loading:0\r\n"))
	case cmd == "COMMAND" && sub == "DOCS":
		return fmt.Sprintf("(docs type %c, %v entries)", r.Type, len(r.Elems) > 0)
	case cmd == "KEYS":
		slices.SortFunc(r.Elems, func(a, b resp.Reply) int { return strings.Compare(string(a.Str), string(b.Str)) })
	case cmd == "SCAN" && len(r.Elems) == 2:
		slices.SortFunc(r.Elems[1].Elems, func(a, b resp.Reply) int { return strings.Compare(string(a.Str), string(b.Str)) })
	}
	return r.String()
}

// runSession runs steps against a server at addr and returns the
// normalised replies, one line each. pipelined sends each run of
// connection-0 commands in one write before reading their replies.
func runSession(t *testing.T, addr string, steps []respStep, pipelined bool) []string {
	t.Helper()
	conns := []*respClient{dialRESP(t, addr), dialRESP(t, addr)}
	conns[1].send([]string{"AUTH", respToken})
	conns[1].read()
	var out []string
	for i := 0; i < len(steps); {
		st := steps[i]
		c := conns[st.conn]
		if st.args == nil {
			out = append(out, fmt.Sprintf("%d push: %s", st.conn, c.read()))
			i++
			continue
		}
		j := i + 1
		if pipelined {
			for j < len(steps) && steps[j].conn == st.conn && steps[j].args != nil && !strings.EqualFold(steps[j-1].args[0], "QUIT") {
				j++
			}
		}
		batch := make([][]string, 0, j-i)
		for _, s := range steps[i:j] {
			batch = append(batch, s.args)
		}
		c.send(batch...)
		for _, s := range steps[i:j] {
			out = append(out, fmt.Sprintf("%d %q: %s", s.conn, s.args, normalise(s.args, c.read())))
		}
		i = j
	}
	return out
}

// respSessions are the scripted sessions of the differential test:
// every command the listener serves, its errors, RESP2 and RESP3.
func respSessions() map[string][]respStep {
	bin := "a\r\n\x00b\xe2\x82\xac"
	return map[string][]respStep{
		"connection": {
			s0("PING"), s0("GET", "greeting"), s0("AUTH", "nope"), s0("AUTH", "default", "nope"),
			s0("HELLO", "2"), s0("AUTH", respToken), s0("AUTH", "default", respToken),
			s0("PING"), s0("PING", "hi"), s0("PING", "a", "b"), s0("ECHO", "x y"), s0("ECHO"),
			s0("SELECT", "0"), s0("SELECT", "x"),
			s0("CLIENT", "SETNAME", "a b"), s0("CLIENT", "GETNAME"), s0("CLIENT", "SETNAME", "me"), s0("CLIENT", "GETNAME"),
			s0("CLIENT", "ID"), s0("CLIENT", "FOO"), s0("CLIENT", "GETNAME", "x"),
			s0("HELLO", "4"), s0("HELLO", "x"), s0("HELLO", "3"), s0("CLIENT", "GETNAME"), s0("GET", "missing"),
			s0("HELLO", "2", "SETNAME", "other"), s0("CLIENT", "GETNAME"),
			s0("HELLO", "3", "AUTH", "default", respToken, "SETNAME", "third"), s0("HELLO", "2", "BOGUS"),
			s0("INFO"), s0("INFO", "persistence"), s0("CONFIG", "GET", "save"), s0("CONFIG", "GET", "appendonly"),
			s0("COMMAND", "COUNT"), s0("COMMAND", "DOCS", "get"), s0("DBSIZE"),
			s0("FOO", "bar", "baz"), s0("QUIT"),
		},
		"strings": {
			s0("AUTH", respToken), s0("SET", "greeting", "hello"), s0("GET", "greeting"), s0("GET", "missing"),
			s0("SET", "greeting", "world", "NX"), s0("SET", "new", "v", "XX"), s0("GET", "new"),
			s0("SET", "greeting", "w2", "XX", "GET"), s0("SET", "k2", "v2", "NX", "GET"), s0("GET", "k2"),
			s0("SET", "k", "v", "NX", "XX"), s0("SET", "k", "v", "BOGUS"), s0("SET", "k"), s0("GET"),
			s0("STRLEN", "greeting"), s0("STRLEN", "missing"),
			s0("GETRANGE", "greeting", "0", "1"), s0("GETRANGE", "greeting", "-2", "-1"), s0("GETRANGE", "greeting", "1", "0"),
			s0("GETRANGE", "greeting", "0", "100"), s0("GETRANGE", "missing", "0", "1"), s0("GETRANGE", "greeting", "a", "1"),
			s0("SETRANGE", "greeting", "1", "XY"), s0("GET", "greeting"), s0("SETRANGE", "greeting", "-1", "x"),
			s0("SETRANGE", "pad", "3", "ab"), s0("GET", "pad"), s0("SETRANGE", "missing", "0", ""), s0("EXISTS", "missing"),
			s0("SET", "bin", bin), s0("GET", "bin"), s0("STRLEN", "bin"),
			s0("SET", "user:42", "x"), s0("GET", "user:42"),
			s0("EXISTS", "greeting", "missing", "greeting"), s0("TYPE", "greeting"), s0("TYPE", "missing"),
			s0("KEYS", "*"), s0("KEYS", "g*"), s0("KEYS", "user:*"), s0("SCAN", "0", "COUNT", "1000"), s0("SCAN", "0", "MATCH", "*e*", "COUNT", "1000"),
			s0("SCAN", "x"), s0("DBSIZE"),
			s0("DEL", "pad", "missing"), s0("DEL", "missing"), s0("EXISTS", "pad"), s0("DBSIZE"),
			s0("HELLO", "3"), s0("GET", "missing"), s0("GET", "greeting"), s0("CONFIG", "GET", "save"), s0("SET", "k2", "x", "NX"),
		},
		"transactions": {
			s0("AUTH", respToken), s0("SET", "greeting", "hello"),
			s0("MULTI"), s0("SET", "greeting", "a"), s0("GET", "greeting"), s0("STRLEN", "greeting"), s0("EXEC"),
			s0("MULTI"), s0("GET", "greeting"), s0("DISCARD"), s0("EXEC"), s0("DISCARD"),
			s0("MULTI"), s0("MULTI"), s0("DISCARD"),
			s0("MULTI"), s0("FOO"), s0("GET", "greeting"), s0("EXEC"),
			s0("MULTI"), s0("GET"), s0("EXEC"),
			s0("MULTI"), s0("WATCH", "greeting"), s0("EXEC"), s0("WATCH", "x", "y"), s0("UNWATCH"),
			s0("WATCH", "greeting"), s1("SET", "greeting", "other"), s0("MULTI"), s0("SET", "greeting", "b"), s0("EXEC"), s0("GET", "greeting"),
			s0("WATCH", "greeting"), s0("MULTI"), s0("SET", "greeting", "c"), s0("EXEC"), s0("GET", "greeting"),
			s0("WATCH", "fresh"), s1("SET", "fresh", "made"), s0("MULTI"), s0("SET", "fresh", "mine"), s0("EXEC"),
			s0("WATCH", "greeting"), s0("UNWATCH"), s1("SET", "greeting", "d"), s0("MULTI"), s0("SET", "greeting", "e"), s0("EXEC"),
			s0("HELLO", "3"), s0("WATCH", "greeting"), s1("SET", "greeting", "f"), s0("MULTI"), s0("GET", "greeting"), s0("EXEC"),
		},
		"keyspace": {
			s0("AUTH", respToken), s0("SET", "greeting", "hello"),
			s0("SUBSCRIBE", "__keyspace@0__:greeting"), s1("SET", "greeting", "x"), push0(),
			s0("PING"), s0("PING", "p"), s0("GET", "greeting"),
			s0("PSUBSCRIBE", "__keyspace@0__:gr*"), s1("SET", "greeting", "y"), push0(), push0(),
			s0("UNSUBSCRIBE"), s0("PUNSUBSCRIBE"), s0("UNSUBSCRIBE"), s0("GET", "greeting"),
			s0("HELLO", "3"), s0("SUBSCRIBE", "__keyspace@0__:greeting"), s1("SET", "greeting", "z"), push0(),
			s0("GET", "greeting"), s0("UNSUBSCRIBE", "__keyspace@0__:greeting"),
		},
	}
}

// TestRESPDifferential runs the same scripted sessions against Debian's
// redis-server and against the host's RESP listener, each command alone
// and then pipelined, and compares the replies after normalising only
// what must differ.
func TestRESPDifferential(t *testing.T) {
	redisAddr := startRedisArgs(t, "--requirepass", respToken, "--notify-keyspace-events", "K$g")
	for name, steps := range respSessions() {
		for _, pipelined := range []bool{false, true} {
			t.Run(fmt.Sprintf("session=%s/pipelined=%v", name, pipelined), func(t *testing.T) {
				_, addr := startRESPHost(t, "--token", respToken)
				// The host's default region is a key that always exists.
				rc := dialRESP(t, redisAddr)
				rc.do("AUTH", respToken)
				rc.do("FLUSHALL")
				rc.do("SET", "default", "")
				want := runSession(t, redisAddr, steps, pipelined)
				got := runSession(t, addr, steps, pipelined)
				t.Logf("transcript:\n%s", strings.Join(got, "\n"))
				for i := range max(len(got), len(want)) {
					g, w := "(none)", "(none)"
					if i < len(got) {
						g = got[i]
					}
					if i < len(want) {
						w = want[i]
					}
					if g != w {
						t.Errorf("step %d:\n  shmgr: %s\n  redis: %s", i, g, w)
					}
				}
			})
		}
	}
}

// TestRESPInline compares inline commands (as redis-cli and telnet
// send them, quotes included) against redis-server.
func TestRESPInline(t *testing.T) {
	redisAddr := startRedisArgs(t)
	_, addr := startRESPHost(t)
	in := "PING\r\nECHO \"a b\\x41\\n\"\r\nECHO 'it\\'s'\r\n\r\nSET k \"v w\"\r\nGET k\r\nECHO \"unbalanced\r\n"
	var replies [2][]string
	for i, a := range []string{redisAddr, addr} {
		c := dialRESP(t, a)
		c.nc.Write([]byte(in))
		for range 6 {
			replies[i] = append(replies[i], c.read().String())
		}
	}
	if !slices.Equal(replies[0], replies[1]) {
		t.Errorf("inline commands:\n  shmgr: %q\n  redis: %q", replies[1], replies[0])
	}
}

// TestRESPStrangerLimits: before AUTH a connection may send only a few
// small arguments, as Redis allows; both answer the same protocol error
// and hang up.
func TestRESPStrangerLimits(t *testing.T) {
	redisAddr := startRedisArgs(t, "--requirepass", respToken)
	_, addr := startRESPHost(t, "--token", respToken)
	for _, in := range []string{"*11\r\n", "*2\r\n$4\r\nECHO\r\n$20000\r\n"} {
		var got [2]string
		for i, a := range []string{redisAddr, addr} {
			c := dialRESP(t, a)
			c.nc.Write([]byte(in))
			got[i] = c.read().String()
		}
		if got[0] != got[1] || !strings.Contains(got[1], "Protocol error: unauthenticated") {
			t.Errorf("stranger sends %q:\n  shmgr: %s\n  redis: %s", in, got[1], got[0])
		}
	}
}

// TestRESPRefusals checks what shmgr refuses where Redis would not, each
// with an error that says why.
func TestRESPRefusals(t *testing.T) {
	h, addr := startRESPHost(t)
	c := dialRESP(t, addr)
	mustCLI(t, h.Addr, "create", "rawk", "--layout", "raw", "--size", "8")
	mustCLI(t, h.Addr, "create", "small", "--size", "16")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"SET", "k", "v", "EX", "10"}, "ERR shmgr keys do not expire"},
		{[]string{"SELECT", "1"}, "ERR DB index is out of range"},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "go-redis"}, ""}, // Redis 7.2's, not Debian's 7.0
		{[]string{"CLIENT", "SETINFO", "LIB-VER", "9.0"}, ""},
		{[]string{"COMMAND"}, ""},
		{[]string{"COMMAND", "INFO", "get"}, ""},
		{[]string{"SET", "k", "\xff\xfe"}, "ERR value is not valid UTF-8 (invalid byte 0xff at offset 0)"},
		{[]string{"SET", "small", strings.Repeat("x", 12)}, "ERR value does not fit the region of key 'small'"},
		{[]string{"SETRANGE", "small", "5", strings.Repeat("x", 8)}, "ERR SETRANGE at offset 5 with 8 bytes passes the end of the region of key 'small'"},
		{[]string{"SET", "rawk", "abc"}, "WRONGTYPE Operation against a key holding the wrong kind of value: key 'rawk' is a raw region of 8 bytes"},
		{[]string{"SET", ":k", "v"}, "ERR key cannot name a region"},
		{[]string{"SET", "a_3a", "v"}, "which the key mapping reads back as another byte"},
		{[]string{"DEL", "default"}, "ERR key 'default' is the host's default region"},
		{[]string{"MULTI"}, ""},
		{[]string{"SET", "a", "1"}, ""},
		{[]string{"SET", "b", "2"}, ""},
		{[]string{"EXEC"}, "EXECABORT Transaction discarded: it touches keys 'a' and 'b'"},
		{[]string{"MULTI"}, ""},
		{[]string{"KEYS", "*"}, "ERR KEYS inside MULTI is not supported by shmgr"},
		{[]string{"EXEC"}, "EXECABORT Transaction discarded because of previous errors."},
	}
	for _, tt := range cases {
		r := c.do(tt.args...)
		if tt.want == "" {
			if r.Type == '-' {
				t.Errorf("%q = %s, want success", tt.args, r)
			}
			continue
		}
		if r.Type != '-' || !strings.Contains(string(r.Str), tt.want) {
			t.Errorf("%q = %s, want an error containing %q", tt.args, r, tt.want)
		}
	}
	// Binary values live in raw regions: exactly their size, any bytes.
	if r := c.do("SET", "rawk", "\x00\xff\r\n\x01\x02\x03\x04"); r.String() != "OK" {
		t.Errorf("SET rawk (8 binary bytes) = %s", r)
	}
	if r := c.do("GET", "rawk"); string(r.Str) != "\x00\xff\r\n\x01\x02\x03\x04" {
		t.Errorf("GET rawk = %s", r)
	}
	// With --resp-create=false SET does not create regions.
	_, addr2 := startRESPHost(t, "--resp-create=false")
	c2 := dialRESP(t, addr2)
	if r := c2.do("SET", "fresh", "v"); r.Type != '-' || !strings.Contains(string(r.Str), "--resp-create=false") {
		t.Errorf("SET on a missing key with --resp-create=false = %s, want an error naming the flag", r)
	}
	if r := c2.do("SET", "default", "v"); r.String() != "OK" {
		t.Errorf("SET default with --resp-create=false = %s, want OK", r)
	}
}

// TestRESPEtag checks EXECWITHETAG and EXECIFMATCH: one-round-trip
// conditional writes on shmgr versions.
func TestRESPEtag(t *testing.T) {
	_, addr := startRESPHost(t)
	c := dialRESP(t, addr)
	r := c.do("EXECWITHETAG", "SET", "doc", "one")
	if len(r.Elems) != 2 || r.Elems[1].String() != "OK" {
		t.Fatalf("EXECWITHETAG SET = %s, want [version OK]", r)
	}
	v := r.Elems[0].Int
	r = c.do("EXECWITHETAG", "GET", "doc")
	if r.String() != fmt.Sprintf(`*[(integer %d) "one"]`, v) {
		t.Fatalf("EXECWITHETAG GET = %s, want [%d one]", r, v)
	}
	r = c.do("EXECIFMATCH", strconv.FormatInt(v, 10), "SET", "doc", "two")
	if len(r.Elems) != 2 || r.Elems[1].String() != "OK" || r.Elems[0].Int != v+1 {
		t.Fatalf("EXECIFMATCH at the current version = %s, want [%d OK]", r, v+1)
	}
	r = c.do("EXECIFMATCH", strconv.FormatInt(v, 10), "SET", "doc", "three")
	if r.String() != fmt.Sprintf("*[(integer %d) (nil)]", v+1) {
		t.Fatalf("EXECIFMATCH at a stale version = %s, want [%d nil]", r, v+1)
	}
	if r := c.do("GET", "doc"); string(r.Str) != "two" {
		t.Errorf("GET after the refused EXECIFMATCH = %s, want two", r)
	}
	if r := c.do("EXECIFMATCH", "x", "SET", "doc", "v"); r.Type != '-' {
		t.Errorf("EXECIFMATCH x = %s, want an error", r)
	}
}

// TestRESPAuthGrants checks AUTH, NOAUTH and NOPERM with the admin, a
// read-only and a per-region token.
func TestRESPAuthGrants(t *testing.T) {
	dir := t.TempDir()
	ro := strings.TrimSpace(tokenCmd(t, "add", "viewer", "--read-only", "--data-dir", dir))
	reg := strings.TrimSpace(tokenCmd(t, "add", "sensor", "--regions", "sensors,user_3a42", "--data-dir", dir))
	h := startHostAt(t, dir, "--token", respToken, "--resp-listen", "127.0.0.1:0")
	addr, _, _ := strings.Cut(bannerValue(t, h, "redis"), " ")

	admin := dialRESP(t, addr)
	if r := admin.do("GET", "sensors"); r.Type != '-' || !strings.HasPrefix(string(r.Str), "NOAUTH") {
		t.Errorf("GET before AUTH = %s, want NOAUTH", r)
	}
	if r := admin.do("AUTH", "shm_wrong"); r.Type != '-' || !strings.HasPrefix(string(r.Str), "WRONGPASS") {
		t.Errorf("AUTH wrong = %s, want WRONGPASS", r)
	}
	admin.do("AUTH", respToken)
	admin.do("SET", "sensors", "21C")
	admin.do("SET", "other", "x")

	viewer := dialRESP(t, addr)
	viewer.do("AUTH", "viewer", ro)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "sensors"}, `"21C"`},
		{[]string{"SET", "sensors", "x"}, `(error NOPERM token "viewer" is read-only: it may not run 'set')`},
		{[]string{"SETRANGE", "sensors", "0", "x"}, `(error NOPERM token "viewer" is read-only: it may not run 'setrange')`},
		{[]string{"DEL", "sensors"}, `(error NOPERM token "viewer" is read-only: it may not run 'del')`},
		{[]string{"MULTI"}, "OK"},
		{[]string{"SET", "sensors", "x"}, `(error NOPERM token "viewer" is read-only: it may not run 'set')`},
		{[]string{"EXEC"}, "(error EXECABORT Transaction discarded because of previous errors.)"},
	} {
		if r := viewer.do(tt.args...); r.String() != tt.want {
			t.Errorf("read-only %q = %s, want %s", tt.args, r, tt.want)
		}
	}
	sensor := dialRESP(t, addr)
	sensor.do("HELLO", "3", "AUTH", "default", reg)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "sensors"}, `"21C"`},
		{[]string{"SET", "user:42", "ok"}, "OK"},
		{[]string{"GET", "other"}, `(error NOPERM token "sensor" does not cover key 'other' (region "other"))`},
		{[]string{"SET", "other", "x"}, `(error NOPERM token "sensor" does not cover key 'other' (region "other"))`},
		{[]string{"KEYS", "*"}, `*["sensors" "user:42"]`},
		{[]string{"DBSIZE"}, "(integer 2)"},
		{[]string{"SUBSCRIBE", "__keyspace@0__:other"}, `(error NOPERM token "sensor" does not cover key 'other' (region "other"))`},
	} {
		if r := sensor.do(tt.args...); normalise(tt.args, r) != tt.want {
			t.Errorf("per-region %q = %s, want %s", tt.args, r, tt.want)
		}
	}
	// Removing a token cuts the RESP connections that authenticated with
	// it, as on the shmgr port: the next command gets NOAUTH, then EOF.
	tokenCmd(t, "rm", "viewer", "--data-dir", dir)
	var last resp.Reply
	shmtest.CheckFor(t, 10*time.Second, "the removed token's connection still works", func() bool {
		last = viewer.do("PING")
		return last.Type == '-'
	})
	if !strings.HasPrefix(string(last.Str), "NOAUTH the token this connection authenticated with was removed or changed") {
		t.Errorf("after token rm: %s, want NOAUTH saying the token was removed", last)
	}
	viewer.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := viewer.nc.Read(make([]byte, 1)); err == nil {
		t.Errorf("the revoked connection is still open (read %d bytes)", n)
	}
	// Three wrong tokens close the connection, as on the shmgr port.
	bad := dialRESP(t, addr)
	for range 3 {
		bad.do("AUTH", "shm_wrong")
	}
	bad.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := bad.nc.Read(make([]byte, 1)); err == nil {
		t.Errorf("after three wrong tokens the connection is open (read %d bytes)", n)
	}
}

// TestRESPKeyspaceWriters checks that a keyspace subscriber is told of
// every commit whoever wrote it: a shmgr protocol client over TCP, the
// Go client library, a local writer through the mapping, and a RESP
// client.
func TestRESPKeyspaceWriters(t *testing.T) {
	for _, ver := range []string{"2", "3"} {
		t.Run("resp="+ver, func(t *testing.T) {
			h, addr := startRESPHost(t)
			mustCLI(t, h.Addr, "create", "sensors")
			sub := dialRESP(t, addr)
			sub.do("HELLO", ver)
			if r := sub.do("SUBSCRIBE", "__keyspace@0__:sensors"); len(r.Elems) != 3 {
				t.Fatalf("SUBSCRIBE = %s", r)
			}
			if r := sub.do("PSUBSCRIBE", "__keyspace@0__:late*"); len(r.Elems) != 3 {
				t.Fatalf("PSUBSCRIBE = %s", r)
			}
			want := `["message" "__keyspace@0__:sensors" "set"]`
			check := func(who string) {
				t.Helper()
				r := sub.read()
				if got := r.String()[1:]; got != want {
					t.Errorf("after a write by %s: %s, want %s", who, r, want)
				}
			}
			mustCLI(t, h.Addr, "write", "--mode", "tcp", "--id", "sensors", "by tcp")
			check("the shmgr protocol (shmgr write --mode tcp)")
			mustCLI(t, h.Addr, "write", "--mode", "local", "--id", "sensors", "by a mapped local writer")
			check("a mapped local writer (shmgr write --mode local)")
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			for _, mode := range []client.Mode{client.ModeTCP, client.ModeLocal} {
				o := client.DefaultOptions()
				o.Mode = mode
				r, err := client.Dial(ctx, h.Addr, "sensors", o)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Write(ctx, []byte("by the Go client")); err != nil {
					t.Fatal(err)
				}
				r.Close()
				check(fmt.Sprintf("the Go client (%v)", r.Mode()))
			}
			w := dialRESP(t, addr)
			w.do("SET", "sensors", "by resp")
			check("a RESP client")
			// A key created after PSUBSCRIBE is found and notified.
			w.do("SET", "later", "new")
			if r := sub.read(); r.String()[1:] != `["pmessage" "__keyspace@0__:late*" "__keyspace@0__:later" "set"]` {
				t.Errorf("after SET of a new key matching the pattern: %s", r)
			}
			w.do("DEL", "later")
			if r := sub.read(); r.String()[1:] != `["pmessage" "__keyspace@0__:late*" "__keyspace@0__:later" "del"]` {
				t.Errorf("after DEL: %s", r)
			}
		})
	}
}

// TestRESPRedisCLI drives Debian's redis-cli against the binary.
func TestRESPRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools; .ci/run installs it)")
	}
	h, addr := startRESPHost(t)
	host, port, _ := net.SplitHostPort(addr)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("SET", "greeting", "hello"); got != "OK" {
		t.Errorf("redis-cli SET = %q", got)
	}
	if got := run("GET", "greeting"); got != "hello" {
		t.Errorf("redis-cli GET = %q", got)
	}
	if got := mustCLI(t, h.Addr, "read", "--id", "greeting"); got != "hello" {
		t.Errorf("shmgr read --id greeting = %q, want what redis-cli wrote", got)
	}
	run("SET", "user:42", "x")
	if got := strings.Fields(run("--scan")); !slices.Equal(got, []string{"default", "greeting", "user:42"}) {
		t.Errorf("redis-cli --scan = %q", got)
	}
	if got := mustCLI(t, h.Addr, "read", "--id", "user_3a42"); got != "x" {
		t.Errorf("the region of key user:42 (user_3a42) holds %q", got)
	}
	if got := run("-3", "GET", "greeting"); got != "hello" {
		t.Errorf("redis-cli -3 GET = %q", got)
	}
}

// TestRESPRedisCLITLS: with --tls the RESP listener serves TLS with the
// host's certificate, as the shmgr port does; redis-cli connects with
// --tls (skipping verification of the self-signed certificate).
func TestRESPRedisCLITLS(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools; .ci/run installs it)")
	}
	_, addr := startRESPHost(t, "--tls")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, "--tls", "--insecure", "-h", host, "-p", port, "SET", "k", "over tls").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("redis-cli --tls SET: %v\n%s", err, out)
	}
	// Plain text against the TLS port is not served.
	plain := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "PING")
	if out, err := plain.CombinedOutput(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
		t.Errorf("a plain-text PING was answered on the TLS port")
	}
}

// TestRESPRedisBenchmark runs Debian's redis-benchmark against the
// binary: every test must run to completion with no error.
func TestRESPRedisBenchmark(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark is not installed (apt-get install redis-tools; .ci/run installs it)")
	}
	_, addr := startRESPHost(t)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bench, "-h", host, "-p", port, "-t", "set,get,ping_inline,ping_mbulk", "-P", "16", "-q", "-n", "20000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Contains(text, "rror") || strings.Contains(text, "WARNING") {
		t.Errorf("redis-benchmark reported errors:\n%s", text)
	}
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET"} {
		if !strings.Contains(text, test+": ") || !strings.Contains(text, "requests per second") {
			t.Errorf("redis-benchmark output lacks %s's result:\n%s", test, text)
		}
	}
}

// TestRESPPython drives Debian's python3-redis (RESP2) against the
// binary: AUTH, GET/SET, pipelining, and pipeline.watch() with a
// conflicting writer.
func TestRESPPython(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import redis").Run(); err != nil {
		t.Skip("python3-redis is not installed (apt-get install python3-redis; .ci/run installs it)")
	}
	_, addr := startRESPHost(t, "--token", respToken)
	host, port, _ := net.SplitHostPort(addr)
	script := `
import sys, redis
r = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), password=sys.argv[3])
other = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), password=sys.argv[3])
assert r.ping()
assert r.set("counter", "1")
assert r.get("counter") == b"1", r.get("counter")
p = r.pipeline(transaction=False)
for i in range(50):
    p.set("user:%d" % i, str(i))
    p.get("user:%d" % i)
res = p.execute()
assert res[1] == b"0" and res[99] == b"49", res[:4]
def incr(pipe):
    v = int(pipe.get("counter"))
    pipe.multi()
    pipe.set("counter", str(v + 1))
assert r.transaction(incr, "counter") == [True]
assert r.get("counter") == b"2"
with r.pipeline() as pipe:
    pipe.watch("counter")
    v = int(pipe.get("counter"))
    other.set("counter", "100")
    pipe.multi()
    pipe.set("counter", str(v + 1))
    try:
        pipe.execute()
        print("no conflict")
        sys.exit(1)
    except redis.WatchError:
        pass
assert r.get("counter") == b"100"
try:
    r.set("k", "v", ex=10)
    sys.exit("SET EX accepted")
except redis.ResponseError as e:
    assert "do not expire" in str(e), e
print("ok", sorted(k.decode() for k in r.keys("user:1*"))[:3])
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, host, port, respToken).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok ") {
		t.Fatalf("python3-redis: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "ok ['user:1', 'user:10', 'user:11']" {
		t.Errorf("python3-redis printed %q", got)
	}
}

// TestRESPGoRedis drives go-redis with its defaults (HELLO 3, CLIENT
// SETINFO) against the binary: testdata/goredis, a module of its own so
// that shmgr does not depend on go-redis. It skips, saying so, when the
// module cannot be downloaded.
func TestRESPGoRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds go-redis (-short)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "goredis"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "goredis")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "dial tcp") || strings.Contains(string(out), "proxy") {
			t.Skipf("go-redis could not be downloaded (no module proxy?): %s", out)
		}
		t.Fatalf("go build testdata/goredis: %v\n%s", err, out)
	}
	_, addr := startRESPHost(t, "--token", respToken)
	out, err := exec.CommandContext(ctx, bin, addr, respToken).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("go-redis: %v\n%s", err, out)
	}
}

// ioredisDir is where .ci/run installs ioredis from npm (outside the
// repository); SHMGR_IOREDIS_DIR overrides it.
func ioredisDir() string {
	if d := os.Getenv("SHMGR_IOREDIS_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "shmgr-npm")
}

// TestRESPIoredis drives ioredis (npm) against the binary: its INFO
// ready check, RESP3 through HELLO 3, pipelining and keyspace messages.
func TestRESPIoredis(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (.ci/run installs nodejs and npm)")
	}
	dir := ioredisDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ioredis")); err != nil {
		t.Skipf("ioredis is not installed in %s (.ci/run runs npm install ioredis there)", dir)
	}
	_, addr := startRESPHost(t, "--token", respToken)
	host, port, _ := net.SplitHostPort(addr)
	script := `
const Redis = require("ioredis");
const [host, port, password] = process.argv.slice(1);
(async () => {
  const r = new Redis({ host, port: +port, password, enableReadyCheck: true, maxRetriesPerRequest: 1 });
  const sub = new Redis({ host, port: +port, password });
  const hello = await r.call("HELLO", "3");
  const proto = Array.isArray(hello) ? hello[hello.indexOf("proto") + 1] : hello.proto;
  if (proto !== 3) throw new Error("HELLO 3 replied " + JSON.stringify(hello));
  await r.set("greeting", "hello");
  const got = await r.get("greeting");
  if (got !== "hello") throw new Error("GET " + got);
  const res = await r.pipeline().set("a", "1").get("a").exec();
  if (res[1][1] !== "1") throw new Error("pipeline " + JSON.stringify(res));
  await sub.subscribe("__keyspace@0__:greeting");
  const msg = new Promise((ok) => sub.on("message", (ch, m) => ok(ch + " " + m)));
  await r.set("greeting", "again");
  console.log("ok " + (await msg));
  r.disconnect(); sub.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
`
	cmd := exec.Command(node, "-e", script, host, port, respToken)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	ctx := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer ctx.Stop()
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok __keyspace@0__:greeting set" {
		t.Fatalf("ioredis: %v\n%s", err, out)
	}
}
