package region_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
)

// tempRegion creates a real shared-memory region (data object and control
// block) and removes both when the test ends.
func tempRegion(t testing.TB, l region.Layout, size int64) (*region.Region, []byte, []byte) {
	t.Helper()
	nr := newNamedRegion(t, l, size)
	return nr.r, nr.data, nr.ctl
}

// namedRegion is a test region with the OS names of its objects.
type namedRegion struct {
	name      string // data object; the control block is name+"-c"
	path      string // the control block's path, for its slot locks
	r         *region.Region
	data, ctl []byte
	attached  []*region.Region // closed at cleanup
}

// newNamedRegion creates a region, keeping its names, and removes both
// objects when the test ends.
func newNamedRegion(t testing.TB, l region.Layout, size int64) *namedRegion {
	t.Helper()
	return newBoundedRegion(t, l, size, 0)
}

// newBoundedRegion is newNamedRegion with a max write (0: the whole
// size): its control block's undo area holds maxWrite bytes.
func newBoundedRegion(t testing.TB, l region.Layout, size, maxWrite int64) *namedRegion {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "shmgrcrash-" + hex.EncodeToString(b[:])
	data, err := shm.Create(name, size, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := shm.Create(name+"-c", region.CtlSize(size, maxWrite), 0o600)
	if err != nil {
		data.Close()
		shm.Remove(name)
		t.Fatal(err)
	}
	nr := &namedRegion{name: name, data: data.Bytes(), ctl: ctl.Bytes(), path: ctl.Path()}
	t.Cleanup(func() {
		for _, r := range nr.attached {
			r.Close()
		}
		data.Close()
		ctl.Close()
		shm.Remove(name)
		shm.Remove(name + "-c")
		region.RemoveLocks(nr.path)
	})
	if err := region.Format(data.Bytes(), ctl.Bytes(), l, maxWrite, 7, 0); err != nil {
		t.Fatal(err)
	}
	nr.r = nr.attach(t)
	return nr
}

// attach maps the region once more in this process, as another Region
// with its own owner slot (closed when the test ends).
func (nr *namedRegion) attach(t testing.TB) *region.Region {
	t.Helper()
	r, err := region.Attach(nr.data, nr.ctl, nr.path)
	if err != nil {
		t.Fatal(err)
	}
	nr.attached = append(nr.attached, r)
	return r
}

func content(t testing.TB, r *region.Region) string {
	t.Helper()
	b, _, err := r.AppendContent(nil)
	if err != nil {
		t.Fatalf("AppendContent: %v", err)
	}
	return string(b)
}

func TestDocumentedLayoutBytes(t *testing.T) {
	r, data, _ := tempRegion(t, region.UTF8, region.DefaultSize)
	if got := r.MaxContent(); got != 4091 {
		t.Fatalf("MaxContent = %d, want 4091", got)
	}
	v, err := r.Write([]byte("héllo"), region.WriteOptions{})
	if err != nil || v != 1 {
		t.Fatalf("Write = %d, %v; want 1, nil", v, err)
	}
	if data[0] != 0 {
		t.Errorf("lock flag = %d after write, want 0", data[0])
	}
	if n := binary.LittleEndian.Uint32(data[1:5]); n != 6 {
		t.Errorf("length field = %d, want 6", n)
	}
	if got := string(data[5:11]); got != "héllo" {
		t.Errorf("data = %q, want %q", got, "héllo")
	}
}

func TestWriteValidation(t *testing.T) {
	tests := []struct {
		name    string
		layout  region.Layout
		size    int64
		content []byte
		wantErr error
	}{
		{"utf8/empty", region.UTF8, 4096, nil, nil},
		{"utf8/max", region.UTF8, 4096, bytes.Repeat([]byte("a"), 4091), nil},
		{"utf8/over", region.UTF8, 4096, bytes.Repeat([]byte("a"), 4092), region.ErrTooLarge},
		{"utf8/invalid", region.UTF8, 4096, []byte{'a', 0xff, 'b'}, region.ErrInvalidUTF8},
		{"utf8/truncated-rune", region.UTF8, 4096, []byte("é")[:1], region.ErrInvalidUTF8},
		{"utf8/nul-ok", region.UTF8, 4096, []byte("a\x00b\nc"), nil},
		{"raw/full", region.Raw, 100, bytes.Repeat([]byte{0xff}, 100), nil},
		{"raw/over", region.Raw, 100, make([]byte, 101), region.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := tempRegion(t, tt.layout, tt.size)
			before := []byte("before")
			if _, err := r.Write(before, region.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			v0 := r.Version()
			_, err := r.Write(tt.content, region.WriteOptions{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Write err = %v, want %v", err, tt.wantErr)
			}
			got, _, _ := r.AppendContent(nil)
			if tt.wantErr != nil {
				if r.Version() != v0 {
					t.Errorf("version moved to %d on a refused write", r.Version())
				}
				if !bytes.HasPrefix(got, before) {
					t.Errorf("content = %q after refused write, want it unchanged", got)
				}
				return
			}
			if tt.layout == region.UTF8 && !bytes.Equal(got, tt.content) {
				t.Errorf("content = %q, want %q", got, tt.content)
			}
		})
	}
}

func TestRangesAndConditional(t *testing.T) {
	r, _, _ := tempRegion(t, region.UTF8, 64)
	if _, err := r.Write([]byte("hello world"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteAt(6, []byte("WORLD!!"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := content(t, r); got != "hello WORLD!!" {
		t.Fatalf("content = %q", got)
	}
	got, _, err := r.AppendRange(nil, 6, 5)
	if err != nil || string(got) != "WORLD" {
		t.Fatalf("AppendRange = %q, %v", got, err)
	}
	if _, _, err := r.AppendRange(nil, 100, 1); !errors.Is(err, region.ErrOutOfRange) {
		t.Fatalf("AppendRange past end err = %v", err)
	}
	if _, err := r.WriteAt(20, []byte("x"), region.WriteOptions{}); !errors.Is(err, region.ErrOutOfRange) {
		t.Fatalf("WriteAt past end err = %v", err)
	}
	if _, err := r.Write([]byte("é"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteAt(1, []byte("x"), region.WriteOptions{}); !errors.Is(err, region.ErrInvalidUTF8) {
		t.Fatalf("WriteAt splitting a rune err = %v", err)
	}
	v := r.Version()
	var ce *region.ConflictError
	if _, err := r.Write([]byte("x"), region.WriteOptions{Conditional: true, IfVersion: v - 1}); !errors.As(err, &ce) || ce.Current != v {
		t.Fatalf("conditional write on stale version err = %v", err)
	}
	if nv, err := r.Write([]byte("x"), region.WriteOptions{Conditional: true, IfVersion: v}); err != nil || nv != v+1 {
		t.Fatalf("conditional write = %d, %v", nv, err)
	}

	raw, _, _ := tempRegion(t, region.Raw, 16)
	if _, err := raw.WriteAt(12, []byte{1, 2, 3, 4}, region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.WriteAt(13, []byte{1, 2, 3, 4}, region.WriteOptions{}); !errors.Is(err, region.ErrOutOfRange) {
		t.Fatalf("raw WriteAt past end err = %v", err)
	}
	got, _, _ = raw.AppendRange(nil, 12, 4)
	if !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Fatalf("raw range = %v", got)
	}
}

func TestLockTimeoutNamesOwner(t *testing.T) {
	nr := newNamedRegion(t, region.UTF8, 4096)
	// Another mapping of the region, in this process, with a slot of its
	// own: a live owner the kernel vouches for.
	other := nr.attach(t)
	other.SetLabel("other writer")
	token, err := other.Acquire(time.Second, 10*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release(token)
	_, err = nr.r.Write([]byte("x"), region.WriteOptions{Timeout: 50 * time.Millisecond})
	var lt *region.LockTimeoutError
	if !errors.As(err, &lt) || lt.PID != uint32(os.Getpid()) || !strings.Contains(err.Error(), "other writer") {
		t.Fatalf("err = %v, want a lock timeout naming pid %d (other writer)", err, os.Getpid())
	}
	if info := nr.r.LockState(); !info.Held || info.PID != uint32(os.Getpid()) {
		t.Fatalf("LockState = %+v", info)
	}
}

// deadOwner returns a lock word naming owner slot 100 (which no process
// holds) at epoch 1: the lock of a dead process.
func deadOwner(gen uint64) uint64 { return 101 | 1<<8 | gen<<32 }

func TestRecoverInterruptedWrite(t *testing.T) {
	r, data, ctl := tempRegion(t, region.UTF8, 4096)
	if _, err := r.Write([]byte("old content"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	v := r.Version()
	// Simulate a writer that died after step 5 of a write: undo log valid,
	// seq odd, half of the new bytes written, flag set and recorded as its.
	copy(ctl[4096:], data[1:5+11])
	binary.LittleEndian.PutUint64(ctl[200:], 1)
	binary.LittleEndian.PutUint64(ctl[208:], 4+11)
	binary.LittleEndian.PutUint32(ctl[192:], 1)
	binary.LittleEndian.PutUint64(ctl[64:], v*2+1)
	binary.LittleEndian.PutUint64(ctl[ctlLock:], deadOwner(50))
	binary.LittleEndian.PutUint64(ctl[ctlFlagBy:], deadOwner(50))
	data[0] = 1
	binary.LittleEndian.PutUint32(data[1:], 20)
	copy(data[5:], "NEW CONT")

	ok, err := r.Recover()
	if err != nil || !ok {
		t.Fatalf("Recover = %v, %v; want true", ok, err)
	}
	if got := content(t, r); got != "old content" {
		t.Fatalf("content after recovery = %q, want the old content", got)
	}
	if r.Version() != v+1 {
		t.Errorf("version = %d, want %d (moved past the interrupted write)", r.Version(), v+1)
	}
	if data[0] != 0 || r.LockState().Held {
		t.Errorf("lock still held after recovery: %+v", r.LockState())
	}
	// A committed write whose owner died before unlocking keeps the new content.
	if _, err := r.Write([]byte("committed"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(ctl[ctlLock:], deadOwner(60))
	binary.LittleEndian.PutUint64(ctl[ctlFlagBy:], deadOwner(60))
	data[0] = 1
	if _, err := r.Write([]byte("next"), region.WriteOptions{Timeout: time.Second}); err != nil {
		t.Fatalf("write after dead owner: %v", err)
	}
	if got := content(t, r); got != "next" {
		t.Fatalf("content = %q", got)
	}
}

// TestRecoverLeavesForeignFlag: a shmgr writer that died while it waited
// for a program outside shmgr holding the offset-0 flag must not take
// that program's flag away (recovery used to clear it).
func TestRecoverLeavesForeignFlag(t *testing.T) {
	r, data, ctl := tempRegion(t, region.UTF8, 4096)
	data[0] = 1 // the outside program's flag
	binary.LittleEndian.PutUint64(ctl[ctlLock:], deadOwner(7))
	binary.LittleEndian.PutUint64(ctl[ctlFlagBy:], deadOwner(7)|1<<63) // it waited for it
	ok, err := r.Recover()
	if err != nil || !ok {
		t.Fatalf("Recover = %v, %v; want true", ok, err)
	}
	if data[0] != 1 {
		t.Fatalf("offset-0 flag = %d after Recover, want 1: the outside program still holds it", data[0])
	}
	_, err = r.Write([]byte("x"), region.WriteOptions{Timeout: 20 * time.Millisecond})
	var lt *region.LockTimeoutError
	if !errors.As(err, &lt) || lt.PID != 0 {
		t.Fatalf("Write while the outside program holds the flag = %v, want a timeout on the flag", err)
	}
	data[0] = 0
	if _, err := r.Write([]byte("x"), region.WriteOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
}

func TestForeignFlagHonoured(t *testing.T) {
	r, data, _ := tempRegion(t, region.UTF8, 4096)
	data[0] = 1 // a program outside shmgr holds the documented lock
	_, err := r.Write([]byte("x"), region.WriteOptions{Timeout: 30 * time.Millisecond})
	var lt *region.LockTimeoutError
	if !errors.As(err, &lt) || lt.PID != 0 {
		t.Fatalf("err = %v, want a timeout on the offset-0 flag", err)
	}
	if r.LockState().Held != true {
		t.Error("LockState does not report the foreign flag")
	}
	data[0] = 0
	if _, err := r.Write([]byte("x"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestNoTornReads races writers against readers: every value written is
// one letter repeated with its own length, so a torn copy is detectable.
func TestNoTornReads(t *testing.T) {
	r, _, _ := tempRegion(t, region.UTF8, 4096)
	const writes = 20000
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 0, 4091)
			for i := 0; i < writes/2; i++ {
				n := 1 + (i*37+w*11)%4091
				c := byte('a' + (i+w)%26)
				buf = buf[:n]
				for j := range buf {
					buf[j] = c
				}
				if _, err := r.Write(buf, region.WriteOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	var readers sync.WaitGroup
	for g := 0; g < 2; g++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 0, 4096)
			for {
				select {
				case <-done:
					return
				default:
				}
				b, _, err := r.AppendContent(buf[:0])
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range b {
					if c != b[0] {
						t.Errorf("torn read: %d bytes mixing %q and %q", len(b), b[0], c)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if v := r.Version(); v != writes {
		t.Fatalf("version = %d after %d writes", v, writes)
	}
}

func TestUpdateNoLostIncrement(t *testing.T) {
	r, _, _ := tempRegion(t, region.Raw, 8)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				_, err := r.Update(region.WriteOptions{}, func(cur []byte) ([]byte, error) {
					var next [8]byte
					binary.LittleEndian.PutUint64(next[:], binary.LittleEndian.Uint64(cur)+1)
					return next[:], nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b, _, _ := r.AppendContent(nil)
	if got := binary.LittleEndian.Uint64(b); got != 8000 {
		t.Fatalf("counter = %d, want 8000", got)
	}
}

func TestAttachRejectsMismatch(t *testing.T) {
	_, data, ctl := tempRegion(t, region.UTF8, 4096)
	if _, err := region.Attach(data[:100], ctl, "/dev/null"); !errors.Is(err, region.ErrBadControl) {
		t.Fatalf("Attach with wrong data size err = %v", err)
	}
	bad := make([]byte, len(ctl))
	if _, err := region.Attach(data, bad, "/dev/null"); !errors.Is(err, region.ErrBadControl) {
		t.Fatalf("Attach without magic err = %v", err)
	}
}

func BenchmarkRead4K(b *testing.B) {
	r, _, _ := tempRegion(b, region.UTF8, 4096)
	r.Write(bytes.Repeat([]byte("x"), 4091), region.WriteOptions{})
	buf := make([]byte, 0, 4096)
	b.SetBytes(4091)
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = r.AppendContent(buf[:0])
	}
}

func BenchmarkWrite4K(b *testing.B) {
	r, _, _ := tempRegion(b, region.UTF8, 4096)
	p := bytes.Repeat([]byte("x"), 4091)
	b.SetBytes(4091)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Write(p, region.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemcpy4K(b *testing.B) {
	src := bytes.Repeat([]byte("x"), 4091)
	dst := make([]byte, 4096)
	b.SetBytes(4091)
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, src)
	}
}

func TestWaitChangeWakesOnCommit(t *testing.T) {
	r, _, _ := tempRegion(t, region.UTF8, 4096)
	seen := r.WatchSeq()
	if got := r.WaitChange(seen, 10*time.Millisecond); got != seen {
		t.Fatalf("WaitChange with no commit = %d, want %d (timeout)", got, seen)
	}
	woke := make(chan uint32)
	go func() { woke <- r.WaitChange(seen, 10*time.Second) }()
	if _, err := r.Write([]byte("x"), region.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-woke:
		if got == seen {
			t.Fatalf("WaitChange returned the old word %d", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by a commit within 5s")
	}
}

// TestBoundedUndo checks a region created with a max write smaller than
// its size: the control block records the capacity and is sized by it,
// and every write path refuses a write the undo area cannot hold before
// touching anything, with ErrTooLarge and a message naming the limit.
func TestBoundedUndo(t *testing.T) {
	const size, maxWrite = 1 << 16, 1000
	nr := newBoundedRegion(t, region.Raw, size, maxWrite)
	r := nr.r
	if got := int64(len(nr.ctl)); got != region.HeaderSize+maxWrite+8 || got != region.CtlSize(size, maxWrite) {
		t.Fatalf("control block is %d bytes, want %d", got, region.HeaderSize+maxWrite+8)
	}
	if got := binary.LittleEndian.Uint64(nr.ctl[224:]); got != maxWrite {
		t.Fatalf("undo capacity field = %d, want %d", got, maxWrite)
	}
	if r.MaxWrite() != maxWrite {
		t.Fatalf("MaxWrite = %d", r.MaxWrite())
	}
	fill := bytes.Repeat([]byte{7}, maxWrite)
	if _, err := r.WriteAt(size-maxWrite, fill, region.WriteOptions{}); err != nil {
		t.Fatalf("WriteAt of exactly max write: %v", err)
	}
	before, v0, _ := r.AppendContent(nil)
	undoBefore := append([]byte(nil), nr.ctl[region.HeaderSize:]...)
	over := make([]byte, maxWrite+1)
	token, err := r.Acquire(time.Second, time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(token)
	fenced := region.WriteOptions{Fenced: true, Fence: token}
	tests := []struct {
		name  string
		write func() error
	}{
		{"Write", func() error { _, err := r.Write(over, region.WriteOptions{Timeout: time.Millisecond}); return err }},
		{"WriteAt", func() error {
			_, err := r.WriteAt(0, over, region.WriteOptions{Timeout: time.Millisecond})
			return err
		}},
		{"Write/fenced", func() error { _, err := r.Write(over, fenced); return err }},
		{"WriteAt/fenced", func() error { _, err := r.WriteAt(5, over, fenced); return err }},
		{"Update/fenced", func() error {
			_, err := r.Update(fenced, func(cur []byte) ([]byte, error) { return cur[:maxWrite+1], nil })
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if !errors.Is(err, region.ErrTooLarge) || !strings.Contains(err.Error(), "max write is 1000 bytes") || !strings.Contains(err.Error(), "--max-write") {
				t.Fatalf("err = %v, want ErrTooLarge naming the max write and --max-write", err)
			}
			got, v, _ := r.AppendContent(nil)
			if v != v0 || !bytes.Equal(got, before) {
				t.Errorf("a refused write changed the region: version %d (was %d)", v, v0)
			}
			if !bytes.Equal(nr.ctl[region.HeaderSize:], undoBefore) {
				t.Errorf("a refused write touched the undo area")
			}
		})
	}
	// A fenced write within the limit still works under the same lease.
	if _, err := r.WriteAt(0, fill, fenced); err != nil {
		t.Fatalf("fenced WriteAt of max write: %v", err)
	}
}

// TestMaxWriteChecks is the table of max writes a region accepts.
func TestMaxWriteChecks(t *testing.T) {
	tests := []struct {
		layout    region.Layout
		size, max int64
		ok        bool
	}{
		{region.Raw, 100, 0, true},
		{region.Raw, 100, 1, true},
		{region.Raw, 100, 100, true},
		{region.Raw, 100, 101, false},
		{region.Raw, 100, -1, false},
		{region.UTF8, 100, 0, true},
		{region.UTF8, 100, 50, false},
	}
	for _, tt := range tests {
		err := region.CheckMaxWrite(tt.layout, tt.size, tt.max)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, region.ErrBadSize) {
			t.Errorf("CheckMaxWrite(%v, %d, %d) = %v, want ok=%v", tt.layout, tt.size, tt.max, err, tt.ok)
		}
	}
	for _, c := range []struct{ size, max, want int64 }{{100, 0, 100}, {100, 10, 10}, {100, 100, 100}} {
		if got := region.CtlSize(c.size, c.max); got != region.HeaderSize+c.want+8 {
			t.Errorf("CtlSize(%d, %d) = %d, want %d", c.size, c.max, got, region.HeaderSize+c.want+8)
		}
		if got := region.Footprint(c.size, c.max); got != c.size+region.CtlSize(c.size, c.max) {
			t.Errorf("Footprint(%d, %d) = %d", c.size, c.max, got)
		}
	}
}

// TestBadUndoCapacity checks that a control block whose recorded undo
// capacity disagrees with its size (or is past the data) is refused,
// never misread, and that 0 (blocks made before the field) means the
// whole region.
func TestBadUndoCapacity(t *testing.T) {
	nr := newNamedRegion(t, region.Raw, 4096)
	for _, c := range []struct {
		val uint64
		ok  bool
	}{{0, true}, {4096, true}, {4097, false}, {100, false}, {1 << 63, false}} {
		binary.LittleEndian.PutUint64(nr.ctl[224:], c.val)
		r, err := region.Attach(nr.data, nr.ctl, nr.path)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, region.ErrBadControl) {
			t.Errorf("undo capacity %d: Attach err = %v, want ok=%v", c.val, err, c.ok)
		}
		if err == nil {
			if r.MaxWrite() != 4096 {
				t.Errorf("undo capacity %d: MaxWrite = %d, want 4096", c.val, r.MaxWrite())
			}
			r.Close()
		}
	}
	binary.LittleEndian.PutUint64(nr.ctl[224:], 4096)
}

// BenchmarkWriteAtRaw4K is a 4 KiB WriteAt into a raw region, the path
// whose max write check is new (compare with the same benchmark before).
func BenchmarkWriteAtRaw4K(b *testing.B) {
	r, _, _ := tempRegion(b, region.Raw, 1<<16)
	p := bytes.Repeat([]byte("x"), 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.WriteAt(4096, p, region.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
