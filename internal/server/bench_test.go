package server_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/server"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// benchServer starts an in-process host and server on loopback with a raw
// region of size bytes named "bench", and returns a connection to it with
// the metadata line read.
func benchServer(b *testing.B, size int) (net.Conn, *bufio.Reader) {
	b.Helper()
	h := shmtest.OpenHost(b, host.DefaultConfig(b.TempDir()))
	if _, err := h.Create("bench", host.CreateOptions{Size: int64(size), Layout: 2}); err != nil {
		b.Fatal(err)
	}
	srv := server.New(h, server.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(context.Background()) }) // before OpenHost's close
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	br := bufio.NewReaderSize(nc, 1<<20)
	if _, err := br.ReadBytes('\n'); err != nil {
		b.Fatal(err)
	}
	return nc, br
}

// BenchmarkPipeline measures the host's cost per request with 16 requests
// in flight on one connection. The client side here allocates nothing, so
// allocs/op is the server's: parse, dispatch, copy and reply must not
// allocate.
func BenchmarkPipeline(b *testing.B) {
	const depth = 16
	for _, tc := range []struct {
		name string
		size int
		req  func(id []byte, p []byte) []byte
	}{
		{"op=GET/size=4KiB", 4096, func(id, p []byte) []byte { return proto.AppendGet(nil, id) }},
		{"op=SET/size=4KiB", 4096, func(id, p []byte) []byte { return proto.AppendSet(nil, id, p, proto.SetOptions{}) }},
		{"op=GET/size=64B", 64, func(id, p []byte) []byte { return proto.AppendGet(nil, id) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			nc, br := benchServer(b, tc.size)
			one := tc.req([]byte("bench"), bytes.Repeat([]byte("x"), tc.size))
			batch := bytes.Repeat(one, depth)
			// The first batch goes out before the timer starts.
			nc.Write(batch)
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				if i > 0 {
					if _, err := nc.Write(batch); err != nil {
						b.Fatal(err)
					}
				}
				for range depth {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if line[0] == 'V' {
						if _, err := br.Discard(tc.size + 1); err != nil {
							b.Fatal(err)
						}
					} else if line[0] != 'O' {
						b.Fatalf("reply %q", line)
					}
				}
			}
			b.StopTimer()
		})
	}
}
