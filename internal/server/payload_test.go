package server

import (
	"fmt"
	"net"
	"testing"

	"github.com/shmgr/shmgr/internal/proto"
)

// TestPayloadBufferGrowsWithBytes: a connection's read buffer grows with
// the payload bytes that arrive, never to the length a command line
// announces: after every read it holds at most twice what is pending (or
// readBufSize). Driven by hand, read by read, over a pipe.
func TestPayloadBufferGrowsWithBytes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		announced int
		send      int // payload bytes the client sends before it stops
	}{
		{"header-only", 1 << 30, 0},
		{"some", 1 << 30, 300 << 10},
		{"whole", 200 << 10, 200 << 10},
	} {
		t.Run("payload="+tt.name, func(t *testing.T) {
			s := New(nil, Config{})
			a, b := net.Pipe()
			defer a.Close()
			c := newConn(s, a)
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer b.Close()
				fmt.Fprintf(b, "WRITE %d\n", tt.announced)
				chunk := make([]byte, 8<<10)
				for sent := 0; sent < tt.send; sent += len(chunk) {
					if _, err := b.Write(chunk[:min(len(chunk), tt.send-sent)]); err != nil {
						return
					}
				}
				if tt.send == tt.announced {
					b.Write([]byte("\n"))
				}
			}()
			var req proto.Request
			peak := 0
			for {
				n, err := c.p.NextInto(&req, c.in[c.r:c.w])
				if err != nil {
					t.Fatal(err)
				}
				c.r += n
				if n > 0 && req.Cmd == proto.CmdWrite {
					break // the whole payload is in: it has been parsed
				}
				more := c.fill()
				pending := c.w - c.r
				if bound := max(readBufSize, 2*pending); len(c.in) > bound {
					t.Fatalf("buffer of %d bytes with %d pending (announced %d): want at most %d", len(c.in), pending, tt.announced, bound)
				}
				peak = max(peak, len(c.in))
				if !more {
					break
				}
			}
			a.Close()
			<-done
			t.Logf("announced %d, sent %d: largest buffer %d bytes", tt.announced, tt.send, peak)
		})
	}
}
