package rawsock_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmgr/shmgr/internal/rawsock"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestReadSpin checks that a spinning Read keeps running (never parked
// on the poller) while it spins, sleeps on the poller once its spin is
// over, still returns the bytes that come after the spin, and still
// honours its deadline. Whether it spins or sleeps is read from its
// goroutine's state, not from CPU time: a spinning process the kernel
// deschedules on a busy machine uses little CPU, but it never parks.
func TestReadSpin(t *testing.T) {
	const wait = 100 * time.Millisecond // how long a spinning Read is watched before the peer writes
	tests := []struct {
		name     string
		spin     time.Duration
		deadline time.Duration // 0: none; else no bytes come
		spins    bool          // the Read keeps running while it waits
		spun     bool          // Spun() after the Read
		found    bool
	}{
		{name: "no spin sleeps", spin: 0},
		{name: "spin over the wait", spin: 5 * time.Second, spins: true, spun: true, found: true},
		{name: "short spin then sleeps", spin: time.Millisecond, spun: true},
		{name: "deadline after a spin", spin: time.Millisecond, deadline: time.Second, spun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pair(t, "tcp")
			sp, ok := server.(rawsock.Spinner)
			if !ok {
				t.Fatalf("Wrap returned %T, not a Spinner", server)
			}
			sp.SetReadSpin(tt.spin)
			if tt.deadline > 0 {
				server.SetReadDeadline(time.Now().Add(tt.deadline))
			}
			buf := make([]byte, 16)
			var n int
			done := make(chan error, 1)
			go func() {
				var err error
				n, err = server.Read(buf)
				done <- err
			}()
			parked := func() bool { return parkedOnSocket("rawsock_test.TestReadSpin") }
			if tt.spins {
				if shmtest.Poll(wait, parked) {
					t.Errorf("Read with a %v spin parked on the poller within %v: it did not spin", tt.spin, wait)
				}
			} else {
				shmtest.CheckFor(t, 10*time.Second, fmt.Sprintf("Read with a %v spin never parked on the poller: it spun when it should sleep", tt.spin), parked)
			}
			if tt.deadline == 0 {
				client.Write([]byte("next"))
			}
			err := <-done
			if tt.deadline > 0 {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("Read = %d, %v; want the deadline's error", n, err)
				}
			} else if err != nil || string(buf[:n]) != "next" {
				t.Fatalf("Read = %q, %v; want \"next\"", buf[:n], err)
			}
			if spun, found := sp.Spun(); spun != tt.spun || found != tt.found {
				t.Errorf("Spun() = %v, %v; want %v, %v", spun, found, tt.spun, tt.found)
			}
		})
	}

	// Bytes already there: no spin.
	server, client := pair(t, "tcp")
	sp := server.(rawsock.Spinner)
	sp.SetReadSpin(time.Second)
	client.Write([]byte("now"))
	shmtest.CheckFor(t, 10*time.Second, "the 3 bytes sent never reached the server's receive queue", func() bool { return inq(t, server) == 3 })
	if n, err := server.Read(make([]byte, 8)); n != 3 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if spun, found := sp.Spun(); spun || found {
		t.Errorf("Read of bytes already there: Spun() = %v, %v; want false, false", spun, found)
	}
}

// inq returns how many bytes wait in c's receive queue (SIOCINQ).
func inq(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("ioctl SIOCINQ: %v", err)
	}
	return n
}
