package client_test

import (
	"bytes"
	"testing"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestHostRestart checks that content outlives a host restart: the
// regions stay in place and the restarted host re-adopts them.
func TestHostRestart(t *testing.T) {
	regions := []struct {
		id   string
		o    client.CreateOptions
		want []byte
	}{
		{id: "default", want: []byte("kept across the restart")},
		{id: "raw", o: client.CreateOptions{Size: 8, Layout: "raw"}, want: []byte("8 bytes!")},
		{id: "durable", o: client.CreateOptions{Size: 128, Durable: true}, want: []byte("kept in a file")},
	}
	for _, mode := range modes {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			h := shmtest.StartHost(t)
			c := connect(t, h.Addr, mode)
			versions := map[string]uint64{}
			before := map[string]*client.Region{}
			for _, rg := range regions {
				if rg.id != "default" {
					create(t, c, rg.id, rg.o)
				}
				r := dial(t, h.Addr, rg.id, mode)
				v, err := r.Write(t.Context(), rg.want)
				if err != nil {
					t.Fatalf("Write(%q): %v", rg.id, err)
				}
				versions[rg.id] = v
				before[rg.id] = r
			}

			h.Stop(t)
			h.Restart(t)

			for _, rg := range regions {
				r := dial(t, h.Addr, rg.id, mode)
				got, v := readVersion(t, r)
				if !bytes.Equal(got, rg.want) || v != versions[rg.id] {
					t.Errorf("after restart: ReadVersion(%q) = %q, %d, want %q, %d", rg.id, got, v, rg.want, versions[rg.id])
				}

				// A Region dialed before the restart keeps working: a mapping
				// is still the same memory, and a dropped connection is
				// re-dialled by the next request.
				old := before[rg.id]
				got, v, err := old.ReadVersion(t.Context())
				if err != nil || !bytes.Equal(got, rg.want) || v != versions[rg.id] {
					t.Errorf("after restart: ReadVersion(%q) on a Region dialed before = %q, %d, %v, want %q, %d", rg.id, got, v, err, rg.want, versions[rg.id])
				}
			}
		})
	}
}
