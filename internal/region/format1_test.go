//go:build unix

package region_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
)

// loadFixture copies a format-1 fixture (made by the format-1 code:
// testdata/format1/gen1.go.txt) into a fresh real region's objects.
func loadFixture(t *testing.T, name string, l region.Layout) *namedRegion {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "format1", name+".data"))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := os.ReadFile(filepath.Join("testdata", "format1", name+".ctl"))
	if err != nil {
		t.Fatal(err)
	}
	nr := newNamedRegion(t, l, int64(len(data)))
	for _, r := range nr.attached {
		r.Close()
	}
	nr.attached = nil
	copy(nr.data, data)
	copy(nr.ctl, ctl)
	return nr
}

// TestAdoptFormat1 upgrades real format-1 control blocks in place: a
// committed one, one a dead writer left half written, and one with a dead
// process's lease. Attach refuses format 1 with what to do; after Upgrade
// the region holds the last committed content at a version past the old
// one, the lock is free, and it works.
func TestAdoptFormat1(t *testing.T) {
	tests := []struct {
		name       string
		layout     region.Layout
		rolledBack bool
		want       func([]byte) bool
		version    uint64
	}{
		{"utf8-committed", region.UTF8, false, func(b []byte) bool { return string(b) == "written by format 1" }, 3},
		{"utf8-midwrite", region.UTF8, true, func(b []byte) bool { return string(b) == "written by format 1" }, 4},
		{"raw-lease", region.Raw, false, func(b []byte) bool {
			return string(b[:6]) == "leased" && b[6] == 6 && b[len(b)-1] == 0xff
		}, 12},
	}
	for _, tt := range tests {
		t.Run("fixture="+tt.name, func(t *testing.T) {
			nr := loadFixture(t, tt.name, tt.layout)
			if _, err := region.Attach(nr.data, nr.ctl, nr.path); !errors.Is(err, region.ErrOldFormat) || !errors.Is(err, region.ErrBadControl) {
				t.Fatalf("Attach of a format-1 block = %v, want ErrOldFormat", err)
			}
			rolled, err := region.Upgrade(nr.data, nr.ctl)
			if err != nil || rolled != tt.rolledBack {
				t.Fatalf("Upgrade = %v, %v; want %v, nil", rolled, err, tt.rolledBack)
			}
			if got := string(nr.ctl[:8]); got != region.Magic {
				t.Fatalf("magic after Upgrade = %q", got)
			}
			r := nr.attach(t)
			got, v, err := r.AppendContent(nil)
			if err != nil || !tt.want(got) || v != tt.version {
				t.Fatalf("content after Upgrade = %q (version %d), %v; want the last committed content at version %d", got[:min(len(got), 40)], v, err, tt.version)
			}
			if ls := r.LockState(); ls.Held {
				t.Fatalf("lock held after Upgrade: %+v", ls)
			}
			if tt.layout == region.UTF8 && nr.data[0] != 0 {
				t.Fatalf("offset-0 flag = %d after Upgrade", nr.data[0])
			}
			if again, err := region.Upgrade(nr.data, nr.ctl); err != nil || again {
				t.Fatalf("second Upgrade = %v, %v; want a no-op", again, err)
			}
			nv, err := r.Write([]byte("format 2"), region.WriteOptions{Timeout: timeoutShort})
			if err != nil || nv != v+1 {
				t.Fatalf("Write after Upgrade = %d, %v; want %d", nv, err, v+1)
			}
			tok, err := r.Acquire(timeoutShort, timeoutShort, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if old := binary.LittleEndian.Uint64(nr.ctl[ctlFence:]); tok != old {
				t.Fatalf("token %d, fence word %d", tok, old)
			}
			if err := r.Release(tok); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAdoptFormat1LiveOwner: a format-1 block whose lock a live process
// holds is not upgraded (nothing is changed), and the error says what to
// do.
func TestAdoptFormat1LiveOwner(t *testing.T) {
	nr := loadFixture(t, "utf8-committed", region.UTF8)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	binary.LittleEndian.PutUint64(nr.ctl[ctlLock:], uint64(cmd.Process.Pid)|5<<32)
	before := bytes.Clone(nr.ctl)
	_, err := region.Upgrade(nr.data, nr.ctl)
	if !errors.Is(err, region.ErrOldFormat) || !bytes.Contains([]byte(err.Error()), []byte("stop the older shmgr")) {
		t.Fatalf("Upgrade with a live format-1 owner = %v, want ErrOldFormat saying to stop it", err)
	}
	if !bytes.Equal(before, nr.ctl) {
		t.Fatal("Upgrade changed a control block it refused")
	}
}

// timeoutShort bounds lock waits that must not wait at all.
const timeoutShort = time.Second
