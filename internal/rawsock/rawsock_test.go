package rawsock_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// pair returns a wrapped server side and the plain client side of a
// connection on network ("tcp" on loopback, or "unix").
func pair(t *testing.T, network string) (server, client net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc := <-accepted
	if nc == nil {
		t.FailNow()
	}
	server = rawsock.Wrap(nc)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// waitParkedOnSocket waits until a goroutine started by TestReadWrite is
// parked by the runtime's poller: a Read that waits for bytes, or a
// Write for room, not one still on its way there.
func waitParkedOnSocket(t *testing.T) {
	t.Helper()
	shmtest.CheckFor(t, 10*time.Second, "the call never waited on the socket", func() bool { return parkedOnSocket("rawsock_test.TestReadWrite") })
}

// parkedOnSocket reports whether a goroutine with fn (a function name as
// stack dumps give it) in its stack is parked by the runtime's poller
// ("IO wait" in its stack dump).
func parkedOnSocket(fn string) bool {
	buf := make([]byte, 1<<20)
	for _, g := range bytes.Split(buf[:runtime.Stack(buf, true)], []byte("\n\n")) {
		if bytes.Contains(g, []byte("[IO wait")) && bytes.Contains(g, []byte(fn)) {
			return true
		}
	}
	return false
}

func TestWrapKeepsOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := rawsock.Wrap(a); got != a {
		t.Errorf("Wrap(net.Pipe conn) = %T, want the conn itself", got)
	}
}

func TestReadWrite(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			tests := []struct {
				name string
				run  func(t *testing.T, s, c net.Conn)
			}{
				{"request and reply", func(t *testing.T, s, c net.Conn) {
					for i := range 100 {
						msg := []byte{byte(i), 'x', '\n'}
						if _, err := c.Write(msg); err != nil {
							t.Fatal(err)
						}
						buf := make([]byte, 16)
						n, err := s.Read(buf)
						if err != nil || !bytes.Equal(buf[:n], msg) {
							t.Fatalf("Read = %q, %v; want %q", buf[:n], err, msg)
						}
						if n, err := s.Write(msg); n != len(msg) || err != nil {
							t.Fatalf("Write = %d, %v", n, err)
						}
						if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil || !bytes.Equal(buf[:len(msg)], msg) {
							t.Fatalf("client read %q, %v", buf[:len(msg)], err)
						}
					}
				}},
				{"read waits for data", func(t *testing.T, s, c net.Conn) {
					done := make(chan error, 1)
					buf := make([]byte, 8)
					var n int
					go func() {
						var err error
						n, err = s.Read(buf)
						done <- err
					}()
					waitParkedOnSocket(t)
					c.Write([]byte("late"))
					if err := <-done; err != nil || string(buf[:n]) != "late" {
						t.Fatalf("Read = %q, %v; want %q", buf[:n], err, "late")
					}
				}},
				{"zero-length read", func(t *testing.T, s, c net.Conn) {
					if n, err := s.Read(nil); n != 0 || err != nil {
						t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
					}
				}},
				{"end of stream", func(t *testing.T, s, c net.Conn) {
					c.Write([]byte("last"))
					c.Close()
					got, err := io.ReadAll(s)
					if err != nil || string(got) != "last" {
						t.Fatalf("ReadAll = %q, %v; want %q, nil (io.EOF at the end)", got, err, "last")
					}
					if n, err := s.Read(make([]byte, 4)); n != 0 || err != io.EOF {
						t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
					}
				}},
				{"read deadline", func(t *testing.T, s, c net.Conn) {
					s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					n, err := s.Read(make([]byte, 4))
					var ne net.Error
					if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
						t.Fatalf("Read past the deadline = %d, %v; want a timeout net.Error", n, err)
					}
					var oe *net.OpError
					if !errors.As(err, &oe) || oe.Op != "read" || errors.As(oe.Err, new(*net.OpError)) {
						t.Errorf("error %v: want one *net.OpError for read", err)
					}
					s.SetReadDeadline(time.Time{})
					c.Write([]byte("ok"))
					buf := make([]byte, 4)
					if n, err := s.Read(buf); err != nil || string(buf[:n]) != "ok" {
						t.Fatalf("Read after clearing the deadline = %q, %v", buf[:n], err)
					}
				}},
				{"close unblocks read", func(t *testing.T, s, c net.Conn) {
					done := make(chan error, 1)
					go func() {
						_, err := s.Read(make([]byte, 4))
						done <- err
					}()
					waitParkedOnSocket(t)
					s.Close()
					if err := <-done; !errors.Is(err, net.ErrClosed) {
						t.Fatalf("Read on a closed conn = %v, want net.ErrClosed", err)
					}
				}},
				{"large write waits for the reader", func(t *testing.T, s, c net.Conn) {
					// Far more than the socket buffers hold: Write must
					// wait for room, several times, and send every byte.
					big := make([]byte, 32<<20)
					for i := range big {
						big[i] = byte(i * 7)
					}
					done := make(chan error, 1)
					var n int
					go func() {
						var err error
						n, err = s.Write(big)
						done <- err
					}()
					waitParkedOnSocket(t) // the buffers are full: Write waits for room
					b, _ := io.ReadAll(io.LimitReader(c, int64(len(big))))
					if err := <-done; n != len(big) || err != nil {
						t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
					}
					if !bytes.Equal(b, big) {
						t.Fatalf("the reader got %d bytes, not the %d written", len(b), len(big))
					}
				}},
				{"write deadline", func(t *testing.T, s, c net.Conn) {
					// The client reads nothing: the write fills the
					// buffers and times out, reporting what it sent.
					s.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
					big := make([]byte, 64<<20)
					n, err := s.Write(big)
					if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(big) {
						t.Fatalf("Write to a reader that reads nothing = %d, %v; want at most part of it and a timeout", n, err)
					}
					var oe *net.OpError
					if !errors.As(err, &oe) || oe.Op != "write" || errors.As(oe.Err, new(*net.OpError)) {
						t.Errorf("error %v: want one *net.OpError for write", err)
					}
				}},
				{"write to a closed peer", func(t *testing.T, s, c net.Conn) {
					c.Close()
					var err error
					for i := 0; i < 100 && err == nil; i++ {
						_, err = s.Write(make([]byte, 64<<10))
						time.Sleep(time.Millisecond)
					}
					var oe *net.OpError
					if !errors.As(err, &oe) || oe.Op != "write" {
						t.Fatalf("Write to a closed peer = %v, want a *net.OpError for write", err)
					}
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, c := pair(t, network)
					tt.run(t, s, c)
				})
			}
		})
	}
}

// TestReadWriteAllocs: a read and a write of a wrapped connection allocate
// nothing (the callbacks are bound once).
func TestReadWriteAllocs(t *testing.T) {
	s, c := pair(t, "tcp")
	msg := []byte("ping\n")
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		c.Write(msg)
		s.Read(buf)
		s.Write(msg)
		io.ReadFull(c, buf[:len(msg)])
	})
	if allocs > 0 {
		t.Errorf("a request/reply round allocates %.1f times, want 0", allocs)
	}
}

// TestSyscallConn: a wrapped connection still gives its raw connection,
// for callers that peek at the socket (the client's probe does).
func TestSyscallConn(t *testing.T) {
	s, _ := pair(t, "tcp")
	sc, ok := s.(syscall.Conn)
	if !ok {
		t.Fatalf("%T does not implement syscall.Conn", s)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	called := false
	if err := rc.Control(func(fd uintptr) { called = true }); err != nil || !called {
		t.Fatalf("Control = %v (called %v), want the socket's descriptor", err, called)
	}
}
