package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// fill creates the regions a restart test checks: the default one, a
// utf8 one ("notes") and a durable one ("cfg"), each written at least once.
// It returns the content of each by shm_id.
func fill(t *testing.T, h *shmtest.Host) map[string]string {
	t.Helper()
	h.MustCLI(t, "create", "notes")
	h.MustCLI(t, "create", "cfg", "--durable")
	content := map[string]string{
		"default": "default content " + chinese,
		"notes":   "notes, second version",
		"cfg":     "durable settings",
	}
	h.MustCLI(t, "write", "--id", "notes", "notes, first version")
	for id, c := range content {
		h.MustCLI(t, "write", "--id", id, c)
	}
	return content
}

// sameRegion compares what must survive a restart: the OS names, the
// nonce, the shape and the version.
func sameRegion(t *testing.T, got, want info) {
	t.Helper()
	if got != want {
		t.Errorf("region %s after restart:\n got %+v\nwant %+v", want.ShmID, got, want)
	}
}

// TestRestart stops a host (gracefully, or with SIGKILL) and restarts it
// on the same data directory: the regions come back with the same ids,
// OS names, content and versions, and nothing is reported as repaired.
func TestRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stop func(t *testing.T, h *shmtest.Host)
	}{
		{"sigterm", func(t *testing.T, h *shmtest.Host) { h.Stop(t) }},
		{"sigkill", func(t *testing.T, h *shmtest.Host) { h.Kill(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startHost(t)
			content := fill(t, h)
			before := listRegions(t, h)
			// A client connected while the host stops must not hold it up.
			idle := dialRaw(t, h.Addr)

			tt.stop(t, h)

			idle.deadline()
			if b, err := idle.br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("idle connection after the host stopped: read %q, %v; want EOF", b, err)
			}
			_, errOut, code := h.CLI(t, nil, "read")
			if code != 1 || !strings.Contains(errOut, "no host is listening") {
				t.Errorf("read with the host stopped: exit %d, stderr %q; want 1 and \"no host is listening\"", code, errOut)
			}
			// The regions outlive the host.
			for id, in := range before {
				data, ctl := filepath.Join(shmDir, in.OSName), filepath.Join(shmDir, in.CtlName)
				if in.Durable {
					data, ctl = in.OSName, in.CtlName
				}
				if !exists(t, data) || !exists(t, ctl) {
					t.Errorf("region %s: objects %s and %s should outlive the host", id, data, ctl)
				}
			}
			if tt.name == "sigterm" {
				checkRegistryVersions(t, h.DataDir, before)
			}

			h.Restart(t)

			after := listRegions(t, h)
			if len(after) != len(before) {
				t.Errorf("after restart: %d regions, want %d", len(after), len(before))
			}
			for id, want := range before {
				sameRegion(t, after[id], want)
				for _, mode := range []string{"local", "tcp"} {
					if got := readContent(t, h, id, "--mode", mode); got != content[id] {
						t.Errorf("read --id %s --mode %s after restart = %q, want %q", id, mode, got, content[id])
					}
				}
			}
			for _, bad := range []string{"recreated", "orphan", "rebuilt", "took back"} {
				if strings.Contains(h.Stderr(), bad) {
					t.Errorf("restart reported a repair (%q) when nothing was damaged:\n%s", bad, h.Stderr())
				}
			}
			// Versions go on from where they were.
			var w writeJSON
			cliJSON(t, h, &w, "write", "--id", "notes", "--json", "after restart")
			if want := before["notes"].Version + 1; w.Version == nil || *w.Version != want {
				t.Errorf("first write after restart: version %v, want %d", w.Version, want)
			}
		})
	}
}

// checkRegistryVersions checks that a gracefully stopped host saved every
// region's version in registry.json.
func checkRegistryVersions(t *testing.T, dataDir string, want map[string]info) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		Regions []struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		} `json:"regions"`
	}
	if err := json.Unmarshal(b, &reg); err != nil {
		t.Fatalf("registry.json: %v", err)
	}
	if len(reg.Regions) != len(want) {
		t.Errorf("registry.json has %d regions, want %d", len(reg.Regions), len(want))
	}
	for _, e := range reg.Regions {
		if e.Version != want[e.ID].Version {
			t.Errorf("registry.json: %s at version %d after a graceful stop, want %d", e.ID, e.Version, want[e.ID].Version)
		}
	}
}

