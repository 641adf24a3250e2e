package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestShutdownBounded: once its context ends, Shutdown closes what is
// left and returns ctx.Err(), even while a connection's goroutine is stuck
// in a call that closing its socket cannot interrupt (here a log function
// blocked on a full pipe, as a host's stderr can be). Wait then reports
// when that goroutine has ended.
func TestShutdownBounded(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var once, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	ts := startServer(t, Config{Debugf: func(string, ...any) {
		once.Do(func() { close(entered) })
		<-release
	}}, nil, nil)
	t.Cleanup(unblock) // before the server's cleanup shuts it down
	// A plain dial: the metadata line comes only after the blocked log call.
	nc, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection's goroutine never logged its opening")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Shutdown(ctx) with a 50ms deadline has not returned after 10s: it waits for a stuck connection goroutine without bound")
		unblock()
		<-done
	}

	waited := make(chan struct{})
	go func() { ts.srv.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Error("Wait returned while a connection goroutine is still blocked")
	default:
	}
	unblock()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait has not returned 10s after the stuck goroutine was released")
	}
}
