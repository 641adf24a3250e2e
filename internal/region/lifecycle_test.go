package region_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestRebootVoidsOwners makes the control block look adopted in an
// earlier boot, with a lock held and a lease running for an hour: the
// owner (its slot lock gone with that boot) is dead, Recover takes the
// lock back and records this boot.
func TestRebootVoidsOwners(t *testing.T) {
	nr := newNamedRegion(t, region.Raw, 4096)
	if nr.r.Rebooted() {
		t.Fatal("Rebooted on a block formatted in this boot")
	}
	for i := 32; i < 48; i++ {
		nr.ctl[i] ^= 0x5a // another boot's id
	}
	if !nr.r.Rebooted() {
		t.Fatal("Rebooted = false with another boot's id")
	}
	putU64(nr.ctl[ctlLock:], deadOwner(3))
	putU64(nr.ctl[ctlLease:], 3<<40|(1<<40-1)) // ends in 35 years, on that boot's clock
	ok, err := nr.r.Recover()
	if err != nil || !ok {
		t.Fatalf("Recover after a reboot = %v, %v; want true", ok, err)
	}
	if nr.r.Rebooted() {
		t.Fatal("Recover did not record this boot's id")
	}
	if _, err := nr.r.Write([]byte("after reboot"), region.WriteOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpoint writes a checkpoint, tears the data object as a power
// loss might, and restores it: the region holds the checkpoint's whole
// value again, at a version past the old one. A damaged checkpoint is
// refused.
func TestCheckpoint(t *testing.T) {
	nr := newNamedRegion(t, region.Raw, 1<<16)
	buf := make([]byte, 1<<16)
	if _, err := nr.r.Write(crashValue(buf, region.Raw, 5), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.data.ckpt")
	v, _, err := nr.r.WriteCheckpoint(path, nil)
	if err != nil || v != 1 {
		t.Fatalf("WriteCheckpoint = %d, %v", v, err)
	}
	copy(nr.data[100:], crashValue(make([]byte, 1<<10), region.Raw, 9)) // torn
	was, now, err := nr.r.RestoreCheckpoint(path)
	if err != nil || was != 1 || now != 2 {
		t.Fatalf("RestoreCheckpoint = %d, %d, %v; want 1, 2", was, now, err)
	}
	got, _, _ := nr.r.AppendContent(nil)
	if !bytes.Equal(got, crashValue(buf, region.Raw, 5)) {
		t.Fatalf("content after restore: %s", describeValue(got, crashValue(buf, region.Raw, 5)))
	}
	if _, _, err := region.ReadCheckpoint(filepath.Join(t.TempDir(), "none")); !errors.Is(err, region.ErrNoCheckpoint) {
		t.Fatalf("ReadCheckpoint of no file = %v, want ErrNoCheckpoint", err)
	}
	b, _ := readFile(path)
	b[30] ^= 1
	writeFile(t, path, b)
	if _, _, err := region.ReadCheckpoint(path); !errors.Is(err, region.ErrCorrupt) {
		t.Fatalf("ReadCheckpoint of a damaged file = %v, want ErrCorrupt", err)
	}
}

// TestLockWaitStops: a writer waiting for the lock, or for the offset-0
// flag of a program outside shmgr, stops when its stop channel closes,
// not at the end of its timeout.
func TestLockWaitStops(t *testing.T) {
	for _, tt := range []struct {
		name string
		hold func(t *testing.T, nr *namedRegion)
	}{
		{"holder=lease", func(t *testing.T, nr *namedRegion) {
			other := nr.attach(t)
			if _, err := other.Acquire(time.Second, 30*time.Second, nil, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"holder=outside-flag", func(t *testing.T, nr *namedRegion) { nr.data[0] = 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nr := newNamedRegion(t, region.UTF8, 4096)
			tt.hold(t, nr)
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				_, err := nr.r.Write([]byte("x"), region.WriteOptions{Timeout: time.Minute, Stop: stop})
				done <- err
			}()
			shmtest.CheckFor(t, 20*time.Second, "the write never waited for the lock", func() bool { return nr.r.LockWaiters() == 1 })
			close(stop)
			select {
			case err := <-done:
				if !errors.Is(err, region.ErrStopped) {
					t.Fatalf("Write after stop = %v, want ErrStopped", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Write still waiting 20s after its stop channel closed (timeout 1m)")
			}
		})
	}
}

// TestLeaseCap: leases past MaxLease are refused, as the host refuses
// them over TCP.
func TestLeaseCap(t *testing.T) {
	r, _, _ := tempRegion(t, region.Raw, 64)
	if _, err := r.Acquire(time.Second, region.MaxLease+time.Millisecond, nil, nil); !errors.Is(err, region.ErrLeaseTooLong) {
		t.Fatalf("Acquire past MaxLease = %v, want ErrLeaseTooLong", err)
	}
	tok, err := r.Acquire(time.Second, region.MaxLease, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Renew(tok, time.Hour); !errors.Is(err, region.ErrLeaseTooLong) {
		t.Fatalf("Renew past MaxLease = %v, want ErrLeaseTooLong", err)
	}
	if err := r.Release(tok); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptLengthOneSentinel: every path that meets a length field past
// the region's end reports ErrCorrupt, which also matches ErrOutOfRange
// (what crosses the wire).
func TestCorruptLengthOneSentinel(t *testing.T) {
	r, data, _ := tempRegion(t, region.UTF8, 4096)
	putU32(data[region.LenOffset:], 1<<31)
	_, _, rerr := r.AppendContent(nil)
	_, werr := r.WriteAt(0, []byte("x"), region.WriteOptions{Timeout: time.Second})
	_, uerr := r.Update(region.WriteOptions{Timeout: time.Second}, func(cur []byte) ([]byte, error) { return nil, nil })
	for name, err := range map[string]error{"read": rerr, "WriteAt": werr, "Update": uerr} {
		if !errors.Is(err, region.ErrCorrupt) || !errors.Is(err, region.ErrOutOfRange) || errors.Is(err, region.ErrBadControl) {
			t.Errorf("%s of a corrupt length field = %v, want ErrCorrupt (and ErrOutOfRange)", name, err)
		}
	}
}

// TestNoSlotLeft: with every owner slot held by a live mapping, Attach
// says so; closing one frees its slot for the next.
func TestNoSlotLeft(t *testing.T) {
	nr := newNamedRegion(t, region.Raw, 64)
	var last *region.Region
	for i := 1; i < region.NumSlots; i++ {
		last = nr.attach(t)
	}
	if _, err := region.Attach(nr.data, nr.ctl, nr.path); !errors.Is(err, region.ErrNoSlot) {
		t.Fatalf("Attach with all %d slots held = %v, want ErrNoSlot", region.NumSlots, err)
	}
	slot := last.Slot()
	last.Close()
	r := nr.attach(t)
	if r.Slot() != slot {
		t.Fatalf("Attach after a Close took slot %d, want the freed slot %d", r.Slot(), slot)
	}
	if _, err := r.Write([]byte("x"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestLockWaiters: LockWaiters counts a write while it waits for the
// lock (behind a lease of another Region, behind a goroutine of this
// process at the gate, behind a program outside shmgr's flag) and stops
// counting it once it has written.
func TestLockWaiters(t *testing.T) {
	nr := newNamedRegion(t, region.UTF8, 4096)
	other := nr.attach(t)
	token, err := other.Acquire(time.Second, 30*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := nr.r.LockWaiters(); n != 0 {
		t.Fatalf("LockWaiters with nobody waiting = %d, want 0", n)
	}
	done := make(chan error, 2)
	for range 2 { // one waits for the lock word, one at the gate behind it
		go func() {
			_, err := nr.r.Write([]byte("x"), region.WriteOptions{Timeout: time.Minute})
			done <- err
		}()
	}
	shmtest.CheckFor(t, 20*time.Second, "two writes behind a lease: LockWaiters never reached 2", func() bool { return nr.r.LockWaiters() == 2 })
	if err := other.Release(token); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("Write after the lease was released = %v", err)
		}
	}
	if n := nr.r.LockWaiters(); n != 0 {
		t.Fatalf("LockWaiters after both writes = %d, want 0", n)
	}

	nr.data[0] = 1 // a program outside shmgr holds the offset-0 flag
	go func() {
		_, err := nr.r.Write([]byte("y"), region.WriteOptions{Timeout: time.Minute})
		done <- err
	}()
	shmtest.CheckFor(t, 20*time.Second, "a write behind an outside program's flag: LockWaiters never reached 1", func() bool { return nr.r.LockWaiters() == 1 })
	nr.data[0] = 0
	if err := <-done; err != nil {
		t.Fatalf("Write after the flag was cleared = %v", err)
	}
	if n := nr.r.LockWaiters(); n != 0 {
		t.Fatalf("LockWaiters after the write = %d, want 0", n)
	}
}
