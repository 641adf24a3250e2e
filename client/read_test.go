package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestReadOptions: ReadWith, AppendReadWith and ReadAtWith, plain and
// Consistent, mapped and over TCP, on a single host and on a one-node
// cluster's host (which sends its writes through the log and answers the
// barrier): each returns what was last written, at its version.
func TestReadOptions(t *testing.T) {
	hosts := map[string]*shmtest.Host{"single": shmtest.StartHost(t, "--quiet")}
	raft := shmtest.FreeAddr(t)
	hosts["cluster"] = shmtest.StartHost(t, "--quiet", "--node", "a", "--peers", "a="+raft)
	for name, h := range hosts {
		for _, mode := range []client.Mode{client.ModeLocal, client.ModeTCP} {
			t.Run(fmt.Sprintf("host=%s/mode=%v", name, mode), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				r := dial(t, h.Addr, "", mode)
				// The one-node cluster may still be electing itself.
				shmtest.CheckFor(t, 30*time.Second, "no write accepted", func() bool {
					_, err := r.Write(ctx, []byte("warm-up"))
					return err == nil
				})
				for i := range 3 {
					want := fmt.Sprintf("%s %v write %d", name, mode, i)
					v, err := r.Write(ctx, []byte(want))
					if err != nil {
						t.Fatal(err)
					}
					for _, o := range []client.ReadOptions{{}, {Consistent: true}} {
						b, got, err := r.ReadWith(ctx, o)
						if err != nil || string(b) != want || got != v {
							t.Errorf("ReadWith(%+v) = %q, %d, %v; want %q, %d", o, b, got, err, want, v)
						}
						buf := make([]byte, 0, 64)
						b, got, err = r.AppendReadWith(ctx, append(buf, "> "...), o)
						if err != nil || string(b) != "> "+want || got != v {
							t.Errorf("AppendReadWith(%+v) = %q, %d, %v; want %q, %d", o, b, got, err, "> "+want, v)
						}
						b, got, err = r.ReadAtWith(ctx, 2, 5, o)
						if err != nil || string(b) != want[2:7] || got != v {
							t.Errorf("ReadAtWith(2, 5, %+v) = %q, %d, %v; want %q, %d", o, b, got, err, want[2:7], v)
						}
					}
				}
			})
		}
	}
}
