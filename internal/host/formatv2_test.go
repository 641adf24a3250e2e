//go:build unix

package host_test

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// putFormat1 overwrites the default region's objects with the format-1
// fixture that a format-1 writer left half written (internal/region's
// testdata, made by the format-1 code), under the region's own nonce.
func putFormat1(t *testing.T, in host.Info, pid uint32) {
	t.Helper()
	data, err := os.ReadFile("../region/testdata/format1/utf8-midwrite.data")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := os.ReadFile("../region/testdata/format1/utf8-midwrite.ctl")
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := hex.DecodeString(in.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		ctl[24+i] = nonce[7-i] // little-endian
	}
	if pid != 0 {
		w := binary.LittleEndian.Uint64(ctl[128:])
		binary.LittleEndian.PutUint64(ctl[128:], w&^(1<<32-1)|uint64(pid))
	}
	for _, o := range []struct {
		name string
		b    []byte
	}{{in.OSName, data}, {in.CtlName, ctl}} {
		m, err := shm.Open(o.name, int64(len(o.b)))
		if err != nil {
			t.Fatal(err)
		}
		copy(m.Bytes(), o.b)
		m.Close()
	}
}

// TestHostAdoptsFormat1: a host started on a format-1 control block (a
// write killed half done by a format-1 process) upgrades it in place,
// rolls the write back, says so, and serves the region; with a live
// format-1 process holding the lock it refuses to start and says what to
// do.
func TestHostAdoptsFormat1(t *testing.T) {
	t.Run("owner=dead", func(t *testing.T) {
		dir := t.TempDir()
		in := defaultInfo(t, dir)
		putFormat1(t, in, 0)
		h2, report, err := host.Open(host.DefaultConfig(dir))
		if err != nil {
			t.Fatalf("host on a format-1 block: %v", err)
		}
		t.Cleanup(func() { shmtest.CloseHost(t, h2) })
		if s := strings.Join(report, "\n"); !strings.Contains(s, "upgraded its control block to format 2 (an interrupted write was rolled back)") {
			t.Errorf("report = %q, want the upgrade and the rollback", s)
		}
		def2, _ := h2.Default()
		if got := read(t, def2); got != "written by format 1" {
			t.Fatalf("content after the upgrade = %q, want the last committed one", got)
		}
		write(t, def2, "format 2")
		if got := read(t, def2); got != "format 2" {
			t.Fatalf("content = %q", got)
		}
	})
	t.Run("owner=live", func(t *testing.T) {
		dir := t.TempDir()
		in := defaultInfo(t, dir)
		t.Cleanup(func() { shm.Remove(in.OSName); shm.Remove(in.CtlName) })
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Skip("no sleep binary:", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		putFormat1(t, in, uint32(cmd.Process.Pid))
		h2, _, err := host.Open(host.DefaultConfig(dir))
		if err == nil {
			shmtest.CloseHost(t, h2)
			t.Fatal("host started on a format-1 block a live format-1 process holds")
		}
		if !strings.Contains(err.Error(), "stop the older shmgr") {
			t.Fatalf("error = %v, want it to say to stop the older shmgr", err)
		}
	})
}

// TestDurableRegionAfterPowerLoss: a durable region's data file torn as a
// power loss may leave it, in a boot after the one it was adopted in,
// comes back holding its last checkpoint, whole.
func TestDurableRegionAfterPowerLoss(t *testing.T) {
	dir := t.TempDir()
	h, _, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Create("keep", host.CreateOptions{Size: 4096, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	write(t, d, strings.Repeat("committed ", 300))
	in := d.Info()
	if err := h.Close(); err != nil { // a clean stop checkpoints
		t.Fatal(err)
	}
	if _, err := os.Stat(region.CheckpointPath(in.OSName)); err != nil {
		t.Fatalf("no checkpoint beside the data file: %v", err)
	}
	// The power goes: half of a later write reached the disk, and the
	// machine boots again (another boot id).
	f, err := os.OpenFile(in.OSName, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(strings.Repeat("TORN", 256)), 1024)
	f.Close()
	ctl, err := os.ReadFile(in.CtlName)
	if err != nil {
		t.Fatal(err)
	}
	for i := 32; i < 48; i++ {
		ctl[i] ^= 0xa5
	}
	if err := os.WriteFile(in.CtlName, ctl, 0o600); err != nil {
		t.Fatal(err)
	}
	h2, report, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmtest.CloseHost(t, h2) })
	if s := strings.Join(report, "\n"); !strings.Contains(s, "restored the checkpoint of version 1") {
		t.Errorf("report = %q, want the checkpoint restored", s)
	}
	d2, err := h2.Get("keep")
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, d2); got != strings.Repeat("committed ", 300) {
		t.Fatalf("content after the power loss = %q..., want the committed value", got[:min(len(got), 60)])
	}
}

// defaultInfo opens a host on dir, which makes its default region, and
// closes it again, leaving the region's objects in place; it returns the
// region's info.
func defaultInfo(t *testing.T, dir string) host.Info {
	t.Helper()
	h, _, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := h.Default()
	in := def.Info()
	h.Close()
	return in
}
