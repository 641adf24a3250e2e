package main_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pythonView is what testdata/attach.py prints.
type pythonView struct {
	Size    int64  `json:"size"`
	Lock    int    `json:"lock"`
	Length  int    `json:"length"`
	DataHex string `json:"data_hex"`
}

// runAttachPy runs testdata/attach.py on an OS name in a separate Python
// process.
func runAttachPy(t *testing.T, python, osName string) pythonView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "attach.py"), osName)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3 attach.py %s: %v\nstderr:\n%s", osName, err, errOut.String())
	}
	// The resource tracker complains about segments it would unlink.
	if bytes.Contains(errOut.Bytes(), []byte("leaked")) {
		t.Errorf("python3 attach.py: the resource tracker still tracked the segment:\n%s", errOut.String())
	}
	var v pythonView
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("python3 attach.py printed %q: %v", out.String(), err)
	}
	return v
}

// TestAttachPython has a Python process attach to the default region by
// its OS name (multiprocessing.shared_memory) and read the documented
// layout: the lock flag, the little-endian length and the UTF-8 data. The
// region must survive the Python process and keep working.
func TestAttachPython(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH")
	}
	h := startHost(t)
	in := regionInfo(t, h, "default")
	path := filepath.Join(shmDir, in.OSName)

	steps := []struct {
		name    string
		mode    string // how the CLI writes
		content string
	}{
		{"fresh", "", ""},
		{"written-over-tcp", "tcp", "héllo from shmgr, " + chinese},
		{"written-locally-after-python-exited", "local", "second: " + chinese + " ✓"},
		{"shorter", "local", "short"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.mode != "" {
				h.MustCLI(t, "write", "--mode", s.mode, s.content)
			}
			got := runAttachPy(t, python, in.OSName)
			want := pythonView{Size: 4096, Lock: 0, Length: len(s.content), DataHex: fmt.Sprintf("%x", s.content)}
			if got != want {
				t.Errorf("Python sees %+v, want %+v", got, want)
			}
			if !exists(t, path) {
				t.Fatalf("%s vanished when the Python process exited", path)
			}
			if got := readContent(t, h, "", "--mode", "local"); got != s.content {
				t.Errorf("read --mode local after Python exited = %q, want %q", got, s.content)
			}
		})
	}
}

// TestAttachGo reads the default region's objects straight from /dev/shm
// in the test process and checks the documented byte layout of the data
// object and of the control block after each write; a refused write must
// leave every byte of the data object as it was.
func TestAttachGo(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	in := regionInfo(t, h, "default")
	dataPath, ctlPath := filepath.Join(shmDir, in.OSName), filepath.Join(shmDir, in.CtlName)

	steps := []struct {
		name    string
		mode    string
		content string
	}{
		{"fresh", "", ""},
		{"hello/tcp", "tcp", "hello"},
		{"chinese/local", "local", chinese},
		{"max-4091/tcp", "tcp", max4091},
		{"shorter/local", "local", "short"},
		{"empty/tcp", "tcp", ""},
	}
	var version uint64
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.mode != "" {
				var w writeJSON
				cliJSON(t, h, &w, "write", "--mode", s.mode, "--json", s.content)
				version++
				if w.Version == nil || *w.Version != version {
					t.Fatalf("write --json version = %v, want %d", w.Version, version)
				}
			}
			b, err := os.ReadFile(dataPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 4096 {
				t.Errorf("%s is %d bytes, want 4096", dataPath, len(b))
			}
			lock, data := utf8Object(t, b)
			if lock != 0 {
				t.Errorf("lock flag (byte 0) = %d, want 0 (free)", lock)
			}
			if string(data) != s.content {
				t.Errorf("data at 5 (length %d at 1-4) = %q, want %q", len(data), trim(string(data)), trim(s.content))
			}
			checkControlBlock(t, ctlPath, in, version)
		})
	}

	t.Run("refused-write-touches-nothing", func(t *testing.T) {
		before, err := os.ReadFile(dataPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"tcp", "local"} {
			if _, _, code := h.CLI(t, nil, "write", "--mode", mode, over4092); code != 1 {
				t.Errorf("write --mode %s of 4092 bytes: exit %d, want 1", mode, code)
			}
			if _, _, code := h.CLI(t, []byte("x\xff"), "write", "--mode", mode); code != 1 {
				t.Errorf("write --mode %s of invalid UTF-8: exit %d, want 1", mode, code)
			}
		}
		after, err := os.ReadFile(dataPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("refused writes changed the data object at byte %d", firstDiff(string(before), string(after)))
		}
		checkControlBlock(t, ctlPath, in, version)
	})
}

// checkControlBlock checks the documented control block of a utf8 region
// (docs/ARCHITECTURE.md): magic, format, layout, size, nonce, the seqlock
// word (2*version, even: no write in progress), a free lock and an empty
// undo log.
func checkControlBlock(t *testing.T, path string, in info, version uint64) {
	t.Helper()
	c, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := 4096 + in.Size + 8; int64(len(c)) != want {
		t.Fatalf("%s is %d bytes, want %d (4096-byte header and an undo area of size+8)", path, len(c), want)
	}
	u32 := func(off int) uint64 { return uint64(binary.LittleEndian.Uint32(c[off:])) }
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(c[off:]) }
	fields := []struct {
		name      string
		got, want any
	}{
		{"magic (0)", string(c[0:8]), "SHMGRCB2"},
		{"format (8)", u32(8), uint64(2)},
		{"layout (12)", u32(12), uint64(1)},
		{"data size (16)", u64(16), uint64(in.Size)},
		{"nonce (24)", fmt.Sprintf("%016x", u64(24)), in.Nonce},
		{"seq (64)", u64(64), 2 * version},
		{"lock word's owner (128, bits 0-31)", u32(128), uint64(0)},
		{"owner slots (48)", u32(48), uint64(128)},
		{"undo state (192)", u32(192), uint64(0)},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("control block %s = %v, want %v", f.name, f.got, f.want)
		}
	}
}
