package server

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

func TestReadSpinRule(t *testing.T) {
	t.Parallel()
	const bp = 50 * time.Microsecond
	tests := []struct {
		name       string
		hot        bool
		conns      int32
		sinceSlept time.Duration
		want       time.Duration
	}{
		{"lone hot client", true, 1, 100 * time.Microsecond, bp},
		{"cold client", false, 1, 100 * time.Microsecond, 0},
		{"another connection open", true, 2, 100 * time.Microsecond, 0},
		{"many connections", true, 50, 0, 0},
		{"spun a millisecond without sleeping", true, 1, maxSpinStretch, 0},
		{"just under the stretch", true, 1, maxSpinStretch - time.Microsecond, bp},
	}
	for _, tt := range tests {
		if got := readSpin(bp, tt.hot, tt.conns, tt.sinceSlept); got != tt.want {
			t.Errorf("%s: readSpin(%v, %v, %d, %v) = %v, want %v", tt.name, bp, tt.hot, tt.conns, tt.sinceSlept, got, tt.want)
		}
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

	pings(500)
	if found() == 0 {
		t.Fatalf("500 back-to-back requests of a lone client: no read found its request spinning (slept %d)", ts.m.SpinSlept.Load())
	}

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
	before = found()
	pings(300)
	if found() == before {
		t.Errorf("alone again, 300 back-to-back requests: no read found its request spinning")
	}

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
