package client_test

import (
	"bytes"
	"testing"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/shmtest"
)

func TestModeSelection(t *testing.T) {
	h := shmtest.StartHost(t)
	tests := []struct {
		mode    client.Mode
		want    client.Mode
		wantWhy bool // WhyNotLocal is not empty
	}{
		{mode: client.ModeAuto, want: client.ModeLocal},
		{mode: client.ModeLocal, want: client.ModeLocal},
		{mode: client.ModeTCP, want: client.ModeTCP, wantWhy: true},
	}
	for _, tt := range tests {
		t.Run("mode="+tt.mode.String(), func(t *testing.T) {
			r, err := client.Dial(t.Context(), h.Addr, "", options(tt.mode))
			if err != nil {
				t.Fatalf("Dial(mode=%v): %v", tt.mode, err)
			}
			defer r.Close()
			if got := r.Mode(); got != tt.want {
				t.Errorf("Dial(mode=%v).Mode() = %v, want %v (WhyNotLocal: %q)", tt.mode, got, tt.want, r.WhyNotLocal())
			}
			if why := r.WhyNotLocal(); (why != "") != tt.wantWhy {
				t.Errorf("Dial(mode=%v).WhyNotLocal() = %q, want empty: %v", tt.mode, why, !tt.wantWhy)
			}
			if got, want := r.ID(), "default"; got != want {
				t.Errorf("Dial(mode=%v).ID() = %q, want %q", tt.mode, got, want)
			}
		})
	}
}

// TestModesShareWrites checks that a local mapping and the host's TCP
// view are the same memory: each sees the other's writes at once, with
// the same versions.
func TestModesShareWrites(t *testing.T) {
	h := shmtest.StartHost(t)
	c := connect(t, h.Addr, client.ModeAuto)
	create(t, c, "raw", client.CreateOptions{Size: 32, Layout: "raw"})

	for _, id := range []string{"default", "raw"} {
		t.Run("region="+id, func(t *testing.T) {
			local := dial(t, h.Addr, id, client.ModeLocal)
			remote := dial(t, h.Addr, id, client.ModeTCP)
			if !bytes.Contains([]byte(remote.WhyNotLocal()), []byte("TCP")) {
				t.Errorf("WhyNotLocal() = %q, want it to say TCP was requested", remote.WhyNotLocal())
			}
			size := int(local.MaxContent())
			steps := []struct {
				name    string
				writer  *client.Region
				readers []*client.Region
				content []byte
			}{
				{"local write, tcp read", local, []*client.Region{remote, local}, pad([]byte("written locally"), id, size)},
				{"tcp write, local read", remote, []*client.Region{local, remote}, pad([]byte("written over TCP"), id, size)},
				{"local write again", local, []*client.Region{remote}, pad([]byte("again"), id, size)},
			}
			for _, st := range steps {
				v, err := st.writer.Write(t.Context(), st.content)
				if err != nil {
					t.Fatalf("%s: Write(mode=%v): %v", st.name, st.writer.Mode(), err)
				}
				for _, r := range st.readers {
					got, gotV := readVersion(t, r)
					if !bytes.Equal(got, st.content) || gotV != v {
						t.Errorf("%s: ReadVersion(mode=%v) = %q, %d, want %q, %d", st.name, r.Mode(), got, gotV, st.content, v)
					}
					ver, err := r.Version(t.Context())
					if err != nil || ver != v {
						t.Errorf("%s: Version(mode=%v) = %d, %v, want %d", st.name, r.Mode(), ver, err, v)
					}
				}
			}
		})
	}
}

// pad fills p with zeros to size for a raw region (whose content is always
// the whole object).
func pad(p []byte, id string, size int) []byte {
	if id != "raw" {
		return p
	}
	return append(p, make([]byte, size-len(p))...)
}
