package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestProtocolMetadataLine checks the first line a host sends: one JSON
// object describing the default region with the documented fields.
func TestProtocolMetadataLine(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	c := dialRaw(t, h.Addr)

	if !strings.HasPrefix(c.Meta, "{") || !strings.HasSuffix(c.Meta, "}\n") {
		t.Fatalf("metadata line = %q, want one JSON object and '\\n'", trim(c.Meta))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(c.Meta), &fields); err != nil {
		t.Fatalf("metadata line is not a JSON object: %v\n%s", err, c.Meta)
	}
	for _, k := range []string{"shm_id", "size", "layout", "lock_offset", "len_offset", "data_offset", "max_data_size", "version", "os_name", "host_id", "proto"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("metadata line has no %q field:\n%s", k, c.Meta)
		}
	}
	var m info
	if err := json.Unmarshal([]byte(c.Meta), &m); err != nil {
		t.Fatalf("metadata line: %v\n%s", err, c.Meta)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"shm_id", m.ShmID, "default"},
		{"size", m.Size, int64(4096)},
		{"layout", m.Layout, "utf8"},
		{"lock_offset", m.LockOffset, int64(0)},
		{"len_offset", m.LenOffset, int64(1)},
		{"data_offset", m.DataOffset, int64(5)},
		{"max_data_size", m.MaxDataSize, int64(4091)},
		{"version", m.Version, uint64(0)},
		{"proto", m.Proto, "shmgr/1"},
		{"os_kind", m.OSKind, "posix_shm"},
		{"durable", m.Durable, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("metadata %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if m.HostID == "" {
		t.Errorf("metadata host_id is empty")
	}
	if !strings.HasPrefix(m.OSName, "shmgr-") {
		t.Errorf("metadata os_name = %q, want shmgr-<instance>-<hash>", m.OSName)
	}
	st, err := os.Stat(filepath.Join(shmDir, m.OSName))
	if err != nil {
		t.Errorf("os_name %q does not name an object in %s: %v", m.OSName, shmDir, err)
	} else if st.Size() != 4096 {
		t.Errorf("object %s is %d bytes, want 4096", m.OSName, st.Size())
	}
	if !strings.Contains(h.Banner, m.OSName) {
		t.Errorf("the host's banner does not show os_name %q:\n%s", m.OSName, h.Banner)
	}
	// Nothing else follows the metadata line: the next bytes are the reply
	// to the first request.
	if got, want := c.do("PING\n"), "PONG\n"; got != want {
		t.Errorf("first reply after the metadata line = %q, want %q", got, want)
	}
}

var (
	max4091  = strings.Repeat("a", 4091)
	over4092 = strings.Repeat("b", 4092)
)

// protoStep is one request on a connection and the reply it must get:
// exactly want, or, when code is set, one "ERROR <code> ..." line.
type protoStep struct {
	name string
	req  string
	want string
	code string
}

