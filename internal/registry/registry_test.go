package registry_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/registry"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tab, ok, err := registry.Load(dir)
	if err != nil || ok {
		t.Fatalf("Load(empty) = %v, %v; want a fresh table", ok, err)
	}
	if len(tab.Instance) != 8 {
		t.Fatalf("Instance = %q", tab.Instance)
	}
	tab.Default = "default"
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tab.Put(registry.Entry{ID: "default", OSName: tab.Prefix() + "a", CtlName: tab.Prefix() + "a-c", Size: 4096, Layout: "utf8", Nonce: 7, Created: created, Version: 3})
	tab.Put(registry.Entry{ID: "big", OSName: tab.Prefix() + "b", CtlName: tab.Prefix() + "b-c", Size: 1 << 20, Layout: "raw", Durable: true, Created: created})
	if err := tab.Save(dir); err != nil {
		t.Fatal(err)
	}
	// A crash during an earlier save leaves a temp file: Load removes it.
	stale := filepath.Join(dir, ".registry-123")
	os.WriteFile(stale, []byte("{partial"), 0o600)

	got, ok, err := registry.Load(dir)
	if err != nil || !ok {
		t.Fatalf("Load = %v, %v", ok, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file not removed: %v", err)
	}
	if got.Instance != tab.Instance || got.Default != "default" || got.Len() != 2 {
		t.Fatalf("loaded %+v", got)
	}
	e, ok := got.Get("default")
	if !ok || e.Size != 4096 || e.Version != 3 || !e.Created.Equal(created) || e.Nonce != 7 {
		t.Fatalf("entry = %+v", e)
	}
	if ids := got.Entries(); ids[0].ID != "big" || ids[1].ID != "default" {
		t.Fatalf("Entries not sorted: %v, %v", ids[0].ID, ids[1].ID)
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"not-json", "{", "not valid JSON"},
		{"format", `{"format":9,"instance":"abcdabcd"}`, "format 9"},
		{"instance", `{"format":1,"instance":"x"}`, "bad instance"},
		{"entry", `{"format":1,"instance":"abcdabcd","regions":[{"id":"a"}]}`, "incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, registry.FileName), []byte(tt.content), 0o600)
			_, _, err := registry.Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
