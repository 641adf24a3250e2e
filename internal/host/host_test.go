package host_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// openHost opens a host on a fresh data directory and, when the test
// ends, closes it and removes every object it made.
func openHost(t *testing.T, dir string) *host.Host {
	t.Helper()
	return shmtest.OpenHost(t, host.DefaultConfig(dir))
}

// write commits s to r and returns the new version.
func write(t *testing.T, r *host.Region, s string) uint64 {
	t.Helper()
	var v uint64
	if err := r.Do(func(rr *region.Region) (err error) {
		v, err = rr.Write([]byte(s), region.WriteOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func read(t *testing.T, r *host.Region) string {
	t.Helper()
	var b []byte
	if err := r.Do(func(rr *region.Region) (err error) {
		b, _, err = rr.AppendContent(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRestartAdoptsRegions(t *testing.T) {
	dir := t.TempDir()
	h, report, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(report) != 0 {
		t.Fatalf("first start report = %q, want nothing to repair", report)
	}
	def, _ := h.Default()
	write(t, def, "hello")
	big, err := h.Create("big", host.CreateOptions{Size: 1 << 20, Layout: region.Raw})
	if err != nil {
		t.Fatal(err)
	}
	dur, err := h.Create("keep", host.CreateOptions{Size: 100, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	write(t, dur, "durable")
	bigInfo := big.Info()
	defInfo := def.Info()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	h2 := openHost(t, dir)
	def2, err := h2.Get("default")
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, def2); got != "hello" {
		t.Errorf("default content after restart = %q", got)
	}
	if in := def2.Info(); in.OSName != defInfo.OSName || in.Version != 1 || in.Nonce != defInfo.Nonce {
		t.Errorf("default info after restart = %+v, want os_name %s version 1", in, defInfo.OSName)
	}
	if b, _ := h2.Get("big"); b == nil || b.Info().OSName != bigInfo.OSName {
		t.Errorf("big region not re-adopted")
	}
	if d, _ := h2.Get("keep"); d == nil || read(t, d) != "durable" {
		t.Errorf("durable region lost")
	}
}

// TestRestartKeepsMaxWrite creates a raw region with a small max write
// and restarts the host: whether it re-adopts both objects, rebuilds a
// lost control block or recreates both, the control block keeps the
// undo capacity the region was created with (its size follows from it),
// and a write over the limit is still refused.
func TestRestartKeepsMaxWrite(t *testing.T) {
	const size, maxWrite = 1 << 20, 4096
	for _, lose := range []string{"nothing", "control block", "both objects"} {
		t.Run("lose="+lose, func(t *testing.T) {
			dir := t.TempDir()
			h, _, err := host.Open(host.DefaultConfig(dir))
			if err != nil {
				t.Fatal(err)
			}
			r, err := h.Create("frames", host.CreateOptions{Size: size, Layout: region.Raw, MaxWrite: maxWrite})
			if err != nil {
				t.Fatal(err)
			}
			in := r.Info()
			if in.MaxWrite != maxWrite || in.Footprint != size+4096+maxWrite+8 {
				t.Fatalf("info: max_write %d footprint %d, want %d and %d", in.MaxWrite, in.Footprint, maxWrite, size+4096+maxWrite+8)
			}
			if err := r.Do(func(rr *region.Region) error {
				_, err := rr.WriteAt(size-maxWrite, []byte("last chunk"), region.WriteOptions{})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			switch lose {
			case "control block":
				shm.Remove(in.CtlName)
			case "both objects":
				shm.Remove(in.CtlName)
				shm.Remove(in.OSName)
			}

			h2, report, err := host.Open(host.DefaultConfig(dir))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { shmtest.CloseHost(t, h2) })
			if lose == "nothing" && len(report) != 0 {
				t.Errorf("restart report = %q, want nothing to repair", report)
			}
			r2, err := h2.Get("frames")
			if err != nil {
				t.Fatal(err)
			}
			if got := r2.Info(); got.MaxWrite != maxWrite || got.Footprint != in.Footprint {
				t.Errorf("after restart: max_write %d footprint %d, want %d and %d", got.MaxWrite, got.Footprint, maxWrite, in.Footprint)
			}
			ctl, err := shm.Open(in.CtlName, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n := int64(len(ctl.Bytes())); n != region.CtlSize(size, maxWrite) {
				t.Errorf("control block is %d bytes after restart, want %d", n, region.CtlSize(size, maxWrite))
			}
			ctl.Close()
			err = r2.Do(func(rr *region.Region) error {
				if rr.MaxWrite() != maxWrite {
					t.Errorf("region's MaxWrite = %d after restart", rr.MaxWrite())
				}
				_, err := rr.WriteAt(0, make([]byte, maxWrite+1), region.WriteOptions{})
				return err
			})
			if !errors.Is(err, region.ErrTooLarge) {
				t.Errorf("write over max write after restart: err = %v, want ErrTooLarge", err)
			}
			want := "last chunk"
			if lose == "both objects" {
				want = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
			}
			var got []byte
			if err := r2.Do(func(rr *region.Region) (err error) {
				got, _, err = rr.AppendRange(nil, size-maxWrite, 10)
				return err
			}); err != nil || string(got) != want {
				t.Errorf("content after restart = %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestVanishedAndOrphans(t *testing.T) {
	dir := t.TempDir()
	h, _, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := h.Default()
	write(t, def, "one")
	write(t, def, "two")
	in := def.Info()
	h.Close()
	// A reboot clears /dev/shm; an orphan with the host's prefix appears.
	shm.Remove(in.OSName)
	shm.Remove(in.CtlName)
	prefix := in.OSName[:len("shmgr-")+9]
	orphan := prefix + "ffffffffff"
	m, err := shm.Create(orphan, 64, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	quarantined := host.QuarantinePrefix + strings.TrimPrefix(orphan, "shmgr-")
	t.Cleanup(func() { shm.Remove(orphan); shm.Remove(quarantined) })

	h2, report, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmtest.CloseHost(t, h2) })
	joined := strings.Join(report, "\n")
	if !strings.Contains(joined, "recreated region \"default\"") || !strings.Contains(joined, "quarantined orphan object "+orphan) {
		t.Fatalf("report = %q", report)
	}
	def2, _ := h2.Default()
	if v := def2.Info().Version; v <= 2 {
		t.Errorf("version after recreate = %d, want more than the last recorded 2", v)
	}
	if _, err := shm.Open(orphan, 64); !errors.Is(err, shm.ErrNotFound) {
		t.Errorf("orphan still there: %v", err)
	}
	if m, err := shm.Open(quarantined, 64); err != nil {
		t.Errorf("orphan not kept as %s: %v", quarantined, err)
	} else {
		m.Close()
	}
}

func TestCreateDeleteErrors(t *testing.T) {
	h := openHost(t, t.TempDir())
	tests := []struct {
		id   string
		o    host.CreateOptions
		want error
	}{
		{"default", host.CreateOptions{}, host.ErrExists},
		{"bad id!", host.CreateOptions{}, host.ErrBadID},
		{"", host.CreateOptions{}, host.ErrBadID},
		{"-x", host.CreateOptions{}, host.ErrBadID},
		{"tiny", host.CreateOptions{Size: 5}, region.ErrBadSize},
		{"mw-utf8", host.CreateOptions{Size: 4096, MaxWrite: 100}, region.ErrBadSize},
		{"mw-over", host.CreateOptions{Size: 4096, Layout: region.Raw, MaxWrite: 4097}, region.ErrBadSize},
		{"mw-minus", host.CreateOptions{Size: 4096, Layout: region.Raw, MaxWrite: -1}, region.ErrBadSize},
		{"mw-durable", host.CreateOptions{Size: 4096, Layout: region.Raw, MaxWrite: 100, Durable: true}, region.ErrBadSize},
	}
	for _, tt := range tests {
		if _, err := h.Create(tt.id, tt.o); !errors.Is(err, tt.want) {
			t.Errorf("Create(%q) err = %v, want %v", tt.id, err, tt.want)
		}
	}
	if err := h.Delete("default"); !errors.Is(err, host.ErrForbidden) {
		t.Errorf("Delete(default) err = %v", err)
	}
	if err := h.Delete("nope"); !errors.Is(err, host.ErrNotFound) {
		t.Errorf("Delete(nope) err = %v", err)
	}
	r, err := h.Create("x", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name := r.Info().OSName
	if err := h.Delete("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Open(name, 4096); !errors.Is(err, shm.ErrNotFound) {
		t.Errorf("object survived Delete: %v", err)
	}
	if err := r.Do(func(*region.Region) error { return nil }); !errors.Is(err, host.ErrNotFound) {
		t.Errorf("Do on deleted region err = %v", err)
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	openHost(t, dir)
	if _, _, err := host.Open(host.DefaultConfig(dir)); !errors.Is(err, host.ErrBusy) || !strings.Contains(err.Error(), "in use by another host (pid") {
		t.Fatalf("second Open of the same data directory: err = %v, want ErrBusy naming the pid", err)
	}
}
