package shmtest_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// echoServer is the proxy's target in these tests: it echoes what each
// connection sends and, when the connection ends, reports everything it
// received on got.
type echoServer struct {
	ln  net.Listener
	got chan string
	wg  sync.WaitGroup
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln, got: make(chan string, 16)}
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			e.wg.Go(func() {
				defer c.Close()
				var all bytes.Buffer
				io.Copy(io.MultiWriter(c, &all), c)
				select {
				case e.got <- all.String():
				default:
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		e.wg.Wait()
	})
	return e
}

// received returns what the next connection to end sent the echo server.
func (e *echoServer) received(t *testing.T) string {
	t.Helper()
	select {
	case s := <-e.got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the echo server saw no connection end within 10s")
		return ""
	}
}

// dialProxy connects to the proxy and closes the connection when the test
// ends.
func dialProxy(t *testing.T, p *shmtest.FaultProxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("Write(%q): %v", s, err)
	}
}

// readN reads exactly n bytes within 10s.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

// expectSilence checks that nothing arrives on c for d (the connection
// stays open).
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read during a blackhole = %q, %v, want a timeout (silence on an open connection)", b[:n], err)
	}
}

// expectClosed checks that c is closed by the proxy after delivering
// want, or one of the other strings the test allows.
func expectClosed(t *testing.T, c net.Conn, want string, alsoOK ...string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("reading until the cut: %v (got %q)", err, got)
	}
	if string(got) != want && !slices.Contains(alsoOK, string(got)) {
		t.Errorf("bytes before the cut = %q, want %q", got, append([]string{want}, alsoOK...))
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

func TestFaultProxy(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, p *shmtest.FaultProxy, e *echoServer)
	}{
		{"pass-through", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			write(t, c, "hello")
			if got := readN(t, c, 5); got != "hello" {
				t.Errorf("echo = %q, want %q", got, "hello")
			}
			// The proxy counts a chunk once its write returns, which may be
			// just after the client has read it.
			shmtest.CheckFor(t, 10*time.Second, "Relayed did not count 5 bytes each way", func() bool {
				return p.Relayed(shmtest.ToHost) == 5 && p.Relayed(shmtest.ToClient) == 5
			})
		}},
		{"blackhole=to-host", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.Blackhole(shmtest.ToHost, true)
			write(t, c, "lost")
			expectSilence(t, c, 200*time.Millisecond)
			p.Blackhole(shmtest.ToHost, false)
			write(t, c, "found")
			if got := readN(t, c, 5); got != "found" {
				t.Errorf("echo after the blackhole = %q, want %q", got, "found")
			}
			c.Close()
			if got := e.received(t); got != "found" {
				t.Errorf("host received %q, want %q (blackholed bytes dropped)", got, "found")
			}
		}},
		{"blackhole=to-client", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.Blackhole(shmtest.ToClient, true)
			write(t, c, "lost")
			expectSilence(t, c, 500*time.Millisecond) // long enough for the echo to be dropped
			p.Blackhole(shmtest.ToClient, false)
			write(t, c, "found")
			if got := readN(t, c, 5); got != "found" {
				t.Errorf("echo after the blackhole = %q, want %q", got, "found")
			}
			c.Close()
			if got := e.received(t); got != "lostfound" {
				t.Errorf("host received %q, want %q", got, "lostfound")
			}
		}},
		{"delay", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			const d = 100 * time.Millisecond
			c := dialProxy(t, p)
			p.Delay(shmtest.ToHost, d)
			p.Delay(shmtest.ToClient, d)
			start := time.Now()
			write(t, c, "slow")
			if got := readN(t, c, 4); got != "slow" {
				t.Errorf("echo = %q, want %q", got, "slow")
			}
			if rtt := time.Since(start); rtt < 2*d {
				t.Errorf("round trip = %v, want at least %v", rtt, 2*d)
			}
		}},
		{"cut=to-host", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.CutAfter(shmtest.ToHost, 3)
			write(t, c, "abcdef")
			// The host may echo "abc" back before the proxy has closed
			// the client's side: either all of that echo or none of it.
			expectClosed(t, c, "", "abc")
			if got := e.received(t); got != "abc" {
				t.Errorf("host received %q, want %q", got, "abc")
			}
			c2 := dialProxy(t, p) // the fault has cleared
			write(t, c2, "again")
			if got := readN(t, c2, 5); got != "again" {
				t.Errorf("echo on a new connection = %q, want %q", got, "again")
			}
		}},
		{"cut=to-client", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.CutAfter(shmtest.ToClient, 2)
			write(t, c, "abcdef")
			expectClosed(t, c, "ab")
		}},
		{"cut=to-client-0", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.CutAfter(shmtest.ToClient, 0)
			write(t, c, "abcdef")
			expectClosed(t, c, "")
			if got := e.received(t); got != "abcdef" {
				t.Errorf("host received %q, want %q (the request went through)", got, "abcdef")
			}
		}},
		{"duplicate=to-host", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.DuplicateNext(shmtest.ToHost)
			write(t, c, "dup")
			if got := readN(t, c, 6); got != "dupdup" {
				t.Errorf("echo = %q, want %q", got, "dupdup")
			}
			write(t, c, "once")
			if got := readN(t, c, 4); got != "once" {
				t.Errorf("echo of the next chunk = %q, want %q (the fault clears)", got, "once")
			}
		}},
		{"duplicate=to-client", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.DuplicateNext(shmtest.ToClient)
			write(t, c, "dup")
			if got := readN(t, c, 6); got != "dupdup" {
				t.Errorf("echo = %q, want %q", got, "dupdup")
			}
		}},
		{"reset", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			write(t, c, "x")
			readN(t, c, 1)
			before := p.Accepted()
			p.Reset()
			expectClosed(t, c, "")
			c2 := dialProxy(t, p)
			write(t, c2, "new")
			if got := readN(t, c2, 3); got != "new" {
				t.Errorf("echo after Reset = %q, want %q", got, "new")
			}
			if got := p.Accepted(); got != before+1 {
				t.Errorf("Accepted() = %d, want %d", got, before+1)
			}
		}},
		{"heal", func(t *testing.T, p *shmtest.FaultProxy, e *echoServer) {
			c := dialProxy(t, p)
			p.Blackhole(shmtest.ToHost, true)
			p.Delay(shmtest.ToClient, time.Hour)
			p.Heal()
			write(t, c, "ok")
			if got := readN(t, c, 2); got != "ok" {
				t.Errorf("echo after Heal = %q, want %q", got, "ok")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEcho(t)
			p := shmtest.StartFaultProxy(t, e.ln.Addr().String())
			tt.run(t, p, e)
		})
	}
}