// documentedSteps walks the documented protocol (READ and WRITE) on a fresh
// host's default region, including every way a request can be refused;
// after each refusal a READ shows the content unchanged and the connection
// still serving.
var documentedSteps = []protoStep{
	{name: "read/fresh", req: "READ\n", want: "OK \n"},
	{name: "write/hello", req: "WRITE 5\nhello\n", want: "OK\n"},
	{name: "read/hello", req: "READ\n", want: "OK hello\n"},
	{name: "read/crlf", req: "READ\r\n", want: "OK hello\n"},
	{name: "read/lowercase", req: "read\n", want: "OK hello\n"},
	{name: "read/after-empty-line", req: "\n  \nREAD\n", want: "OK hello\n"},
	{name: "write/utf8", req: "WRITE 21\n" + chinese + "\n", want: "OK\n"},
	{name: "read/utf8", req: "READ\n", want: "OK " + chinese + "\n"},
	{name: "write/max-4091", req: "WRITE 4091\n" + max4091 + "\n", want: "OK\n"},
	{name: "read/max-4091", req: "READ\n", want: "OK " + max4091 + "\n"},
	{name: "write/empty", req: "WRITE 0\n\n", want: "OK\n"},
	{name: "read/empty", req: "READ\n", want: "OK \n"},
	{name: "write/crlf-after-payload", req: "WRITE 5\r\nhello\r\n", want: "OK\n"},
	{name: "read/hello-again", req: "READ\n", want: "OK hello\n"},

	{name: "write/4092-refused", req: "WRITE 4092\n" + over4092 + "\n", code: "too_large"},
	{name: "read/after-4092", req: "READ\n", want: "OK hello\n"},
	{name: "write/invalid-utf8", req: "WRITE 4\nab\xff\xfe\n", code: "invalid_utf8"},
	{name: "read/after-invalid-utf8", req: "READ\n", want: "OK hello\n"},
	{name: "write/cut-character", req: "WRITE 2\n\xe4\xbd\n", code: "invalid_utf8"},
	{name: "read/after-cut-character", req: "READ\n", want: "OK hello\n"},
	{name: "unknown-command", req: "FOO\n", code: "unknown_command"},
	{name: "read/after-unknown-command", req: "READ\n", want: "OK hello\n"},
	{name: "write/length-abc", req: "WRITE abc\n", code: "bad_request"},
	{name: "read/after-length-abc", req: "READ\n", want: "OK hello\n"},
	{name: "write/length-negative", req: "WRITE -1\n", code: "bad_request"},
	{name: "read/after-length-negative", req: "READ\n", want: "OK hello\n"},
	{name: "write/no-length", req: "WRITE\n", code: "bad_request"},
	{name: "read/after-no-length", req: "READ\n", want: "OK hello\n"},
	{name: "write/extra-argument", req: "WRITE 5 6\nworld\n", code: "bad_request"},
	{name: "read/after-extra-argument", req: "READ\n", want: "OK hello\n"},
	{name: "write/payload-overruns-length", req: "WRITE 3\nworld\n", code: "bad_request"},
	{name: "read/after-overrun", req: "READ\n", want: "OK hello\n"},
	{name: "read/extra-argument", req: "READ x\n", code: "bad_request"},
	{name: "control-byte", req: "RE\x01AD\n", code: "bad_request"},
	{name: "read/after-control-byte", req: "READ\n", want: "OK hello\n"},
}

// TestProtocolDocumented drives the documented protocol byte for byte over
// one raw TCP connection.
func TestProtocolDocumented(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	c := dialRaw(t, h.Addr)
	for _, s := range documentedSteps {
		t.Run(s.name, func(t *testing.T) {
			c.t = t
			got := c.do(s.req)
			checkStep(t, s, got)
		})
	}
	// The content the connection left is what the CLI sees.
	if got, want := readContent(t, h, ""), "hello"; got != want {
		t.Errorf("shmgr read after the session = %q, want %q", got, want)
	}
}

// checkStep compares a reply with a step's expectation.
func checkStep(t *testing.T, s protoStep, got string) {
	t.Helper()
	if s.code == "" {
		if got != s.want {
			t.Errorf("%q: reply = %q, want %q", trim(s.req), trim(got), trim(s.want))
		}
		return
	}
	if !strings.HasPrefix(got, "ERROR "+s.code+" ") || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("%q: reply = %q, want one line \"ERROR %s <message>\"", trim(s.req), trim(got), s.code)
	}
}

// TestProtocolTwoConnections: a write on one connection is seen by a READ
// on another, both ways.
func TestProtocolTwoConnections(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	a, b := dialRaw(t, h.Addr), dialRaw(t, h.Addr)
	steps := []struct {
		name       string
		writer     *rawConn
		reader     *rawConn
		content    string
		wantWrite  string
		wantReadOn string
	}{
		{"a-to-b", a, b, "from a", "OK\n", "OK from a\n"},
		{"b-to-a", b, a, "from b " + chinese, "OK\n", "OK from b " + chinese + "\n"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.writer.t, s.reader.t = t, t
			if got := s.writer.do(fmt.Sprintf("WRITE %d\n%s\n", len(s.content), s.content)); got != s.wantWrite {
				t.Fatalf("WRITE = %q, want %q", got, s.wantWrite)
			}
			if got := s.reader.do("READ\n"); got != s.wantReadOn {
				t.Errorf("READ on the other connection = %q, want %q", got, s.wantReadOn)
			}
		})
	}
}

// pipelineScript is many requests back to back and the replies they must
// get, in order.
func pipelineScript(n int) (req, want string) {
	var r, w strings.Builder
	for i := range n {
		msg := fmt.Sprintf("msg-%d-%s", i, strings.Repeat("é", i%7))
		fmt.Fprintf(&r, "WRITE %d\n%s\nREAD\nPING\n", len(msg), msg)
		fmt.Fprintf(&w, "OK\nOK %s\nPONG\n", msg)
		if i%10 == 5 {
			// An error in the middle of the stream answers in its place.
			r.WriteString("FOO\nGET nope\n")
			w.WriteString("ERROR unknown_command unknown command at offset 0: \"FOO\"\nERROR not_found region not found: \"nope\"\n")
		}
	}
	return r.String(), w.String()
}

