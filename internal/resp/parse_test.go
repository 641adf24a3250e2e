package resp

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fmtCmd renders a command's arguments, quoted, for comparison.
func fmtCmd(c Command) string {
	parts := make([]string, len(c.Args))
	for i, a := range c.Args {
		parts[i] = strconv.Quote(string(a))
	}
	s := strings.Join(parts, " ")
	if c.Inline {
		s = "inline " + s
	}
	return s
}

// requestCases are whole commands and what they parse to.
var requestCases = []struct {
	name string
	in   string
	want string
}{
	{"get", "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", `"GET" "key"`},
	{"set-binary", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\n\x00b\n\r\n", `"SET" "k" "a\r\n\x00b\n"`},
	{"empty-arg", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", `"ECHO" ""`},
	{"zero-array", "*0\r\n", ``},
	{"null-array", "*-1\r\n", ``},
	{"inline-ping", "PING\r\n", `inline "PING"`},
	{"inline-lf", "PING\n", `inline "PING"`},
	{"inline-blank", "   \r\n", `inline `},
	{"inline-args", "SET  key\tvalue\r\n", `inline "SET" "key" "value"`},
	{"inline-dquote", "SET k \"a b\\n\\x41\\\"\"\r\n", `inline "SET" "k" "a b\nA\""`},
	{"inline-squote", "SET k 'it\\'s'\r\n", `inline "SET" "k" "it's"`},
	{"inline-midquote", "SET k a\"b c\"\r\n", `inline "SET" "k" "ab c"`},
	{"inline-empty-quotes", "ECHO \"\"\r\n", `inline "ECHO" ""`},
	{"inline-bad-hex", "ECHO \"\\xZZ\"\r\n", `inline "ECHO" "xZZ"`},
}

func parseAll(t *testing.T, p *Parser, in []byte) []string {
	t.Helper()
	var out []string
	var c Command
	for len(in) > 0 {
		n, err := p.Next(&c, in)
		if err != nil {
			t.Fatalf("Next(%q): %v", in, err)
		}
		if n == 0 {
			t.Fatalf("Next(%q): incomplete", in)
		}
		out = append(out, fmtCmd(c))
		in = in[n:]
	}
	return out
}

func TestParse(t *testing.T) {
	for _, tt := range requestCases {
		t.Run("case="+tt.name, func(t *testing.T) {
			got := parseAll(t, NewParser(Limits{}), []byte(tt.in))
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("Next(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestPipelined parses every case back to back in one buffer.
func TestPipelined(t *testing.T) {
	var in []byte
	var want []string
	for _, tt := range requestCases {
		in = append(in, tt.in...)
		want = append(want, tt.want)
	}
	got := parseAll(t, NewParser(Limits{}), in)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pipelined = %q, want %q", got, want)
	}
}

// TestSplit cuts each command at every offset: the first part must parse
// as incomplete (0, nil) and leave the buffer as it was, and the whole
// must then parse as before. Feeding one byte at a time is the same
// check, offset by offset.
func TestSplit(t *testing.T) {
	for _, tt := range requestCases {
		for cut := 0; cut < len(tt.in); cut++ {
			buf := []byte(tt.in)
			p := NewParser(Limits{})
			var c Command
			n, err := p.Next(&c, buf[:cut])
			if n != 0 || err != nil {
				t.Fatalf("%s: Next(first %d bytes of %q) = %d, %v; want 0, nil", tt.name, cut, tt.in, n, err)
			}
			if string(buf) != tt.in {
				t.Fatalf("%s: Next(first %d bytes) changed the buffer to %q", tt.name, cut, buf)
			}
			n, err = p.Next(&c, buf)
			if err != nil || n != len(tt.in) || fmtCmd(c) != tt.want {
				t.Fatalf("%s: after a cut at %d: Next = %d, %v, %s; want %d, nil, %s", tt.name, cut, n, err, fmtCmd(c), len(tt.in), tt.want)
			}
		}
	}
}

func TestByteAtATime(t *testing.T) {
	var stream []byte
	var want []string
	for _, tt := range requestCases {
		stream = append(stream, tt.in...)
		want = append(want, tt.want)
	}
	p := NewParser(Limits{})
	var c Command
	var got []string
	var buf []byte
	for _, b := range stream {
		buf = append(buf, b)
		n, err := p.Next(&c, buf)
		if err != nil {
			t.Fatalf("Next(%q): %v", buf, err)
		}
		if n > 0 {
			got = append(got, fmtCmd(c))
			buf = buf[n:]
		}
	}
	if len(buf) != 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("byte at a time = %q (left %q), want %q", got, buf, want)
	}
}

func TestNeed(t *testing.T) {
	p := NewParser(Limits{})
	var c Command
	in := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4096\r\nabc"
	n, err := p.Next(&c, []byte(in))
	if n != 0 || err != nil {
		t.Fatalf("Next = %d, %v; want incomplete", n, err)
	}
	want := int64(len("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4096\r\n") + 4096 + 2)
	if got := p.Need(); got != want {
		t.Errorf("Need() = %d, want %d", got, want)
	}
}

func TestMalformed(t *testing.T) {
	small := Limits{MaxArgs: 4, MaxBulk: 8, MaxInline: 16}
	cases := []struct {
		name, in, want string
	}{
		{"count-not-number", "*x\r\n", "invalid multibulk length"},
		{"count-too-big", "*5\r\n", "invalid multibulk length"},
		{"count-bare-lf", "*1\n", "invalid multibulk length"},
		{"not-dollar", "*1\r\n:1\r\n", "expected '$', got ':'"},
		{"bulk-negative", "*1\r\n$-1\r\n", "invalid bulk length"},
		{"bulk-too-big", "*1\r\n$9\r\n", "invalid bulk length"},
		{"bulk-not-number", "*1\r\n$1x\r\n", "invalid bulk length"},
		{"bulk-no-crlf", "*1\r\n$1\r\nab\r\n", "bulk argument not followed by CRLF"},
		{"count-line-too-long", "*11111111111111111", "too big mbulk count string"},
		{"bulk-line-too-long", "*1\r\n$11111111111111111", "too big bulk count string"},
		{"inline-too-long", strings.Repeat("a", 17), "too big inline request"},
		{"inline-line-too-long", strings.Repeat("a", 17) + "\n", "too big inline request"},
		{"inline-unbalanced", "ECHO \"abc\r\n", "unbalanced quotes in request"},
		{"inline-unbalanced-single", "ECHO 'abc\r\n", "unbalanced quotes in request"},
		{"inline-quote-then-text", "ECHO \"a\"b\r\n", "unbalanced quotes in request"},
		{"inline-too-many-args", "a b c d e\r\n", "invalid multibulk length"},
	}
	for _, tt := range cases {
		t.Run("case="+tt.name, func(t *testing.T) {
			var c Command
			n, err := NewParser(small).Next(&c, []byte(tt.in))
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) || n != 0 {
				t.Fatalf("Next(%q) = %d, %v; want a *Error wrapping ErrProtocol", tt.in, n, err)
			}
			if pe.Msg != tt.want {
				t.Errorf("Next(%q) error %q, want %q", tt.in, pe.Msg, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "Protocol error: "+tt.want) {
				t.Errorf("Error() = %q, want it to start with Redis's wording", err.Error())
			}
		})
	}
}

func TestParseAllocs(t *testing.T) {
	in := []byte("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$4\r\nxxxx\r\nPING\r\n")
	p := NewParser(Limits{})
	var c Command
	parse := func() {
		b := in
		for len(b) > 0 {
			n, err := p.Next(&c, b)
			if err != nil || n == 0 {
				t.Fatalf("Next: %d, %v", n, err)
			}
			b = b[n:]
		}
	}
	parse() // grows c.Args
	if n := testing.AllocsPerRun(100, parse); n != 0 {
		t.Errorf("parsing allocates %v times a run, want 0", n)
	}
}

// replyCases pin the encoders' bytes, RESP2 and RESP3.
func replyCases() []struct {
	name string
	enc  []byte
} {
	type c = struct {
		name string
		enc  []byte
	}
	var out []c
	for _, v := range []int{RESP2, RESP3} {
		p := "resp" + strconv.Itoa(v) + "/"
		out = append(out,
			c{p + "null", AppendNull(nil, v)},
			c{p + "null-array", AppendNullArray(nil, v)},
			c{p + "map", AppendBulkString(AppendBulkString(AppendMap(nil, v, 1), "proto"), "x")},
			c{p + "set", AppendBulkString(AppendSet(nil, v, 1), "a")},
			c{p + "push", AppendBulkString(AppendPush(nil, v, 1), "message")},
			c{p + "verbatim", AppendVerbatim(nil, v, "loading:0\r\n")},
		)
	}
	out = append(out,
		c{"ok", AppendOK(nil)},
		c{"simple", AppendSimple(nil, "PONG")},
		c{"error", AppendError(nil, "ERR bad\r\nthing")},
		c{"int", AppendInt(nil, -42)},
		c{"bulk", AppendBulk(nil, []byte("a\r\nb"))},
		c{"bulk-empty", AppendBulk(nil, nil)},
		c{"bulk-header", AppendCRLF(append(AppendBulkHeader(nil, 3), "abc"...))},
		c{"array", AppendInt(AppendArray(nil, 1), 1)},
		c{"command", AppendCommand(nil, []byte("GET"), []byte("k"))},
	)
	return out
}

// TestGolden pins the encoders' output in testdata/replies.golden and the
// parsed request cases in testdata/requests.golden, and re-parses each
// golden file (the replies as one stream). Run with -update to rewrite
// them after an intended change.
func TestGolden(t *testing.T) {
	var replies, replyText []byte
	for _, c := range replyCases() {
		replies = append(replies, c.enc...)
		r, n, err := ParseReply(c.enc)
		if err != nil || n != len(c.enc) {
			t.Fatalf("%s: ParseReply(%q) = %d, %v", c.name, c.enc, n, err)
		}
		replyText = append(replyText, c.name+" "+r.String()+"\n"...)
	}
	var reqs, reqText []byte
	for _, tt := range requestCases {
		reqs = append(reqs, tt.in...)
		reqText = append(reqText, tt.name+" "+tt.want+"\n"...)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"replies.golden", replies}, {"replies.txt.golden", replyText},
		{"requests.golden", reqs}, {"requests.txt.golden", reqText},
	}
	for _, f := range files {
		path := filepath.Join("testdata", f.name)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(golden, f.data) {
			t.Errorf("%s differs from the output (run go test -update after an intended change):\n%q\nwant\n%q", path, f.data, golden)
		}
	}
	// Idempotence: the golden streams parse back to what they pinned.
	golden, _ := os.ReadFile(filepath.Join("testdata", "requests.golden"))
	var want []string
	for _, tt := range requestCases {
		want = append(want, tt.want)
	}
	if got := parseAll(t, NewParser(Limits{}), golden); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests.golden parses to %q, want %q", got, want)
	}
	golden, _ = os.ReadFile(filepath.Join("testdata", "replies.golden"))
	for i, c := range replyCases() {
		r, n, err := ParseReply(golden)
		if err != nil || n != len(c.enc) {
			t.Fatalf("replies.golden reply %d (%s): %d, %v", i, c.name, n, err)
		}
		golden = golden[n:]
		_ = r
	}
	if len(golden) != 0 {
		t.Errorf("replies.golden has %d bytes left over", len(golden))
	}
}

func TestEncoderAllocs(t *testing.T) {
	dst := make([]byte, 0, 8192)
	v := bytes.Repeat([]byte("x"), 4096)
	n := testing.AllocsPerRun(100, func() {
		d := AppendBulk(dst[:0], v)
		d = AppendOK(d)
		d = AppendNull(d, RESP3)
		d = AppendInt(d, 1<<40)
		d = AppendError(d, "ERR x")
		_ = AppendPush(d, RESP3, 3)
	})
	if n != 0 {
		t.Errorf("encoders allocate %v times a run, want 0", n)
	}
}

func TestReplyMalformed(t *testing.T) {
	for _, in := range []string{"?x\r\n", ":x\r\n", "$-2\r\n", "$1\r\nab\r\n", "#x\r\n", "_x\r\n", "*-2\r\n", "+a\n", "%-1\r\n", strings.Repeat("*1\r\n", 70) + ":1\r\n"} {
		if _, _, err := ParseReply([]byte(in)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseReply(%q) = %v, want a protocol error", in, err)
		}
	}
}

func TestUnauthenticatedLimits(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"*11\r\n", "unauthenticated multibulk length"},
		{"*2\r\n$4\r\nAUTH\r\n$16385\r\n", "unauthenticated bulk length"},
	} {
		p := NewParser(Limits{})
		p.SetUnauthenticated(true)
		var c Command
		_, err := p.Next(&c, []byte(tt.in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Msg != tt.want {
			t.Errorf("unauthenticated Next(%q) = %v, want %q", tt.in, err, tt.want)
		}
		p.SetUnauthenticated(false)
		if n, err := p.Next(&c, []byte(tt.in)); n != 0 || err != nil {
			t.Errorf("authenticated Next(%q) = %d, %v; want incomplete", tt.in, n, err)
		}
	}
	p := NewParser(Limits{})
	p.SetUnauthenticated(true)
	var c Command
	in := cmdBytes("AUTH", "default", strings.Repeat("t", 64))
	if n, err := p.Next(&c, in); err != nil || n != len(in) {
		t.Errorf("an AUTH within the limits: %d, %v", n, err)
	}
}

func cmdBytes(args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return AppendCommand(nil, bs...)
}

// TestResume feeds a command of many arguments in chunks of every size
// from 1 to 97 bytes: the parser resumes where it stopped and the
// arguments come out whole, whatever the chunking.
func TestResume(t *testing.T) {
	args := []string{"DEL"}
	for i := range 300 {
		args = append(args, fmt.Sprintf("key:%d", i*i))
	}
	in := append(cmdBytes(args...), "PING\r\n"...)
	for chunk := 1; chunk <= 97; chunk += 8 {
		p := NewParser(Limits{})
		var c Command
		var got []string
		for have := 0; have < len(in); {
			have = min(have+chunk, len(in))
			buf := in[:have]
			for len(buf) > 0 {
				n, err := p.Next(&c, buf)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if n == 0 {
					break
				}
				got = append(got, fmtCmd(c))
				in, buf, have = in[n:], buf[n:], have-n
			}
		}
		in = append(cmdBytes(args...), "PING\r\n"...)
		want := []string{fmtCmd(Command{Args: toBytes(args)}), `inline "PING"`}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("chunk %d: got %d commands, want %q", chunk, len(got), want)
		}
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// BenchmarkParseChunked parses one command of 10,000 arguments arriving
// 4 KiB at a time: with resumption the work is linear in its size.
func BenchmarkParseChunked(b *testing.B) {
	args := []string{"DEL"}
	for i := range 10000 {
		args = append(args, fmt.Sprintf("key:%012d", i))
	}
	in := cmdBytes(args...)
	p := NewParser(Limits{})
	var c Command
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for have := 4096; ; have += 4096 {
			n, err := p.Next(&c, in[:min(have, len(in))])
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				break
			}
		}
	}
}
