// End-to-end tests of the shmgr binary: every test starts real host
// processes (internal/shmtest) on 127.0.0.1, talks to them over real TCP
// and real shared memory, and leaves nothing behind.
package main_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// update rewrites the golden files in testdata instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) { os.Exit(shmtest.Main(m)) }

// shmDir is where Linux keeps POSIX shared-memory objects.
const shmDir = "/dev/shm"

// ioTimeout bounds every raw-connection read and write, so a host that
// stops answering fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// info is a region's description as the host documents it (metadata line,
// INFO <id>, LIST, CREATE and the CLI's --json output). It is declared here,
// not borrowed from the client package, so the field names are checked.
type info struct {
	Proto       string `json:"proto"`
	Server      string `json:"server"`
	HostID      string `json:"host_id"`
	ShmID       string `json:"shm_id"`
	Size        int64  `json:"size"`
	Layout      string `json:"layout"`
	LockOffset  int64  `json:"lock_offset"`
	LenOffset   int64  `json:"len_offset"`
	DataOffset  int64  `json:"data_offset"`
	MaxDataSize int64  `json:"max_data_size"`
	Version     uint64 `json:"version"`
	OSName      string `json:"os_name"`
	CtlName     string `json:"ctl_name"`
	OSKind      string `json:"os_kind"`
	Nonce       string `json:"nonce"`
	Durable     bool   `json:"durable"`
}

// rawConn is a bare TCP connection to a host that speaks the protocol by
// hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	// Meta is the metadata line, as received (with its '\n').
	Meta string
}

// dialRaw connects to addr and reads the metadata line. The connection is
// closed when the test ends.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c := &rawConn{t: t}
	c.nc, c.br, c.Meta = shmtest.Dial(t, addr, ioTimeout)
	return c
}

// deadline arms the connection's deadline for the next exchange.
func (c *rawConn) deadline() {
	if err := c.nc.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.t.Fatalf("set deadline: %v", err)
	}
}

// send writes s in one Write call.
func (c *rawConn) send(s string) {
	c.t.Helper()
	c.deadline()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send %q: %v", trim(s), err)
	}
}

// line reads one line, '\n' included.
func (c *rawConn) line() string {
	c.t.Helper()
	c.deadline()
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a line: %v (got %q so far)", err, trim(s))
	}
	return s
}

// reply reads one whole reply frame: a line, plus the payload and its
// '\n' for VALUE and JSON.
func (c *rawConn) reply() string {
	c.t.Helper()
	l := c.line()
	var n int
	switch f := strings.Fields(l); {
	case len(f) == 3 && f[0] == "VALUE":
		n = atoi(c.t, f[2])
	case len(f) == 2 && f[0] == "JSON":
		n = atoi(c.t, f[1])
	default:
		return l
	}
	p := make([]byte, n+1)
	c.deadline()
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("reading the %d-byte payload of %q: %v", n, l, err)
	}
	return l + string(p)
}

// do sends req and returns its reply.
func (c *rawConn) do(req string) string {
	c.t.Helper()
	c.send(req)
	return c.reply()
}

// jsonReply sends req, expects "JSON <len>\n<json>\n" and decodes it into v.
func (c *rawConn) jsonReply(req string, v any) {
	c.t.Helper()
	rep := c.do(req)
	head, body, ok := strings.Cut(rep, "\n")
	if !ok || !strings.HasPrefix(head, "JSON ") {
		c.t.Fatalf("%q: got reply %q, want JSON <len>", trim(req), trim(rep))
	}
	body = strings.TrimSuffix(body, "\n")
	if got, want := len(body), atoi(c.t, strings.TrimPrefix(head, "JSON ")); got != want {
		c.t.Errorf("%q: JSON payload is %d bytes, header says %d", trim(req), got, want)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		c.t.Fatalf("%q: JSON reply does not parse: %v\n%s", trim(req), err, body)
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// trim shortens s for failure messages.
func trim(s string) string {
	if len(s) > 120 {
		return s[:100] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// startHost starts a host in a fresh data directory (startHostAt) and,
// once shmtest has stopped it and removed its objects, checks that no
// shared-memory object with the host's prefix is left. Other programs'
// objects there are none of its business.
func startHost(t *testing.T, args ...string) *shmtest.Host {
	t.Helper()
	return startHostAt(t, t.TempDir(), args...)
}

// cliJSON runs a client command against h and decodes its JSON output.
func cliJSON(t testing.TB, h *shmtest.Host, v any, args ...string) {
	t.Helper()
	out := h.MustCLI(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("shmgr %v: output is not JSON: %v\n%s", args, err, out)
	}
}

// regionInfo returns the host's description of region id (info --json).
func regionInfo(t testing.TB, h *shmtest.Host, id string) info {
	t.Helper()
	var in info
	cliJSON(t, h, &in, "info", "--id", id, "--json")
	if in.ShmID != id {
		t.Fatalf("info --id %s: shm_id = %q", id, in.ShmID)
	}
	return in
}

// listRegions returns the host's regions by shm_id (ls --json).
func listRegions(t testing.TB, h *shmtest.Host) map[string]info {
	t.Helper()
	var list []info
	cliJSON(t, h, &list, "ls", "--json")
	m := map[string]info{}
	for _, in := range list {
		m[in.ShmID] = in
	}
	return m
}

// readContent reads region id (empty: default) with the CLI, exactly.
func readContent(t testing.TB, h *shmtest.Host, id string, extra ...string) string {
	t.Helper()
	args := append([]string{"read"}, extra...)
	if id != "" {
		args = append(args, "--id", id)
	}
	return h.MustCLI(t, args...)
}

// exists reports whether path exists.
func exists(t testing.TB, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// utf8Object decodes the documented layout of a utf8 data object: the
// lock flag at 0, the little-endian uint32 length at 1-4, the data at 5.
func utf8Object(t testing.TB, b []byte) (lock byte, data []byte) {
	t.Helper()
	if len(b) < 5 {
		t.Fatalf("object is %d bytes, too small for the utf8 layout", len(b))
	}
	n := binary.LittleEndian.Uint32(b[1:5])
	if int64(n) > int64(len(b)-5) {
		t.Fatalf("length field %d exceeds the object (%d bytes)", n, len(b))
	}
	return b[0], b[5 : 5+n]
}

// chinese is UTF-8 text whose byte length (21) differs from its rune
// count (7).
const chinese = "你好，世界！✓"
