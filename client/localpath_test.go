package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestMappedRegionIgnoresHangingRequest checks that a mapped region's
// reads and writes never wait for the network: a request on the same
// Conn holds the Conn's request lock for as long as its reply is missing
// (and across redials and backoff), and the mapping must keep working
// meanwhile. The proxy passes the PING to the host and drops the answer,
// so the PING hangs until its context ends; the mapped Write and Read must
// return while it still hangs.
func TestMappedRegionIgnoresHangingRequest(t *testing.T) {
	const id = "localpath-hang"
	create(t, connect(t, hostAddr, client.ModeTCP), id, client.CreateOptions{Size: 64})
	p := shmtest.StartFaultProxy(t, hostAddr)
	c := connect(t, p.Addr(), client.ModeLocal)
	r, err := c.Open(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.Mode() != client.ModeLocal {
		t.Fatalf("Open(%q).Mode() = %v, want local (%s)", id, r.Mode(), r.WhyNotLocal())
	}

	p.Blackhole(shmtest.ToClient, true)
	sent := p.Relayed(shmtest.ToHost)
	// A context that can only be cancelled: cancelling it interrupts the
	// PING (RequestTimeout, 30 s by default, bounds it otherwise).
	pingCtx, cancelPing := context.WithCancel(t.Context())
	defer cancelPing()
	var pingErr error // set before pingDone closes
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		pingErr = c.Ping(pingCtx)
	}()
	t.Cleanup(func() { cancelPing(); <-pingDone })
	shmtest.CheckFor(t, 10*time.Second, "the PING never reached the host", func() bool {
		return p.Relayed(shmtest.ToHost) > sent
	})
	// From here the PING holds the Conn's request lock until pingCtx ends.

	want := []byte("written while a request hangs")
	v, err := r.Write(t.Context(), want)
	if err != nil {
		t.Fatalf("mapped Write while a PING hangs: %v", err)
	}
	got, gv, err := r.ReadVersion(t.Context())
	if err != nil || !bytes.Equal(got, want) || gv != v {
		t.Fatalf("mapped ReadVersion while a PING hangs = %q, %d, %v, want %q at version %d", got, gv, err, want, v)
	}
	select {
	case <-pingDone:
		t.Fatalf("BUG: the PING ended (%v) before the mapped Write and Read returned: they waited for the request on the network (Conn.mu) instead of using the mapping", pingErr)
	default:
	}

	cancelPing()
	<-pingDone
	if !errors.Is(pingErr, context.Canceled) {
		t.Errorf("the hanging PING, cancelled: %v, want context.Canceled", pingErr)
	}
}
