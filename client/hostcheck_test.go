package client_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestMappedClientSeesHostStop checks that a client whose region is mapped
// (and so sends the host nothing) still tells the truth about the host:
// within seconds of the host stopping, Conn.State, Watcher.State and
// OnState say StateUnreachable while the mapping keeps reading, writing and
// watching; when the host is back they say StateConnected again. It covers
// a graceful stop (SIGTERM) and a crash (SIGKILL).
func TestMappedClientSeesHostStop(t *testing.T) {
	for _, how := range []string{"stop", "kill"} {
		t.Run("by="+how, func(t *testing.T) {
			h := shmtest.StartHost(t)
			var log stateLog
			o := options(client.ModeLocal)
			o.OnState = log.record
			c, err := client.Connect(t.Context(), h.Addr, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			r, err := c.Open(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			if r.Mode() != client.ModeLocal {
				t.Fatalf("Mode() = %v, want local (%s)", r.Mode(), r.WhyNotLocal())
			}
			w, err := r.Watch(t.Context(), client.WatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() })
			if _, err := w.Next(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := c.State(); got != client.StateConnected {
				t.Fatalf("State() with the host up = %v, want connected", got)
			}

			if how == "stop" {
				h.Stop(t)
			} else {
				h.Kill(t)
			}
			shmtest.CheckFor(t, 10*time.Second, "Conn.State() never became host unreachable after the host went", func() bool {
				return c.State() == client.StateUnreachable
			})
			if got := w.State(); got != client.StateUnreachable {
				t.Errorf("Watcher.State() with the host down = %v, want %v", got, client.StateUnreachable)
			}
			if got := log.since(0); !slices.Contains(got, client.StateUnreachable) {
				t.Errorf("OnState was never called with %v (got %v)", client.StateUnreachable, got)
			}
			if got := client.StateUnreachable.String(); got != "host unreachable" {
				t.Errorf("StateUnreachable.String() = %q, want %q", got, "host unreachable")
			}
			// The mapping keeps working while the host is down.
			v, err := r.Write(t.Context(), []byte("written while the host is down"))
			if err != nil {
				t.Fatalf("Write with the host down: %v", err)
			}
			got, gv, err := r.ReadVersion(t.Context())
			if err != nil || !bytes.Equal(got, []byte("written while the host is down")) || gv != v {
				t.Fatalf("ReadVersion with the host down = %q, %d, %v, want the write at version %d", got, gv, err, v)
			}
			ev, err := w.Next(t.Context())
			if err != nil || ev.Version != v {
				t.Fatalf("Watcher.Next with the host down = %d, %v, want version %d", ev.Version, err, v)
			}

			h.Restart(t)
			shmtest.CheckFor(t, 10*time.Second, "Conn.State() never became connected again after the host came back", func() bool {
				return c.State() == client.StateConnected
			})
			if got := w.State(); got != client.StateConnected {
				t.Errorf("Watcher.State() with the host back = %v, want connected", got)
			}
			// The restarted host serves what was written through the mapping.
			if got, _, err := r.ReadVersion(t.Context()); err != nil || string(got) != "written while the host is down" {
				t.Errorf("ReadVersion after the restart = %q, %v", got, err)
			}
			out := h.MustCLI(t, "read")
			if out != "written while the host is down" {
				t.Errorf("shmgr read after the restart = %q", out)
			}
		})
	}
}