// TestFaultProxyClose checks that Close cuts every connection, even one
// held up by a delay, and ends every goroutine the proxy started.
func TestFaultProxyClose(t *testing.T) {
	e := startEcho(t)
	before := runtime.NumGoroutine()
	p := shmtest.StartFaultProxy(t, e.ln.Addr().String())
	c := dialProxy(t, p)
	write(t, c, "x")
	readN(t, c, 1)
	p.Delay(shmtest.ToHost, time.Hour)
	write(t, c, "held")
	c2 := dialProxy(t, p)
	p.Blackhole(shmtest.ToClient, true)
	write(t, c2, "y")

	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	expectClosed(t, c, "")
	expectClosed(t, c2, "")
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("Dial(%s) after Close succeeded", p.Addr())
	}
	// The echo server's goroutines for the two links end too, once it
	// sees them close; everything else belonged to the proxy.
	shmtest.CheckFor(t, 10*time.Second, "goroutines left after Close", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func TestFaultProxyLoopbackOnly(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }()
		shmtest.StartFaultProxy(ft, "192.0.2.1:9410")
	}()
	if !ft.failed {
		t.Error("StartFaultProxy accepted a target that is not on loopback")
	}
}

// fatalRecorder records a Fatal instead of ending the test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Helper()                      {}
func (f *fatalRecorder) Fatalf(string, ...any)        { f.failed = true; panic("fatal") }
func (f *fatalRecorder) Fatal(...any)                 { f.failed = true; panic("fatal") }
func (f *fatalRecorder) Cleanup(func())               {}
func (f *fatalRecorder) Errorf(string, ...any)        { f.failed = true }
func (f *fatalRecorder) Logf(format string, a ...any) {}

// TestPoll: Poll reports a condition that becomes true as true, and one
// that never does as false once its timeout has passed (not before).
func TestPoll(t *testing.T) {
	n := 0
	if !shmtest.Poll(10*time.Second, func() bool { n++; return n == 3 }) {
		t.Errorf("Poll of a condition true on its third call = false, want true")
	}
	start := time.Now()
	if shmtest.Poll(50*time.Millisecond, func() bool { return false }) {
		t.Errorf("Poll of a condition never true = true, want false")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Poll gave up after %v, before its timeout of 50ms", d)
	}
}