// TestProtocolPipelined sends many requests in one TCP write, or split in
// small writes at every kind of offset, and checks that every reply comes
// back, in order.
func TestProtocolPipelined(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	req, want := pipelineScript(60)
	for _, chunk := range []int{len(req), 1, 2, 3, 7, 100} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			c := dialRaw(t, h.Addr)
			for i := 0; i < len(req); i += chunk {
				c.send(req[i:min(i+chunk, len(req))])
			}
			got := make([]byte, len(want))
			c.deadline()
			if n, err := io.ReadFull(c.br, got); err != nil {
				t.Fatalf("read %d of %d reply bytes: %v\ngot so far: %q", n, len(want), err, trim(string(got[:n])))
			}
			if string(got) != want {
				t.Errorf("pipelined replies differ from the expected ones at byte %d:\ngot  %q\nwant %q", firstDiff(string(got), want), trim(string(got[firstDiff(string(got), want):])), trim(want[firstDiff(string(got), want):]))
			}
			// And nothing more.
			if got := c.do("PING\n"); got != "PONG\n" {
				t.Errorf("after the pipeline: PING = %q, want PONG", got)
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// documentedClient is a client written from the documentation alone: it
// reads the metadata line, checks the shm_id, writes content and reads it
// back with READ.
func documentedClient(addr, wantID, content string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("metadata line: %w", err)
	}
	var meta struct {
		ShmID string `json:"shm_id"`
	}
	if err := json.Unmarshal([]byte(line), &meta); err != nil {
		return "", fmt.Errorf("metadata line: %w", err)
	}
	if meta.ShmID != wantID {
		return "", fmt.Errorf("shm_id %q, want %q", meta.ShmID, wantID)
	}
	if _, err := fmt.Fprintf(nc, "WRITE %d\n%s\n", len(content), content); err != nil {
		return "", err
	}
	if l, err := br.ReadString('\n'); err != nil || l != "OK\n" {
		return "", fmt.Errorf("WRITE reply %q, %v", l, err)
	}
	if _, err := io.WriteString(nc, "READ\n"); err != nil {
		return "", err
	}
	l, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "OK ") {
		return "", fmt.Errorf("READ reply %q, %v", l, err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(l, "OK "), "\n"), nil
}

// TestProtocolDocumentedClient runs the documentation-only client, alone
// and then from several goroutines at once, and checks its writes are
// whole: every READ returns one writer's content, never a mix.
func TestProtocolDocumentedClient(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	got, err := documentedClient(h.Addr, "default", "hello from the docs")
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello from the docs"; got != want {
		t.Errorf("documented client read back %q, want %q", got, want)
	}
	if got, want := readContent(t, h, ""), "hello from the docs"; got != want {
		t.Errorf("shmgr read = %q, want %q", got, want)
	}

	const writers, rounds = 6, 15
	valid := map[string]bool{}
	for w := range writers {
		valid[strings.Repeat(string(rune('A'+w)), 3000+w)] = true
	}
	var wg sync.WaitGroup
	errc := make(chan error, writers*rounds)
	for content := range valid {
		wg.Go(func() {
			for range rounds {
				got, err := documentedClient(h.Addr, "default", content)
				if err != nil {
					errc <- err
					return
				}
				if !valid[got] {
					errc <- fmt.Errorf("READ returned a torn or foreign content: %q", trim(got))
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if final := readContent(t, h, ""); !valid[final] {
		t.Errorf("final content is not one writer's content: %q", trim(final))
	}
}

// TestProtocolExtended checks the commands beyond READ and WRITE: PING,
// CREATE, binary-safe SET/GET, conditional SET, INFO, LIST, USE, DELETE and
// QUIT.
func TestProtocolExtended(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	c := dialRaw(t, h.Addr)
	var meta info
	if err := json.Unmarshal([]byte(c.Meta), &meta); err != nil {
		t.Fatal(err)
	}
	// 16 bytes with newlines, NULs, a CR and bytes that are not UTF-8.
	payload := "a\nb\x00c\r\n\x00\xff\xfeEND!!!"
	if len(payload) != 16 {
		t.Fatalf("payload is %d bytes, want 16", len(payload))
	}
	var bin info

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ping", func(t *testing.T) {
			if got := c.do("PING\n"); got != "PONG\n" {
				t.Errorf("PING = %q, want PONG", got)
			}
		}},
		{"create-raw", func(t *testing.T) {
			c.jsonReply("CREATE bin size=16 layout=raw\n", &bin)
			want := info{ShmID: "bin", Size: 16, Layout: "raw", LockOffset: -1, LenOffset: -1, DataOffset: 0, MaxDataSize: 16, Version: 0, OSKind: "posix_shm"}
			got := bin
			got.OSName, got.CtlName, got.Nonce, got.HostID = "", "", "", ""
			if got != want {
				t.Errorf("CREATE bin = %+v, want %+v", got, want)
			}
			if st, err := os.Stat(filepath.Join(shmDir, bin.OSName)); err != nil || st.Size() != 16 {
				t.Errorf("object of bin: %v, %v; want a 16-byte object", st, err)
			}
		}},
		{"set-binary", func(t *testing.T) {
			if got, want := c.do("SET bin 16\n"+payload+"\n"), "OK 1\n"; got != want {
				t.Errorf("SET = %q, want %q", got, want)
			}
		}},
		{"get-binary", func(t *testing.T) {
			if got, want := c.do("GET bin\n"), "VALUE 1 16\n"+payload+"\n"; got != want {
				t.Errorf("GET = %q, want %q", got, want)
			}
		}},
		{"get-range", func(t *testing.T) {
			if got, want := c.do("GET bin 1 6\n"), "VALUE 1 6\n"+payload[1:7]+"\n"; got != want {
				t.Errorf("GET range = %q, want %q", got, want)
			}
		}},
		{"get-range-out-of-bounds", func(t *testing.T) {
			checkStep(t, protoStep{req: "GET bin 10 7", code: "out_of_range"}, c.do("GET bin 10 7\n"))
		}},
		{"set-ifver-current", func(t *testing.T) {
			if got, want := c.do("SET bin 3 ifver=1\nxyz\n"), "OK 2\n"; got != want {
				t.Errorf("SET ifver=1 = %q, want %q", got, want)
			}
		}},
		{"set-ifver-stale", func(t *testing.T) {
			got := c.do("SET bin 3 ifver=1\nXYZ\n")
			f := strings.Fields(got)
			if len(f) < 4 || f[0] != "ERROR" || f[1] != "conflict" || f[2] != "2" {
				t.Errorf("stale SET = %q, want \"ERROR conflict 2 <message>\"", got)
			}
			if got, want := c.do("GET bin 0 4\n"), "VALUE 2 4\nxyz\x00\n"; got != want {
				t.Errorf("GET after the refused SET = %q, want %q", got, want)
			}
		}},
		{"info-host", func(t *testing.T) {
			var hi struct {
				Proto   string `json:"proto"`
				HostID  string `json:"host_id"`
				PID     int    `json:"pid"`
				Default string `json:"default"`
				Regions int    `json:"regions"`
			}
			c.jsonReply("INFO\n", &hi)
			if hi.Proto != "shmgr/1" || hi.HostID != meta.HostID || hi.PID <= 0 || hi.Default != "default" || hi.Regions != 2 {
				t.Errorf("INFO = %+v, want proto shmgr/1, host_id %s, a pid, default \"default\", 2 regions", hi, meta.HostID)
			}
		}},
		{"info-region", func(t *testing.T) {
			var in info
			c.jsonReply("INFO bin\n", &in)
			if in.ShmID != "bin" || in.Version != 2 || in.Layout != "raw" || in.OSName != bin.OSName || in.Nonce != bin.Nonce {
				t.Errorf("INFO bin = %+v, want bin at version 2, raw, os_name %s", in, bin.OSName)
			}
		}},
		{"list", func(t *testing.T) {
			var list []info
			c.jsonReply("LIST\n", &list)
			var ids []string
			for _, in := range list {
				ids = append(ids, in.ShmID)
			}
			if got, want := strings.Join(ids, ","), "bin,default"; got != want {
				t.Errorf("LIST ids = %s, want %s", got, want)
			}
		}},
		{"use", func(t *testing.T) {
			var notes, used info
			c.jsonReply("CREATE notes\n", &notes)
			c.jsonReply("USE notes\n", &used)
			if used.ShmID != "notes" || used.Layout != "utf8" || used.DataOffset != 5 || used.OSName != notes.OSName {
				t.Errorf("USE notes = %+v, want the notes region's metadata", used)
			}
			if got := c.do("WRITE 5\nnotes\n"); got != "OK\n" {
				t.Errorf("WRITE after USE = %q, want OK", got)
			}
			if got, want := c.do("READ\n"), "OK notes\n"; got != want {
				t.Errorf("READ after USE = %q, want %q", got, want)
			}
			if got, want := c.do("GET default\n"), "VALUE 0 0\n\n"; got != want {
				t.Errorf("GET default after writing notes = %q, want %q (untouched)", got, want)
			}
			checkStep(t, protoStep{req: "USE nope", code: "not_found"}, c.do("USE nope\n"))
			if got, want := c.do("READ\n"), "OK notes\n"; got != want {
				t.Errorf("READ after a failed USE = %q, want %q (still on notes)", got, want)
			}
			c.jsonReply("USE default\n", &used)
			if got, want := c.do("READ\n"), "OK \n"; got != want {
				t.Errorf("READ after USE default = %q, want %q", got, want)
			}
		}},
		{"delete-default-refused", func(t *testing.T) {
			checkStep(t, protoStep{req: "DELETE default", code: "forbidden"}, c.do("DELETE default\n"))
			if got, want := c.do("READ\n"), "OK \n"; got != want {
				t.Errorf("READ after DELETE default = %q, want %q", got, want)
			}
		}},
		{"delete", func(t *testing.T) {
			if got := c.do("DELETE bin\n"); got != "OK\n" {
				t.Errorf("DELETE bin = %q, want OK", got)
			}
			for _, n := range []string{bin.OSName, bin.CtlName} {
				if exists(t, filepath.Join(shmDir, n)) {
					t.Errorf("object %s still exists after DELETE", n)
				}
			}
			checkStep(t, protoStep{req: "GET bin", code: "not_found"}, c.do("GET bin\n"))
		}},
		{"create-refused", func(t *testing.T) {
			checkStep(t, protoStep{req: "CREATE notes", code: "exists"}, c.do("CREATE notes\n"))
			checkStep(t, protoStep{req: "CREATE -x", code: "bad_id"}, c.do("CREATE -x\n"))
			checkStep(t, protoStep{req: "CREATE big size=3", code: "bad_request"}, c.do("CREATE big size=3\n"))
		}},
		{"quit", func(t *testing.T) {
			if got := c.do("QUIT\n"); got != "OK\n" {
				t.Errorf("QUIT = %q, want OK", got)
			}
			c.deadline()
			if b, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("after QUIT: read %q, %v; want EOF", b, err)
			}
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c.t = t
			s.run(t)
		})
	}
}

// transcriptScript is the session recorded in testdata/protocol.golden:
// documented and extended requests whose replies hold no per-host values.
var transcriptScript = []string{
	"READ\n",
	"WRITE 5\nhello\n",
	"READ\n",
	"WRITE 21\n" + chinese + "\n",
	"READ\n",
	"WRITE 4\nab\xff\xfe\n",
	"FOO\n",
	"WRITE abc\n",
	"WRITE -1\n",
	"WRITE\n",
	"WRITE 3\nworld\n",
	"READ 1\n",
	"READ\n",
	"PING\n",
	"SET default 2\nhi\n",
	"GET default\n",
	"SET default 2 ifver=1\nho\n",
	"GET nope\n",
	"GET default 5 1\n",
	"USE nope\n",
	"DELETE default\n",
	"DELETE nope\n",
	"CREATE bad!id\n",
	"CREATE x layout=zip\n",
	"SET default 1 at=9\nx\n",
	"QUIT\n",
}

// TestProtocolTranscript replays transcriptScript on a fresh host and
// compares every reply, byte for byte, with testdata/protocol.golden
// (-update rewrites it).
func TestProtocolTranscript(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	c := dialRaw(t, h.Addr)
	var got []exchange
	for _, req := range transcriptScript {
		got = append(got, exchange{req, c.do(req)})
	}
	const golden = "testdata/protocol.golden"
	out := formatTranscript(got)
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	want, err := parseTranscript(b)
	if err != nil {
		t.Fatalf("%s: %v", golden, err)
	}
	// The golden file re-formats to itself.
	if again := formatTranscript(want); !bytes.Equal(again, b) {
		t.Errorf("%s does not re-format to itself; run with -update", golden)
	}
	if len(want) != len(got) {
		t.Fatalf("%s has %d exchanges, the script %d; run with -update", golden, len(want), len(got))
	}
	for i := range got {
		if got[i].req != want[i].req {
			t.Errorf("exchange %d: %s has request %q, the script %q; run with -update", i, golden, want[i].req, got[i].req)
			continue
		}
		if got[i].reply != want[i].reply {
			t.Errorf("%q: reply = %q, want %q (from %s)", got[i].req, got[i].reply, want[i].reply, golden)
		}
	}
}

// exchange is one request and its reply.
type exchange struct{ req, reply string }

const transcriptHeader = `# shmgr protocol transcript: a fresh host's default region, one connection.
# The metadata line is left out (it holds per-host values). Each exchange is
# a "C" line (what the client sends) and an "S" line (the host's reply),
# quoted as Go strings. Regenerate with:
#   go test ./cmd/shmgr -run TestProtocolTranscript -update
`

func formatTranscript(xs []exchange) []byte {
	var b bytes.Buffer
	b.WriteString(transcriptHeader)
	for _, x := range xs {
		fmt.Fprintf(&b, "\nC %s\nS %s\n", strconv.Quote(x.req), strconv.Quote(x.reply))
	}
	return b.Bytes()
}

func parseTranscript(b []byte) ([]exchange, error) {
	var xs []exchange
	var pending *string
	for i, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		kind, q, ok := strings.Cut(l, " ")
		s, err := strconv.Unquote(q)
		if !ok || err != nil {
			return nil, fmt.Errorf("line %d: want C or S and a quoted string: %q", i+1, l)
		}
		switch {
		case kind == "C" && pending == nil:
			pending = &s
		case kind == "S" && pending != nil:
			xs = append(xs, exchange{*pending, s})
			pending = nil
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", i+1, kind)
		}
	}
	if pending != nil {
		return nil, errors.New("last request has no reply")
	}
	return xs, nil
}

