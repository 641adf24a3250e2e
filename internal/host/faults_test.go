package host_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/registry"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmtest"
)

// blockSave makes the next registry saves in dir fail: a directory
// stands where the temporary file's rename would put the registry...
// which atomicfile cannot replace, so Save fails and the old file is
// untouched. It returns a function that undoes it.
func blockSave(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, registry.FileName)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.RemoveAll(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCreateDeleteAllOrNothing: a create or delete whose registry save
// fails changes nothing: no region, no object, no entry; the region that
// was to be deleted keeps its content.
func TestCreateDeleteAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	h := openHost(t, dir)
	keep, err := h.Create("keep", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, keep, "precious")
	before := len(h.List())

	unblock := blockSave(t, dir)
	if _, err := h.Create("new", host.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("Create with a failing save = %v, want an error saying nothing changed", err)
	}
	if _, err := h.Get("new"); !errors.Is(err, host.ErrNotFound) {
		t.Errorf("Get(new) after a refused create = %v, want ErrNotFound", err)
	}
	if err := h.Delete("keep"); err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("Delete with a failing save = %v, want an error saying nothing changed", err)
	}
	if got := read(t, keep); got != "precious" {
		t.Errorf("region after a refused delete = %q, want its content kept", got)
	}
	if n := len(h.List()); n != before {
		t.Errorf("%d regions after refused create and delete, want %d", n, before)
	}
	unblock()

	// The refused create left no object behind: the same id can be
	// created now, and the refused delete can be done.
	if _, err := h.Create("new", host.CreateOptions{}); err != nil {
		t.Errorf("Create(new) once saves work: %v", err)
	}
	in := keep.Info()
	if err := h.Delete("keep"); err != nil {
		t.Fatalf("Delete(keep) once saves work: %v", err)
	}
	if ok, _ := shm.Exists(in.OSName); ok {
		t.Errorf("object %s still there after the delete", in.OSName)
	}
}

// TestRestoreVanishedObject: a region's objects removed behind the
// host's back are made again from its mapping within seconds, and what
// is written after that survives a restart.
func TestRestoreVanishedObject(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("removes objects from /dev/shm by hand: Linux only")
	}
	dir := t.TempDir()
	cfg := host.DefaultConfig(dir)
	cfg.CheckEvery = 20 * time.Millisecond
	var logged shmtest.Buffer
	cfg.Logf = func(f string, a ...any) { logged.Write([]byte(strings.TrimSpace(sprintf(f, a...)) + "\n")) }
	h, _, err := host.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmtest.CloseHost(t, h) })
	r, err := h.Create("notes", host.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, r, "before")
	in := r.Info()
	// A writer keeps going while the objects vanish and come back (for
	// -race: the restore swaps the mapping under it).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.Do(func(rr *region.Region) error {
				_, err := rr.Write([]byte("before"), region.WriteOptions{})
				return err
			}); err != nil {
				t.Errorf("write during the restore: %v", err)
				return
			}
		}
	})
	for _, tt := range []struct{ name, rm string }{{"data", in.OSName}, {"ctl", in.CtlName}} {
		if err := shm.Remove(tt.rm); err != nil {
			t.Fatal(err)
		}
		shmtest.CheckFor(t, 5*time.Second, tt.name+": object "+tt.rm+" not restored", func() bool {
			ok, _ := shm.Exists(tt.rm)
			return ok
		})
	}
	close(stop)
	wg.Wait()
	// The check logs what it did once it has done it: the object is back
	// a moment before the line is written.
	shmtest.CheckFor(t, 5*time.Second, "the log lacks the restore", func() bool {
		return strings.Contains(logged.String(), "removed behind the host's back: restored")
	})
	if got := read(t, r); got != "before" {
		t.Errorf("content after restore = %q, want %q", got, "before")
	}
	// An object that cannot be restored (a directory squats its name)
	// refuses writes, loudly, until it can.
	squat := "/dev/shm/" + in.OSName
	if err := shm.Remove(in.OSName); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(squat, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(squat) })
	writeErr := func() error {
		return r.DoWrite(func(rr *region.Region) error {
			_, err := rr.Write([]byte("refused?"), region.WriteOptions{})
			return err
		})
	}
	shmtest.CheckFor(t, 5*time.Second, "writes not refused while the object cannot be restored", func() bool {
		return errors.Is(writeErr(), host.ErrVanished)
	})
	// Likewise, a write can be refused a moment before the line is
	// written.
	shmtest.CheckFor(t, 5*time.Second, "the log lacks the refusal", func() bool {
		return strings.Contains(logged.String(), "writes are refused until it succeeds")
	})
	// Writes made before the host noticed went into its mapping; reads
	// go on.
	if got := read(t, r); got != "before" && got != "refused?" {
		t.Errorf("read while writes are refused = %q, want the last write acknowledged", got)
	}
	if err := os.Remove(squat); err != nil {
		t.Fatal(err)
	}
	shmtest.CheckFor(t, 5*time.Second, "writes still refused after the object could be restored", func() bool {
		return writeErr() == nil
	})
	write(t, r, "after")
	v := r.Info().Version
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h2, report, err := host.Open(host.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmtest.CloseHost(t, h2) })
	if len(report) != 0 {
		t.Errorf("restart after a restore reported %q, want nothing to repair", report)
	}
	r2, err := h2.Get("notes")
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, r2); got != "after" || r2.Info().Version != v {
		t.Errorf("after restart: %q at version %d, want %q at %d", got, r2.Info().Version, "after", v)
	}
}

// TestLockGiven: a host opened with a lock taken beforehand owns it; a
// second lock on the directory is refused until the host closes.
func TestLockGiven(t *testing.T) {
	dir := t.TempDir()
	l, err := host.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.LockDir(dir); !errors.Is(err, host.ErrBusy) {
		t.Fatalf("second LockDir = %v, want ErrBusy", err)
	}
	cfg := host.DefaultConfig(dir)
	cfg.Lock = l
	h, _, err := host.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shmtest.CloseHost(t, h)
	l2, err := host.LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after the host closed: %v", err)
	}
	l2.Close()
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }
