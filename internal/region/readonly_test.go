package region_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestAttachReadOnly: a Region over a data object mapped read-only reads
// and watches, refuses every write, and a read that finds a write in
// progress for longer than its optimistic tries waits for it instead of
// taking the lock (which for utf8 stores the offset-0 flag into the data
// object: a fault on this mapping).
func TestAttachReadOnly(t *testing.T) {
	nr := newNamedRegion(t, region.UTF8, 4096)
	if _, err := nr.r.Write([]byte("hello"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := shm.Open(nr.name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	if err := data.SetReadOnly(); err != nil {
		t.Fatal(err)
	}
	ro, err := region.AttachReadOnly(data.Bytes(), nr.ctl, nr.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	if !ro.ReadOnly() || nr.r.ReadOnly() {
		t.Errorf("ReadOnly() = %v, %v; want true for AttachReadOnly, false for Attach", ro.ReadOnly(), nr.r.ReadOnly())
	}
	if got := content(t, ro); got != "hello" {
		t.Errorf("read-only read = %q, want hello", got)
	}
	if _, err := ro.Write([]byte("x"), region.WriteOptions{}); !errors.Is(err, region.ErrReadOnly) {
		t.Errorf("Write on a read-only Region: %v, want ErrReadOnly", err)
	}
	if _, err := ro.WriteAt(0, []byte("x"), region.WriteOptions{}); !errors.Is(err, region.ErrReadOnly) {
		t.Errorf("WriteAt on a read-only Region: %v, want ErrReadOnly", err)
	}
	if _, err := ro.Acquire(time.Second, time.Second, nil, nil); !errors.Is(err, region.ErrReadOnly) {
		t.Errorf("Acquire on a read-only Region: %v, want ErrReadOnly", err)
	}
	if _, err := ro.Recover(); !errors.Is(err, region.ErrReadOnly) {
		t.Errorf("Recover on a read-only Region: %v, want ErrReadOnly", err)
	}

	// A write in progress (seq odd, lock free, as a writer that died
	// leaves it): the read-only reader waits for it to end.
	var seqOff int
	for _, f := range region.ByteMap {
		if f.Field == "seq" {
			seqOff = f.Offset
		}
	}
	seq := (*atomic.Uint64)(unsafe.Pointer(&nr.ctl[seqOff]))
	s := seq.Load()
	seq.Store(s + 1)
	type result struct {
		b   []byte
		v   uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, v, err := ro.AppendContent(nil)
		done <- result{b, v, err}
	}()
	if shmtest.Poll(200*time.Millisecond, func() bool { return len(done) > 0 }) {
		t.Fatalf("a read-only read returned during a write in progress: %+v", <-done)
	}
	if st := nr.r.LockState(); st.Held {
		t.Errorf("the read-only reader took the lock: %+v", st)
	}
	seq.Store(s + 2)
	var res result
	select {
	case res = <-done:
	case <-time.After(region.DefaultTimeout):
		t.Fatal("the read-only reader did not finish once the write ended")
	}
	if res.err != nil || string(res.b) != "hello" || res.v != (s+2)/2 {
		t.Errorf("read after the write ended = %q, %d, %v; want hello, %d", res.b, res.v, res.err, (s+2)/2)
	}
}
