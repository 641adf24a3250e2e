package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shmgr/shmgr/internal/atomicfile"
)

func TestWriteReplacesAndCleans(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"first", "second, longer than the first"} {
		if err := atomicfile.Write(dir, "f.json", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "f.json"))
		if err != nil || string(got) != content {
			t.Fatalf("after Write(%q): file = %q, %v", content, got, err)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "f.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	// A crash mid-write leaves a temporary file: RemoveTemps clears it and
	// nothing else.
	stale := filepath.Join(dir, ".f-12345")
	other := filepath.Join(dir, ".g-1")
	os.WriteFile(stale, []byte("{partial"), 0o600)
	os.WriteFile(other, []byte("x"), 0o600)
	atomicfile.RemoveTemps(dir, "f.json")
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file survived: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file's temp was removed: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("dir holds %d entries, want f.json and .g-1", len(ents))
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	if err := atomicfile.Write(dir, "f.json", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time there is nothing to remove
		if err := atomicfile.Remove(dir, "f.json"); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "f.json")); !os.IsNotExist(err) {
			t.Fatalf("after Remove, Stat = %v, want not-exist", err)
		}
	}
}
