package registry_test

import (
	"errors"
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
	tab.Put(registry.Entry{ID: "big", OSName: tab.Prefix() + "b", CtlName: tab.Prefix() + "b-c", Size: 1 << 20, Layout: "raw", Durable: true, Nonce: 9, Created: created})
	tab.Put(registry.Entry{ID: "frames", OSName: tab.Prefix() + "f", CtlName: tab.Prefix() + "f-c", Size: 1 << 20, Layout: "raw", MaxWrite: 4096, Nonce: 11, Created: created})
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
	if got.Instance != tab.Instance || got.Default != "default" || got.Len() != 3 {
		t.Fatalf("loaded %+v", got)
	}
	e, ok := got.Get("default")
	if !ok || e.Size != 4096 || e.Version != 3 || !e.Created.Equal(created) || e.Nonce != 7 {
		t.Fatalf("entry = %+v", e)
	}
	if f, _ := got.Get("frames"); f.MaxWrite != 4096 {
		t.Errorf("max write of frames = %d after a round trip, want 4096", f.MaxWrite)
	}
	if e.MaxWrite != 0 {
		t.Errorf("max write of default = %d, want 0 (the whole size)", e.MaxWrite)
	}
	if ids := got.Entries(); ids[0].ID != "big" || ids[1].ID != "default" {
		t.Fatalf("Entries not sorted: %v, %v", ids[0].ID, ids[1].ID)
	}
}

// TestLoadRejectsIncomplete: a registry that is not JSON, or does not
// name its regions completely, is refused with ErrInvalid and left in
// place: the host must not start from it and treat every region as an
// orphan.
func TestLoadRejectsIncomplete(t *testing.T) {
	const ent = `{"id":"default","os_name":"shmgr-abcdabcd-1","ctl_name":"shmgr-abcdabcd-1-c","size":4096,"layout":"utf8","nonce":5}`
	tests := []struct{ name, content, want string }{
		{"empty", "", "not valid JSON"},
		{"garbage", "\x00\xff garbage", "not valid JSON"},
		{"truncated", `{"format":1,"instance":"abcdabcd","default":"default","regions":[` + ent[:40], "not valid JSON"},
		{"array", `[]`, "not valid JSON"},
		{"regions-object", `{"format":1,"instance":"abcdabcd","default":"default","regions":{}}`, "not valid JSON"},
		{"size-string", `{"format":1,"instance":"abcdabcd","default":"default","regions":[{"id":"default","size":"4096"}]}`, "not valid JSON"},
		{"format", `{"format":9,"instance":"abcdabcd"}`, "format 9"},
		{"format-missing", `{"instance":"abcdabcd","default":"default","regions":[` + ent + `]}`, "format 0"},
		{"instance", `{"format":1,"instance":"x"}`, "bad instance"},
		{"instance-not-hex", `{"format":1,"instance":"zzzzzzzz","default":"default","regions":[` + ent + `]}`, "8 hex digits"},
		{"regions-null", `{"format":1,"instance":"abcdabcd","default":"default","regions":null}`, `"regions" is missing or null`},
		{"regions-missing", `{"format":1,"instance":"abcdabcd","default":"default"}`, `"regions" is missing or null`},
		{"regions-empty", `{"format":1,"instance":"abcdabcd","default":"default","regions":[]}`, `default region "default" is not listed`},
		{"default-missing", `{"format":1,"instance":"abcdabcd","regions":[` + ent + `]}`, `"default" is missing`},
		{"entry-incomplete", `{"format":1,"instance":"abcdabcd","default":"a","regions":[{"id":"a"}]}`, `"os_name" or "ctl_name" is missing`},
		{"entry-no-nonce", `{"format":1,"instance":"abcdabcd","default":"default","regions":[{"id":"default","os_name":"a","ctl_name":"b","size":1,"layout":"raw"}]}`, `"nonce" is missing`},
		{"entry-layout", `{"format":1,"instance":"abcdabcd","default":"default","regions":[{"id":"default","os_name":"a","ctl_name":"b","size":1,"layout":"x","nonce":1}]}`, `"layout" "x"`},
		{"entry-twice", `{"format":1,"instance":"abcdabcd","default":"default","regions":[` + ent + `,` + ent + `]}`, "listed twice"},
	}
	for _, tt := range tests {
		t.Run("file="+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, registry.FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := registry.Load(dir)
			if !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load err = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "move it aside") {
				t.Errorf("Load err = %v, want it to say what to do", err)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("the refused file was changed to %q", b)
			}
		})
	}
}

// TestSaveEmptyTable: a table with no entries is saved with an empty
// list, never null.
func TestSaveEmptyTable(t *testing.T) {
	dir := t.TempDir()
	tab := registry.New()
	if err := tab.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, registry.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"regions": []`) {
		t.Errorf("saved %s, want an empty regions list", b)
	}
}

// FuzzLoad: Load never panics, refuses with ErrInvalid whatever it
// cannot use, and a table it accepts saves and loads back the same.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"format":1,"instance":"abcdabcd","default":"default","regions":[{"id":"default","os_name":"shmgr-abcdabcd-1","ctl_name":"shmgr-abcdabcd-1-c","size":4096,"layout":"utf8","nonce":5,"version":3}]}`))
	f.Add([]byte(`{"format":1,"instance":"abcdabcd","default":"default","regions":null}`))
	f.Add([]byte(`{"format":1,"instance":"abcdabcd","default":"default"}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, registry.FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		tab, ok, err := registry.Load(dir)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Load error %v is not ErrInvalid", err)
			}
			return
		}
		if !ok {
			t.Fatal("Load of an existing file: ok false")
		}
		if _, found := tab.Get(tab.Default); !found {
			t.Fatalf("accepted a table without its default region %q", tab.Default)
		}
		if err := tab.Save(dir); err != nil {
			t.Fatal(err)
		}
		again, _, err := registry.Load(dir)
		if err != nil {
			t.Fatalf("Load after Save: %v", err)
		}
		if again.Instance != tab.Instance || again.Default != tab.Default || again.Len() != tab.Len() {
			t.Fatalf("round trip: %+v, want %+v", again, tab)
		}
		for _, e := range tab.Entries() {
			if g, _ := again.Get(e.ID); g == nil || g.OSName != e.OSName || g.Nonce != e.Nonce || g.Size != e.Size || g.Version != e.Version {
				t.Fatalf("round trip of %q: %+v, want %+v", e.ID, g, e)
			}
		}
	})
}
