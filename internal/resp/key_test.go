package resp

import (
	"errors"
	"testing"
)

func TestKeyMapping(t *testing.T) {
	cases := []struct{ key, id string }{
		{"greeting", "greeting"},
		{"default", "default"},
		{"my_key", "my_key"},
		{"a.b-c", "a.b-c"},
		{"key:000000000042", "key_3a000000000042"},
		{"user:42", "user_3a42"},
		{"a b", "a_20b"},
		{"x_ab", ""},     // 0xab is outside the id alphabet: an escape
		{"x_70", "x_70"}, // 0x70 is 'p', an id byte: not an escape
		{"x_5f", "x_5f"}, // nor is '_'
		{"x_3A", "x_3A"}, // 'A' is not lowercase hex
		{"x_", "x_"},
		{"é", ""},    // does not start with a letter or digit
		{"a_3a", ""}, // holds an escape itself
		{"k\xff", "k_ff"},
		{"K\r\n", "K_0d_0a"},
	}
	for _, tt := range cases {
		id, err := AppendID(nil, []byte(tt.key))
		if tt.id == "" {
			if !errors.Is(err, ErrBadKey) {
				t.Errorf("AppendID(%q) = %q, %v; want ErrBadKey", tt.key, id, err)
			}
			continue
		}
		if err != nil || string(id) != tt.id {
			t.Errorf("AppendID(%q) = %q, %v; want %q", tt.key, id, err, tt.id)
		}
		if back := AppendKey(nil, id); string(back) != tt.key {
			t.Errorf("AppendKey(%q) = %q, want %q", id, back, tt.key)
		}
		if Plain([]byte(tt.key)) != (tt.key == tt.id) {
			t.Errorf("Plain(%q) = %v, want %v", tt.key, !(tt.key == tt.id), tt.key == tt.id)
		}
	}
	for _, bad := range []string{"", "_a", ":x", "-", string(make([]byte, 65)), "a" + string(make([]byte, 30))} {
		if id, err := AppendID([]byte("keep"), []byte(bad)); !errors.Is(err, ErrBadKey) || string(id) != "keep" {
			t.Errorf("AppendID(%q) = %q, %v; want dst unchanged and ErrBadKey", bad, id, err)
		}
	}
}

func TestKeyAllocs(t *testing.T) {
	dst := make([]byte, 0, 64)
	key := []byte("key:000000000042")
	if n := testing.AllocsPerRun(100, func() { AppendID(dst[:0], key) }); n != 0 {
		t.Errorf("AppendID allocates %v times, want 0", n)
	}
}

// matchRef is a plain recursive glob matcher, the reference Match is
// checked against.
func matchRef(p, s []byte) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if matchRef(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && matchRef(p[1:], s[1:])
	}
	if len(s) == 0 {
		return false
	}
	np, ok := single(p, 0, s[0])
	return ok && matchRef(p[np:], s[1:])
}

func TestMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*", "bc", false},
		{"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"[abc]x", "bx", true}, {"[^abc]x", "bx", false}, {"[^abc]x", "dx", true},
		{"[a-c]", "b", true}, {"[c-a]", "b", true}, {"[a-c]", "d", false},
		{"\\*", "*", true}, {"\\*", "a", false}, {"[\\]]", "]", true},
		{"key:*", "key:000000000042", true}, {"__keyspace@0__:*", "__keyspace@0__:k", true},
		{"h*llo", "heeeello", true}, {"h*l*o", "hlo", true}, {"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false},
	}
	for _, tt := range cases {
		if got := Match([]byte(tt.p), []byte(tt.s)); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
		if got := matchRef([]byte(tt.p), []byte(tt.s)); got != tt.want {
			t.Errorf("matchRef(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}
