package resp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/proto"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/, so a plain go test
// replays them (and any crasher kept there).

// FuzzParser checks that any input parses without panicking, that a
// parsed command re-encodes (AppendCommand) to bytes that parse to the
// same arguments, and that an error is a *Error.
func FuzzParser(f *testing.F) {
	for _, tt := range requestCases {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte("*1\r\n$-1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p := NewParser(Limits{MaxArgs: 64, MaxBulk: 1 << 16, MaxInline: 1 << 12})
		var c Command
		buf := bytes.Clone(in)
		for len(buf) > 0 {
			n, err := p.Next(&c, buf)
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Next(%q) error %T %v, want *Error", buf, err, err)
				}
				return
			}
			if n == 0 {
				return
			}
			if n > len(buf) {
				t.Fatalf("Next took %d of %d bytes", n, len(buf))
			}
			if len(c.Args) > 0 {
				enc := AppendCommand(nil, c.Args...)
				var c2 Command
				m, err := NewParser(Limits{}).Next(&c2, enc)
				if err != nil || m != len(enc) || len(c2.Args) != len(c.Args) {
					t.Fatalf("re-encoded %q: Next = %d, %v, %d args; want %d, nil, %d", enc, m, err, len(c2.Args), len(enc), len(c.Args))
				}
				for i := range c.Args {
					if !bytes.Equal(c.Args[i], c2.Args[i]) {
						t.Fatalf("arg %d: %q, re-parsed %q", i, c.Args[i], c2.Args[i])
					}
				}
			}
			buf = buf[n:]
		}
	})
}

// FuzzReplyParser checks that a parsed reply re-encodes (in RESP3 form,
// canonical numbers) to bytes that parse to the same reply and re-encode
// to themselves.
func FuzzReplyParser(f *testing.F) {
	for _, c := range replyCases() {
		f.Add(c.enc)
	}
	f.Add([]byte("|1\r\n+a\r\n:1\r\n+x\r\n"))
	f.Add([]byte("#t\r\n,1.5\r\n(123\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, n, err := ParseReply(in)
		if err != nil || n == 0 {
			return
		}
		enc := AppendReply(nil, RESP3, r)
		r2, m, err := ParseReply(enc)
		if err != nil || m != len(enc) {
			t.Fatalf("re-encoded %q: %d, %v", enc, m, err)
		}
		if r.String() != r2.String() {
			t.Fatalf("%q parses to %s, re-encoded %q to %s", in[:n], r, enc, r2)
		}
		if enc2 := AppendReply(nil, RESP3, r2); !bytes.Equal(enc2, enc) {
			t.Fatalf("%q re-encodes to %q, then to %q", in[:n], enc, enc2)
		}
	})
}

// FuzzKey checks the key mapping's round trip both ways: a key that maps
// comes back from its id, and the id is a valid region id; any valid id
// maps to a key that maps back to it.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"greeting", "key:000000000042", "x_ab", "x_70", "a_3a", "a b", "k\xff", "x_3A"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		id, err := AppendID(nil, key)
		if err == nil {
			if !proto.ValidID(id) {
				t.Fatalf("AppendID(%q) = %q, not a valid id", key, id)
			}
			if back := AppendKey(nil, id); !bytes.Equal(back, key) {
				t.Fatalf("AppendKey(AppendID(%q)) = %q", key, back)
			}
			if Plain(key) != bytes.Equal(id, key) {
				t.Fatalf("Plain(%q) = %v, id %q", key, Plain(key), id)
			}
		}
		if proto.ValidID(key) {
			k := AppendKey(nil, key)
			id, err := AppendID(nil, k)
			if err != nil || !bytes.Equal(id, key) {
				t.Fatalf("id %q: key %q maps to %q, %v", key, k, id, err)
			}
		}
	})
}

// FuzzMatch checks Match against the recursive reference.
func FuzzMatch(f *testing.F) {
	f.Add([]byte("a*b?c[^d-f]\\*"), []byte("aXXbYc*"))
	f.Add([]byte("*"), []byte(""))
	f.Add([]byte("[a-"), []byte("b"))
	f.Fuzz(func(t *testing.T, p, s []byte) {
		if len(p) > 24 || len(s) > 24 {
			return // keep the reference's backtracking small
		}
		if got, want := Match(p, s), matchRef(p, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference %v", p, s, got, want)
		}
	})
}

// parseList parses buf to the end (or the first error or incomplete
// command), feeding it in two reads cut at cut: the commands and whether
// it ended in an error.
func parseList(in []byte, cut int) (cmds []string, failed bool) {
	p := NewParser(Limits{MaxArgs: 64, MaxBulk: 1 << 16, MaxInline: 1 << 12})
	buf := bytes.Clone(in)
	cut = min(cut, len(buf))
	var c Command
	start, end := 0, cut
	for {
		n, err := p.Next(&c, buf[start:end])
		if err != nil {
			return cmds, true
		}
		if n == 0 {
			if end == len(buf) {
				return cmds, false
			}
			end = len(buf) // the second read
			continue
		}
		cmds = append(cmds, fmtCmd(c))
		start += n
		if start > end {
			end = start
		}
	}
}

// FuzzParserSplit checks that a stream cut into two reads anywhere parses
// to the same commands as in one read: the parser's resumption of an
// incomplete command loses and invents nothing.
func FuzzParserSplit(f *testing.F) {
	for _, tt := range requestCases {
		f.Add([]byte(tt.in+tt.in), uint16(len(tt.in)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		whole, wf := parseList(in, len(in))
		split, sf := parseList(in, int(cut))
		if strings.Join(whole, "\n") != strings.Join(split, "\n") || wf != sf {
			t.Fatalf("%q in one read: %q (error %v); cut at %d: %q (error %v)", in, whole, wf, cut, split, sf)
		}
	})
}