// TestRestartAfterReboot removes shared-memory objects while the host is
// stopped, as a reboot does, and plants an orphan object with the host's
// prefix: on restart the host recreates what vanished (reporting it),
// rebuilds a lost control block around surviving content, keeps durable
// regions, and quarantines the orphan (reporting it, content kept).
func TestRestartAfterReboot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// remove picks the objects (names in /dev/shm) to delete.
		remove      func(def, notes info) []string
		wantDefault bool   // the default region keeps its content
		wantNotes   bool   // notes keeps its content
		wantLog     string // what the host logs about notes (%s: its os_name)
	}{
		{
			name:        "notes-data-and-control",
			remove:      func(def, notes info) []string { return []string{notes.OSName, notes.CtlName} },
			wantDefault: true,
			wantLog:     `recreated region "notes": its object %s had vanished`,
		},
		{
			name:        "notes-data-only",
			remove:      func(def, notes info) []string { return []string{notes.OSName} },
			wantDefault: true,
			wantLog:     `recreated region "notes": its object %s had vanished`,
		},
		{
			name:        "notes-control-only",
			remove:      func(def, notes info) []string { return []string{notes.CtlName} },
			wantDefault: true,
			wantNotes:   true,
			wantLog:     `region "notes": rebuilt its missing or damaged control block`,
		},
		{
			name: "everything",
			remove: func(def, notes info) []string {
				return []string{def.OSName, def.CtlName, notes.OSName, notes.CtlName}
			},
			wantLog: `recreated region "notes": its object %s had vanished`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startHost(t, "--log-format", "json")
			content := fill(t, h)
			before := listRegions(t, h)
			def, notes := before["default"], before["notes"]
			h.Stop(t)

			for _, n := range tt.remove(def, notes) {
				if err := os.Remove(filepath.Join(shmDir, n)); err != nil {
					t.Fatal(err)
				}
			}
			orphan := "shmgr-" + shmtest.Instance(t, h.DataDir) + "-ffffffffff"
			orphanPath := filepath.Join(shmDir, orphan)
			if err := os.WriteFile(orphanPath, make([]byte, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			quarantined := filepath.Join(shmDir, "orphan-"+strings.TrimPrefix(orphan, "shmgr-"))
			t.Cleanup(func() { os.Remove(orphanPath); os.Remove(quarantined) })

			h.Restart(t)
			// The host logs its repairs before its banner, but on another
			// pipe: wait until the last one (the orphan) has arrived.
			shmtest.CheckFor(t, 10*time.Second, "the restarted host never logged quarantining the orphan "+orphan, func() bool {
				return strings.Contains(h.Stderr(), "quarantined orphan object")
			})
			warnings := logMessages(t, h.Stderr(), "WARN")

			wantLog := tt.wantLog
			if strings.Contains(wantLog, "%s") {
				wantLog = fmt.Sprintf(wantLog, notes.OSName)
			}
			for _, want := range []string{wantLog, "quarantined orphan object " + orphan} {
				if !slices.ContainsFunc(warnings, func(m string) bool { return strings.HasPrefix(m, want) }) {
					t.Errorf("host warnings lack %q:\n%s", want, strings.Join(warnings, "\n"))
				}
			}
			if exists(t, orphanPath) {
				t.Errorf("orphan %s still exists after the host started", orphanPath)
			}
			if !exists(t, quarantined) {
				t.Errorf("orphan %s was not kept as %s", orphanPath, quarantined)
			}

			after := listRegions(t, h)
			for id, want := range before {
				got := after[id]
				kept := id == "cfg" || id == "default" && tt.wantDefault || id == "notes" && tt.wantNotes
				wantContent := ""
				if kept {
					wantContent = content[id]
				}
				if c := readContent(t, h, id); c != wantContent {
					t.Errorf("%s after restart = %q, want %q", id, c, wantContent)
				}
				// Objects whose data or control block was lost come back at a
				// later version (past any they could have reached), so
				// versions never go back; the others keep theirs.
				if !kept || id == "notes" && tt.wantNotes {
					if got.Version <= want.Version {
						t.Errorf("%s after restart: version %d, want more than %d", id, got.Version, want.Version)
					}
				} else if got.Version != want.Version {
					t.Errorf("%s after restart: version %d, want %d", id, got.Version, want.Version)
				}
				if got.OSName != want.OSName || got.CtlName != want.CtlName || got.Size != want.Size || got.Layout != want.Layout {
					t.Errorf("%s after restart = %+v, want the same names and shape as %+v", id, got, want)
				}
				for _, n := range []string{got.OSName, got.CtlName} {
					if !got.Durable && !exists(t, filepath.Join(shmDir, n)) {
						t.Errorf("%s after restart: object %s missing", id, n)
					}
				}
			}
			// The recreated regions work.
			h.MustCLI(t, "write", "--id", "notes", "--mode", "local", "written after the reboot")
			if got := readContent(t, h, "notes", "--mode", "tcp"); got != "written after the reboot" {
				t.Errorf("notes after a write following the reboot = %q", got)
			}
		})
	}
}

// logMessages returns the messages of the given level in a host's JSON
// log (--log-format json), failing on a line that is not JSON.
func logMessages(t *testing.T, stderr, level string) []string {
	t.Helper()
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l == "" {
			continue
		}
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("host log line is not JSON: %q", l)
		}
		if rec.Level == level {
			msgs = append(msgs, rec.Msg)
		}
	}
	return msgs
}

// TestRestartAfterCrashAndReboot is a power loss: the host dies without
// saving (SIGKILL) and /dev/shm is cleared. The recreated region must not
// hand out versions clients have already seen, or a conditional write
// based on an old read could succeed.
func TestRestartAfterCrashAndReboot(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	var seen uint64
	for i := range 3 {
		var w writeJSON
		cliJSON(t, h, &w, "write", "--json", fmt.Sprintf("version %d", i+1))
		seen = *w.Version
	}
	def := regionInfo(t, h, "default")
	h.Kill(t)
	for _, n := range []string{def.OSName, def.CtlName} {
		if err := os.Remove(filepath.Join(shmDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	h.Restart(t)
	if got := regionInfo(t, h, "default").Version; got <= seen {
		t.Errorf("after a crash and a reboot the default region is at version %d, but clients already saw "+
			"version %d: versions went back", got, seen)
	}
}
