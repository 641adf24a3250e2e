package bench

import (
	"bytes"
	"testing"
)

// replies are a reply of each protocol to a 4 KiB read and to a write.
func replies(protocol, test string) []byte {
	data := bytes.Repeat([]byte{'x'}, 4096)
	switch {
	case protocol == "shmgr" && test == "read":
		return append(append([]byte("VALUE 12345 4096\n"), data...), '\n')
	case protocol == "shmgr":
		return []byte("OK 12345\n")
	case test == "read":
		return append(append([]byte("$4096\r\n"), data...), "\r\n"...)
	default:
		return []byte("+OK\r\n")
	}
}

func TestCodecs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		protocol, test string
		request        string // the start of the request frame
	}{
		{"shmgr", "read", "GET r4096\n"},
		{"shmgr", "write", "SET r4096 4096\n"},
		{"redis", "read", "*2\r\n$3\r\nGET\r\n$5\r\nr4096\r\n"},
		{"redis", "write", "*3\r\n$3\r\nSET\r\n$5\r\nr4096\r\n$4096\r\n"},
	}
	for _, tt := range tests {
		c, err := newCodec(Config{Protocol: tt.protocol, Size: 4096, ID: "r4096"}, tt.test)
		if err != nil {
			t.Fatal(err)
		}
		req := c.request(nil, 0)
		if !bytes.HasPrefix(req, []byte(tt.request)) {
			t.Errorf("%s %s: request %.60q, want it to start %q", tt.protocol, tt.test, req, tt.request)
		}
		if again := c.request(req[:0], 1); !bytes.Equal(again, req) && tt.test != "mixed" {
			t.Errorf("%s %s: the second request differs from the first", tt.protocol, tt.test)
		}
		rep := replies(tt.protocol, tt.test)
		for cut := range len(rep) {
			if n, _, err := c.reply(rep[:cut]); n != 0 || err != nil {
				t.Fatalf("%s %s: reply cut at %d of %d: n=%d err=%v, want 0 (need more)", tt.protocol, tt.test, cut, len(rep), n, err)
			}
		}
		if n, isErr, err := c.reply(rep); n != len(rep) || isErr || err != nil {
			t.Errorf("%s %s: whole reply: n=%d isErr=%v err=%v, want %d", tt.protocol, tt.test, n, isErr, err, len(rep))
		}
	}
}

func TestRedisReplies(t *testing.T) {
	t.Parallel()
	c := newRedisCodec("read", "k", nil)
	tests := []struct {
		in      string
		n       int
		isErr   bool
		wantErr bool
	}{
		{"+OK\r\n", 5, false, false},
		{":12\r\n", 5, false, false},
		{"-ERR no\r\n", 9, true, false},
		{"$-1\r\n", 5, false, false},
		{"$3\r\nabc\r\n", 9, false, false},
		{"$3\r\nab", 0, false, false},
		{"$x\r\n", 0, false, true},
		{"$\r\n", 0, false, true},
		{"\r\n", 0, false, true},
		{"*1\r\n", 0, false, true},
	}
	for _, tt := range tests {
		n, isErr, err := c.reply([]byte(tt.in))
		if n != tt.n || isErr != tt.isErr || (err != nil) != tt.wantErr {
			t.Errorf("reply(%q) = %d, %v, %v; want %d, %v, error %v", tt.in, n, isErr, err, tt.n, tt.isErr, tt.wantErr)
		}
	}
}

func FuzzRedisReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", "$3\r\nabc\r\n", "$-1\r\n", ":1\r\n", "$99999999999999999999\r\n"} {
		f.Add([]byte(s))
	}
	c := newRedisCodec("read", "k", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _, err := c.reply(b)
		if n < 0 || n > len(b) || (err != nil && n != 0) {
			t.Fatalf("reply(%q) = %d, %v", b, n, err)
		}
	})
}

// BenchmarkCodecs measures the load generator's own work per request of
// each protocol (framing the request, parsing the reply): it must stay
// small and alike, so that the comparison measures the servers.
func BenchmarkCodecs(b *testing.B) {
	for _, p := range []string{"shmgr", "redis"} {
		for _, test := range []string{"read", "write"} {
			b.Run(p+"-"+test, func(b *testing.B) {
				c, err := newCodec(Config{Protocol: p, Size: 4096, ID: "r4096"}, test)
				if err != nil {
					b.Fatal(err)
				}
				rep := replies(p, test)
				buf := make([]byte, 0, 8192)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					buf = c.request(buf[:0], i)
					if n, _, err := c.reply(rep); n != len(rep) || err != nil {
						b.Fatal(n, err)
					}
				}
			})
		}
	}
}
