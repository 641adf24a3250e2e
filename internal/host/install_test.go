package host_test

import (
	"bytes"
	"testing"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
)

// TestInstall: a region installed at a version has exactly that content
// and version, replaces the region of that shm_id (the default one too),
// survives a restart, and the next write moves it on by one.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	h := openHost(t, dir)
	old, err := h.Create("r", host.CreateOptions{Size: 4096, Layout: region.Raw})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id      string
		o       host.CreateOptions
		content string
		version uint64
	}{
		{"r", host.CreateOptions{Size: 8192, Layout: region.Raw}, "raw bytes", 41},
		{"default", host.CreateOptions{}, "héllo", 7},
		{"fresh", host.CreateOptions{Size: 4096}, "", 0},
	} {
		r, err := h.Install(tc.id, tc.o, []byte(tc.content), tc.version)
		if err != nil {
			t.Fatalf("install %s: %v", tc.id, err)
		}
		got := read(t, r)
		if tc.o.Layout == region.Raw {
			got = got[:len(tc.content)]
		}
		if got != tc.content || r.Info().Version != tc.version {
			t.Fatalf("%s: got %q at %d, want %q at %d", tc.id, got, r.Info().Version, tc.content, tc.version)
		}
		if v := write(t, r, tc.content); v != tc.version+1 {
			t.Fatalf("%s: the write after install made version %d, want %d", tc.id, v, tc.version+1)
		}
	}
	if !old.Gone() {
		t.Fatal("the replaced region is not gone")
	}
	if r, _ := h.Get("r"); r.Info().Size != 8192 {
		t.Fatalf("r is %d bytes after install, want 8192", r.Info().Size)
	}
	h.Close()
	h2 := openHost(t, dir)
	r, err := h2.Get("r")
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	r.Do(func(rr *region.Region) error { b, _, err = rr.AppendContent(nil); return err })
	if !bytes.HasPrefix(b, []byte("raw bytes")) || r.Info().Version != 42 {
		t.Fatalf("after a restart r holds %q at %d, want raw bytes at 42", b[:9], r.Info().Version)
	}
}
