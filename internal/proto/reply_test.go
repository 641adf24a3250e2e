package proto

import (
	"errors"
	"strings"
	"testing"
)

var replyTests = []struct {
	name string
	in   string
	want Reply
}{
	{"ok", "OK\n", Reply{Kind: ReplyOK}},
	{"ok/text", "OK hello world\n", Reply{Kind: ReplyOK, Text: b("hello world")}},
	{"ok/empty-text", "OK \n", Reply{Kind: ReplyOK, Text: b("")}},
	{"ok/text-spaces", "OK  a \r\n", Reply{Kind: ReplyOK, Text: b(" a \r")}},
	{"ok/utf8", "OK 你好\n", Reply{Kind: ReplyOK, Text: b("你好")}},
	{"ok/version", "OK 42\n", Reply{Kind: ReplyOK, Text: b("42")}},
	{"ok/token", "OK 18446744073709551615\n", Reply{Kind: ReplyOK, Text: b("18446744073709551615")}},
	{"value", "VALUE 7 5\nhello\n", Reply{Kind: ReplyValue, Version: 7, Payload: b("hello")}},
	{"value/empty", "VALUE 0 0\n\n", Reply{Kind: ReplyValue, Payload: b("")}},
	{"value/binary", "VALUE 18446744073709551615 3\n\n\r\x00\n", Reply{Kind: ReplyValue, Version: 1<<64 - 1, Payload: b("\n\r\x00")}},
	{"json", "JSON 2\n{}\n", Reply{Kind: ReplyJSON, Payload: b("{}")}},
	{"event", "EVENT r1 9 3\nabc\n", Reply{Kind: ReplyEvent, ID: b("r1"), Version: 9, Payload: b("abc")}},
	{"delta", "DELTA r1 10 4096 100 3\nabc\n", Reply{Kind: ReplyDelta, ID: b("r1"), Version: 10, Size: 4096, Offset: 100, Payload: b("abc")}},
	{"delta/empty", "DELTA r1 11 5 5 0\n\n", Reply{Kind: ReplyDelta, ID: b("r1"), Version: 11, Size: 5, Offset: 5, Payload: b("")}},
	{"pong", "PONG\n", Reply{Kind: ReplyPong}},
	{"error", "ERROR not_found no region \"x\"\n", Reply{Kind: ReplyError, Code: CodeNotFound, Text: b(`no region "x"`)}},
	{"error/code-only", "ERROR conflict\n", Reply{Kind: ReplyError, Code: CodeConflict}},
	{"error/conflict", "ERROR conflict 7 expected=5 version conflict: expected version 5, region is at version 7\n", Reply{Kind: ReplyError, Code: CodeConflict,
		Text: b("7 expected=5 version conflict: expected version 5, region is at version 7"), Conflict: ConflictFields{Current: 7, Expected: 5, HasCurrent: true, HasExpected: true}}},
	{"error/conflict-old-host", "ERROR conflict 7 version conflict: expected version 5, region is at version 7\n", Reply{Kind: ReplyError, Code: CodeConflict,
		Text: b("7 version conflict: expected version 5, region is at version 7"), Conflict: ConflictFields{Current: 7, HasCurrent: true}}},
	{"error/conflict-no-fields", "ERROR conflict someone wrote\n", Reply{Kind: ReplyError, Code: CodeConflict, Text: b("someone wrote")}},
	{"error/conflict-bad-expected", "ERROR conflict 7 expected=x\n", Reply{Kind: ReplyError, Code: CodeConflict, Text: b("7 expected=x"), Conflict: ConflictFields{Current: 7, HasCurrent: true}}},
	{"error/fenced", "ERROR fenced lease of r1 expired\n", Reply{Kind: ReplyError, Code: CodeFenced, Text: b("lease of r1 expired")}},
	{"error/code-space", "ERROR conflict \n", Reply{Kind: ReplyError, Code: CodeConflict, Text: b("")}},
	{"error/original", "ERROR Data too long\n", Reply{Kind: ReplyError, Text: b("Data too long")}},
	{"error/bare", "ERROR\n", Reply{Kind: ReplyError}},
	{"error/unknown-word", "ERROR unknown x\n", Reply{Kind: ReplyError, Text: b("unknown x")}},
	{"error/newer-code", "ERROR quota_exceeded too much\n", Reply{Kind: ReplyError, Text: b("quota_exceeded too much")}},
	{"error/utf8", "ERROR 数据太长\n", Reply{Kind: ReplyError, Text: b("数据太长")}},
}

func TestReplyParser(t *testing.T) {
	for _, tt := range replyTests {
		t.Run("case="+tt.name, func(t *testing.T) {
			p := NewReplyParser(0, 0)
			in := []byte(tt.in + "OK")
			r, n, err := p.Next(in)
			if err != nil {
				t.Fatalf("Next(%q) error: %v", tt.in, err)
			}
			if n != len(tt.in) {
				t.Errorf("Next(%q) consumed %d, want %d", tt.in, n, len(tt.in))
			}
			if got, want := fmtReply(r), fmtReply(tt.want); got != want {
				t.Errorf("Next(%q) = %s, want %s", tt.in, got, want)
			}
			// Split at every offset.
			for k := 0; k < len(tt.in); k++ {
				r, n, err := p.Next(in[:k])
				if n != 0 || err != nil || r.Kind != ReplyNone {
					t.Fatalf("Next(%q) = %s, %d, %v; want incomplete", in[:k], fmtReply(r), n, err)
				}
				if need := p.Need(); need != 0 && (need <= int64(k) || need > int64(len(tt.in))) {
					t.Errorf("Need() = %d after %d of %d bytes", need, k, len(tt.in))
				}
			}
		})
	}
}

func TestReplyParserMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code Code
		off  int
	}{
		{"unknown", "FOO\n", CodeBadRequest, 0},
		{"empty", "\n", CodeBadRequest, 0},
		{"lowercase", "ok\n", CodeBadRequest, 0},
		{"ok-cr", "OK\r\n", CodeBadRequest, 0},
		{"pong-extra", "PONG x\n", CodeBadRequest, 4},
		{"value-short", "VALUE 1\n", CodeBadRequest, 0},
		{"value-long", "VALUE 1 2 3\n", CodeBadRequest, 0},
		{"value-version", "VALUE x 1\na\n", CodeBadRequest, 6},
		{"value-length", "VALUE 1 -1\n", CodeBadRequest, 8},
		{"value-length-overflow", "VALUE 1 9223372036854775808\n", CodeBadRequest, 8},
		{"value-no-newline", "VALUE 1 3\nabcX", CodeBadRequest, 13},
		{"value-too-large", "VALUE 1 1073807361\n", CodeTooLarge, 8},
		{"json-extra", "JSON 5 6\n", CodeBadRequest, 0},
		{"json-cr", "JSON 2\r\n{}\n", CodeBadRequest, 5},
		{"event-id", "EVENT bad! 1 1\nx\n", CodeBadID, 6},
		{"event-version", "EVENT a v 1\nx\n", CodeBadRequest, 8},
		{"event-short", "EVENT a 1\nx\n", CodeBadRequest, 0},
		{"delta-short", "DELTA a 1 5 1\nx\n", CodeBadRequest, 0},
		{"delta-size", "DELTA a 1 x 0 1\nx\n", CodeBadRequest, 10},
		{"delta-offset-past-size", "DELTA a 1 5 6 0\n\n", CodeBadRequest, 12},
		{"delta-past-size", "DELTA a 1 5 4 2\nxy\n", CodeBadRequest, 14},
		{"delta-id", "DELTA a/b 1 5 0 1\nx\n", CodeBadID, 6},
		{"line-too-long", "OK " + strings.Repeat("x", 5000), CodeLineTooLong, 0},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			p := NewReplyParser(DefaultMaxLine, DefaultMaxPayload)
			r, n, err := p.Next([]byte(tt.in))
			var e *Error
			if !errors.As(err, &e) || n != 0 {
				t.Fatalf("Next(%q) = %s, %d, %v; want 0 and a *Error", tt.in, fmtReply(r), n, err)
			}
			if e.Code != tt.code || e.Offset != tt.off {
				t.Errorf("Next(%q) error %s, want code %v at offset %d", tt.in, fmtErr(err), tt.code, tt.off)
			}
			if !errors.Is(err, sentinelFor(tt.code)) {
				t.Errorf("errors.Is(%v, %v) = false", err, sentinelFor(tt.code))
			}
		})
	}
}

func TestReplyParserByteByByte(t *testing.T) {
	var all strings.Builder
	for _, tt := range replyTests {
		all.WriteString(tt.in)
	}
	data := []byte(all.String())
	whole, err := parseReplies(NewReplyParser(0, 0), data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) != len(replyTests) {
		t.Fatalf("parsed %d replies, want %d: %q", len(whole), len(replyTests), whole)
	}
	for i, tt := range replyTests {
		if want := fmtReply(tt.want); whole[i] != want {
			t.Errorf("reply %d: %s, want %s", i, whole[i], want)
		}
	}
	for _, step := range []int{1, 5} {
		got, err := parseReplies(NewReplyParser(0, 0), data, step)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(whole, "\n") {
			t.Errorf("step=%d: %q, want %q", step, got, whole)
		}
	}
}

func TestReplyParserAllocs(t *testing.T) {
	for _, tt := range replyTests {
		p := NewReplyParser(0, 0)
		in := []byte(tt.in)
		if allocs := testing.AllocsPerRun(50, func() { p.Next(in) }); allocs != 0 {
			t.Errorf("Next(%q) allocates %v times, want 0", tt.in, allocs)
		}
	}
}

func TestCodes(t *testing.T) {
	want := []string{
		"unknown", "bad_request", "unknown_command", "line_too_long", "too_large",
		"not_found", "exists", "invalid_utf8", "lock_timeout", "conflict",
		"out_of_range", "bad_id", "internal", "unauthorized", "forbidden",
		"limit", "unavailable", "unknown_outcome", "fenced",
	}
	if len(want) != int(numCodes) {
		t.Fatalf("%d codes, want %d", numCodes, len(want))
	}
	for i, w := range want {
		c := Code(i)
		if got := c.String(); got != w {
			t.Errorf("Code(%d).String() = %q, want %q (codes are append-only)", i, got, w)
		}
		if got := ParseCode(w); got != c {
			t.Errorf("ParseCode(%q) = %v, want %v", w, got, c)
		}
		if got := parseCode([]byte(w)); got != c {
			t.Errorf("parseCode(%q) = %v, want %v", w, got, c)
		}
	}
	for _, w := range []string{"", "NOT_FOUND", "nope", "not_found "} {
		if got := ParseCode(w); got != CodeUnknown {
			t.Errorf("ParseCode(%q) = %v, want unknown", w, got)
		}
	}
	if got := Code(250).String(); got != "unknown" {
		t.Errorf("Code(250).String() = %q, want unknown", got)
	}
}