// TestProtocolReadFraming checks that a READ reply is always one line, so
// a client that knows only the documented protocol stays in step with the
// host. Content holding '\n' is common: "echo hello | shmgr write" stores
// "hello\n".
// TestProtocolReadVerbatim checks what READ does with content that holds
// newlines: like the original host, it sends "OK " + the content exactly
// + "\n" (a client that reads the whole reply keeps working), and GET
// frames the same bytes by length.
func TestProtocolReadVerbatim(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.MustCLI(t, "create", "bin", "--layout", "raw", "--size", "8")
	tests := []struct {
		name    string
		id      string
		content string
		setup   func(t *testing.T, c *rawConn)
	}{
		{"utf8/echo-piped-into-write", "default", "hello\n", func(t *testing.T, c *rawConn) {
			if _, errOut, code := h.CLI(t, []byte("hello\n"), "write"); code != 0 {
				t.Fatalf("echo hello | shmgr write: exit %d: %s", code, errOut)
			}
		}},
		{"utf8/two-lines", "default", "line1\nline2", func(t *testing.T, c *rawConn) {
			if got := c.do("WRITE 11\nline1\nline2\n"); got != "OK\n" {
				t.Fatalf("WRITE = %q, want OK", got)
			}
		}},
		{"raw/USE", "bin", "ab\ncd\x00\n\n", func(t *testing.T, c *rawConn) {
			if got := c.do("SET bin 8\nab\ncd\x00\n\n\n"); got != "OK 1\n" {
				t.Fatalf("SET = %q, want OK 1", got)
			}
			var m info
			c.jsonReply("USE bin\n", &m)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, h.Addr)
			tt.setup(t, c)
			c.send("READ\nPING\n")
			want := "OK " + tt.content + "\n"
			got := make([]byte, len(want))
			c.deadline()
			if _, err := io.ReadFull(c.br, got); err != nil || string(got) != want {
				t.Fatalf("READ reply = %q, %v; want %q (the content verbatim)", got, err, want)
			}
			if next := c.line(); next != "PONG\n" {
				t.Errorf("reply after READ = %q, want PONG", next)
			}
			rep := c.do("GET " + tt.id + "\n")
			head, body, _ := strings.Cut(rep, "\n")
			if !strings.HasPrefix(head, "VALUE ") || !strings.HasSuffix(head, fmt.Sprintf(" %d", len(tt.content))) || body != tt.content+"\n" {
				t.Errorf("GET = %q, want a VALUE frame of the %d content bytes", rep, len(tt.content))
			}
		})
	}
}
