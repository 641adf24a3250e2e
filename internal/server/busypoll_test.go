package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/certs"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestSpinPolicy walks the policy through the clients it must tell
// apart, read by read.
func TestSpinPolicy(t *testing.T) {
	t.Parallel()
	const bp = 50 * time.Microsecond
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	// A read: the connections open, how long the request took to come
	// after the read began, and whether the policy should let it spin.
	type read struct {
		conns int64
		wait  time.Duration
		spins bool
	}
	tests := []struct {
		name  string
		reads []read
	}{
		{"back to back", []read{{1, us(20), false}, {1, us(20), true}, {1, us(20), true}, {1, us(20), true}}},
		{"another connection", []read{{1, us(20), false}, {2, us(20), false}, {2, us(20), false}, {1, us(20), true}}},
		{"a pause cools", []read{{1, us(20), false}, {1, us(20), true}, {1, 5 * time.Millisecond, true}, {1, us(20), false}, {1, us(20), true}}},
	}
	for _, tt := range tests {
		now := time.Unix(1000, 0)
		p := newSpinPolicy(now)
		for i, r := range tt.reads {
			d := p.next(bp, r.conns, now)
			if (d > 0) != r.spins {
				t.Errorf("%s: read %d spins %v, want %v", tt.name, i, d, r.spins)
			}
			before := now
			now = now.Add(r.wait)
			spun := d > 0
			p.done(bp, d, before, now, spun, spun && r.wait < d)
		}
	}

	// 100 ms of a client whose requests come every 80 µs (each 50 µs spin
	// in vain), and of one whose spins pay nine times in ten (a miss
	// every tenth request): the first soon stops spinning but for a probe
	// per spinProbe; the second goes on.
	for _, tc := range []struct {
		name     string
		hitEvery int // 0: never
		min, max int // spins in the 100 ms
	}{
		{"just too late", 0, 1, 12 + int(100*time.Millisecond/spinProbe) + 1},
		{"jittery", 10, 1000, 1250},
	} {
		now := time.Unix(1000, 0)
		p := newSpinPolicy(now)
		p.hot = true
		spins := 0
		for i := range 1250 {
			d := p.next(bp, 1, now)
			before := now
			wait := us(80)
			if tc.hitEvery > 0 && i%tc.hitEvery != 0 {
				wait = us(20)
			}
			now = now.Add(wait)
			if d > 0 {
				spins++
			}
			p.done(bp, d, before, now, d > 0, d > 0 && wait < d)
		}
		if spins < tc.min || spins > tc.max {
			t.Errorf("%s: %d spins in 1250 reads, want %d to %d", tc.name, spins, tc.min, tc.max)
		}
	}

	// A lone client sending back to back: the reads spin for at most
	// maxSpinStretch, then one sleeps.
	now := time.Unix(1000, 0)
	p := newSpinPolicy(now)
	p.hot = true
	spins := 0
	for p.next(bp, 1, now) > 0 {
		spins++
		before := now
		now = now.Add(us(10))
		p.done(bp, bp, before, now, true, true)
	}
	if want := int(maxSpinStretch / us(10)); spins != want {
		t.Errorf("back-to-back spins before a sleep: %d, want %d (maxSpinStretch)", spins, want)
	}
	if d := p.next(0, 1, now); d != 0 {
		t.Errorf("BusyPoll 0 spins %v", d)
	}
}

// TestBusyPoll checks when a host with BusyPoll spins: for a lone client
// sending back to back, not while another connection is open (and a new
// connection is served while the lone client goes on), and not for a
// client that pauses between requests.
func TestBusyPoll(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{BusyPoll: time.Millisecond}, nil, nil)
	a := dial(t, ts.addr)
	pings := func(n int) {
		t.Helper()
		for range n {
			a.expect("PING\n", "PONG")
		}
	}
	found := func() uint64 { return ts.m.SpinFound.Load() }

	// Back to back (the first spins may be in vain on a busy machine, and
	// then the policy waits spinQuiet before it tries again).
	pingsUntilFound := func(what string) {
		t.Helper()
		before, deadline := found(), time.Now().Add(5*time.Second)
		for found() == before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: 5 s of back-to-back requests of a lone client and no read found its request spinning (in vain: %d)", what, ts.m.SpinSlept.Load())
			}
			pings(50)
		}
	}
	pingsUntilFound("alone")

	// A new connection is admitted and served while the lone client goes
	// on: the spinning reads let the poller run.
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if i == 100000 {
				done <- errors.New("100000 requests and the new connection was not served")
				return
			}
			a.nc.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := io.WriteString(a.nc, "PING\n"); err != nil {
				done <- err
				return
			}
			if l, err := a.br.ReadString('\n'); err != nil || l != "PONG\n" {
				done <- errors.Join(err, errors.New("reply "+l))
				return
			}
		}
	}()
	b := dial(t, ts.addr)
	b.expect("PING\n", "PONG")
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("the lone client while another connected: %v", err)
	}

	// Two connections open: nobody spins.
	before := found()
	pings(300)
	if n := found() - before; n != 0 {
		t.Errorf("with a second connection open, %d reads spun and found their request; want none", n)
	}

	// Alone again: spinning resumes.
	b.nc.Close()
	shmtest.CheckFor(t, 5*time.Second, "the closed connection was still counted", func() bool { return ts.m.Connections.Load() == 1 })
	pingsUntilFound("alone again")

	// A client that pauses costs one vain spin, not one per request.
	beforeFound, beforeSlept := found(), ts.m.SpinSlept.Load()
	for range 20 {
		time.Sleep(5 * time.Millisecond)
		pings(1)
	}
	if n := found() - beforeFound; n != 0 {
		t.Errorf("20 requests 5ms apart with a 1ms spin: %d found spinning, want none", n)
	}
	if n := ts.m.SpinSlept.Load() - beforeSlept; n > 2 {
		t.Errorf("20 requests 5ms apart: %d reads spun in vain, want at most 2 (the client is cold after one)", n)
	}
}

// TestBusyPollTLS checks that a lone TLS client's reads spin too: the
// host reads TLS records through the raw connection underneath.
func TestBusyPollTLS(t *testing.T) {
	t.Parallel()
	cert, err := certs.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{BusyPoll: time.Millisecond}, nil,
		&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	pin, err := certs.PinnedConfig(certs.Fingerprint(cert.Certificate[0]))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", ts.addr, pin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	a := &tconn{t: t, nc: nc, br: bufio.NewReader(nc)}
	if a.meta = a.line(); !strings.HasPrefix(a.meta, "{") {
		t.Fatalf("first line %q, want the metadata line", a.meta)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.m.SpinFound.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("5 s of back-to-back requests over TLS and no read found its request spinning (in vain: %d)", ts.m.SpinSlept.Load())
		}
		for range 50 {
			a.expect("PING\n", "PONG")
		}
	}
}

// BenchmarkBusyPoll measures a lone client's PING round trip with busy
// polling (the host's default spin, 50 µs) and without, side by side in
// one run, and reports how many of the host's reads per request spun and
// found the next request and how many spun in vain. TestBusyPoll checks
// when the host spins; what the spin buys is this benchmark's figure
// (docs/PERFORMANCE.md), never a pass mark on a shared machine.
func BenchmarkBusyPoll(b *testing.B) {
	for _, bp := range []time.Duration{DefaultBusyPoll, 0} {
		b.Run("busy-poll="+bp.String(), func(b *testing.B) {
			ts := startServing(b, Config{BusyPoll: bp}, nil, nil, false)
			c := dial(b, ts.addr)
			for range 1000 { // warm: the policy learns the client sends back to back
				c.expect("PING\n", "PONG")
			}
			found, slept := ts.m.SpinFound.Load(), ts.m.SpinSlept.Load()
			c.nc.SetDeadline(time.Now().Add(10 * time.Minute)) // a wedged host fails the run, not hangs it
			b.ResetTimer()
			for range b.N {
				if _, err := io.WriteString(c.nc, "PING\n"); err != nil {
					b.Fatal(err)
				}
				if l, err := c.br.ReadString('\n'); err != nil || l != "PONG\n" {
					b.Fatalf("PING: %q, %v", l, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(ts.m.SpinFound.Load()-found)/float64(b.N), "found/op")
			b.ReportMetric(float64(ts.m.SpinSlept.Load()-slept)/float64(b.N), "vain/op")
		})
	}
}
