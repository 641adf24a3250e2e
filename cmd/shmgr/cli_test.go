package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// TestCLIWriteRead writes content every way write takes it and reads it
// back: read prints exactly the bytes stored, with no newline added when
// standard output is not a terminal.
func TestCLIWriteRead(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "content.txt")
	fileContent := "from a file\nsecond line\n"
	if err := os.WriteFile(file, []byte(fileContent), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin []byte
		want  string
	}{
		{"arg", []string{"write", "hello world"}, nil, "hello world"},
		{"arg/no-newline-added", []string{"write", "no newline"}, nil, "no newline"},
		{"arg/trailing-newline-kept", []string{"write", "line\n"}, nil, "line\n"},
		{"arg/utf8", []string{"write", chinese}, nil, chinese},
		{"file", []string{"write", "--file", file}, nil, fileContent},
		{"file/shorthand", []string{"write", "-f", file}, nil, fileContent},
		{"file/empty", []string{"write", "--file", emptyFile}, nil, ""},
		{"stdin/dash", []string{"write", "-"}, []byte("from stdin via -"), "from stdin via -"},
		{"stdin/no-argument", []string{"write"}, []byte("from stdin\nwith lines\n"), "from stdin\nwith lines\n"},
		{"stdin/utf8", []string{"write"}, []byte(chinese), chinese},
		{"stdin/max-4091", []string{"write"}, []byte(max4091), max4091},
		{"stdin/empty", []string{"write", "-"}, []byte{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := h.CLI(t, tt.stdin, tt.args...)
			if code != 0 {
				t.Fatalf("shmgr %v: exit %d\nstderr: %s", tt.args, code, errOut)
			}
			if out != "" {
				t.Errorf("shmgr %v printed %q on a non-terminal stdout, want nothing", tt.args, out)
			}
			if got := readContent(t, h, ""); got != tt.want {
				t.Errorf("read after shmgr %v = %q, want %q", tt.args, trim(got), trim(tt.want))
			}
		})
	}
}

// readJSON is read --json's documented output.
type readJSON struct {
	ShmID   string  `json:"shm_id"`
	Version *uint64 `json:"version"`
	Length  int     `json:"length"`
	Content *string `json:"content"`
	Mode    string  `json:"mode"`
}

// writeJSON is write --json's documented output.
type writeJSON struct {
	ShmID   string  `json:"shm_id"`
	Version *uint64 `json:"version"`
	Length  int     `json:"length"`
	Mode    string  `json:"mode"`
}

// TestCLIJSONAndModes checks read --json and write --json in every mode:
// the documented fields, versions that count the writes, and the mode
// reported being the one asked for.
func TestCLIJSONAndModes(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	tests := []struct {
		mode     string
		wantMode string
	}{
		{"tcp", "tcp"},
		{"local", "local"},
		{"auto", "local"}, // the host is on this machine
	}
	var version uint64
	for _, tt := range tests {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			content := "via " + tt.mode + " " + chinese
			var w writeJSON
			cliJSON(t, h, &w, "write", "--mode", tt.mode, "--json", content)
			if w.Version == nil {
				t.Fatalf("write --json has no version field")
			}
			version++
			if w.ShmID != "default" || *w.Version != version || w.Length != len(content) || w.Mode != tt.wantMode {
				t.Errorf("write --json = {%s %d %d %s}, want {default %d %d %s}", w.ShmID, *w.Version, w.Length, w.Mode, version, len(content), tt.wantMode)
			}
			for _, rmode := range []string{tt.mode, "tcp", "local"} {
				var r readJSON
				cliJSON(t, h, &r, "read", "--mode", rmode, "--json")
				if r.Content == nil || r.Version == nil {
					t.Fatalf("read --mode %s --json lacks content or version", rmode)
				}
				wantMode := map[string]string{"tcp": "tcp", "local": "local", "auto": "local"}[rmode]
				if r.ShmID != "default" || *r.Content != content || r.Length != len(content) || *r.Version != version || r.Mode != wantMode {
					t.Errorf("read --mode %s --json = {%s %q %d v%d %s}, want {default %q %d v%d %s}",
						rmode, r.ShmID, *r.Content, r.Length, *r.Version, r.Mode, content, len(content), version, wantMode)
				}
			}
		})
	}
	// A region other than the default one, by --id, in both modes.
	h.MustCLI(t, "create", "other")
	for _, mode := range []string{"tcp", "local"} {
		t.Run("id/mode="+mode, func(t *testing.T) {
			h.MustCLI(t, "write", "--id", "other", "--mode", mode, "for other by "+mode)
			var r readJSON
			cliJSON(t, h, &r, "read", "--id", "other", "--mode", mode, "--json")
			if r.ShmID != "other" || r.Content == nil || *r.Content != "for other by "+mode || r.Mode != mode {
				t.Errorf("read --id other --mode %s --json = %+v, want content %q", mode, r, "for other by "+mode)
			}
		})
	}
	if got, want := readContent(t, h, ""), "via auto "+chinese; got != want {
		t.Errorf("default region = %q after writing another region, want %q", got, want)
	}
}

// TestCLIMaxWrite creates a raw region with --max-write and checks what
// create, create --json and info say it costs, and that a write over the
// limit fails (over TCP and locally) naming the limit and --max-write,
// while one of exactly max write succeeds.
func TestCLIMaxWrite(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	const size, maxWrite = 1 << 20, 4096
	footprint := int64(size + 4096 + maxWrite + 8)
	var got struct {
		Size      int64 `json:"size"`
		MaxWrite  int64 `json:"max_write"`
		Footprint int64 `json:"footprint"`
	}
	cliJSON(t, h, &got, "create", "frames", "--layout", "raw", "--size", strconv.Itoa(size), "--max-write", strconv.Itoa(maxWrite), "--json")
	if got.Size != size || got.MaxWrite != maxWrite || got.Footprint != footprint {
		t.Errorf("create --json = %+v, want max_write %d footprint %d", got, maxWrite, footprint)
	}
	cliJSON(t, h, &got, "create", "whole", "--layout", "raw", "--size", "1024", "--json")
	if got.MaxWrite != 1024 || got.Footprint != 1024+4096+1024+8 {
		t.Errorf("create without --max-write = %+v, want max_write 1024 (the whole region)", got)
	}

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"create", []string{"create", "small", "--layout", "raw", "--size", "65536", "--max-write", "512"},
			[]string{`created "small"`, "cost: 68.5 KiB of", "70152 bytes", "64.0 KiB data", "4.5 KiB control block", "writes of up to 512 B"}},
		{"create/default", []string{"create", "notes", "--size", "65536"},
			[]string{"cost: 132.0 KiB of", "135176 bytes", "writes of up to 64.0 KiB"}},
		{"info", []string{"info", "--id", "frames"},
			[]string{"max write:", "4096 bytes", "--max-write", "cost:", strconv.FormatInt(footprint, 10) + " bytes"}},
		{"info/default", []string{"info", "--id", "whole"},
			[]string{"max write:", "1024 bytes (the whole region)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := h.MustCLI(t, tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%v output lacks %q:\n%s", tt.args, w, out)
				}
			}
			if runtime.GOOS == "linux" && strings.Contains(out, "cost:") && !strings.Contains(out, "/dev/shm") {
				t.Errorf("%v output does not say the cost is in /dev/shm:\n%s", tt.args, out)
			}
		})
	}

	for _, mode := range []string{"tcp", "local"} {
		t.Run("write-over/"+mode, func(t *testing.T) {
			_, errOut, code := h.CLI(t, make([]byte, maxWrite+1), "write", "--id", "frames", "--mode", mode)
			if code != 1 || !strings.Contains(errOut, "max write is 4096 bytes") || !strings.Contains(errOut, "--max-write") || strings.Contains(errOut, "create a larger region") {
				t.Errorf("write of %d bytes: exit %d, stderr %q; want 1 naming the max write and --max-write", maxWrite+1, code, errOut)
			}
			_, errOut, code = h.CLI(t, bytes.Repeat([]byte{1}, maxWrite), "write", "--id", "frames", "--mode", mode, "--offset", strconv.Itoa(size-maxWrite))
			if code != 0 {
				t.Errorf("write of exactly max write: exit %d, %s", code, errOut)
			}
		})
	}
}

// TestCLIRegions covers create (utf8 with --size, raw, --durable), ls,
// info and rm.
func TestCLIRegions(t *testing.T) {
	t.Parallel()
	h := startHost(t)

	creates := []struct {
		name string
		args []string
		want info // compared without os names, nonce and host id
	}{
		{"utf8-size", []string{"create", "notes", "--size", "65536"},
			info{ShmID: "notes", Size: 65536, Layout: "utf8", LockOffset: 0, LenOffset: 1, DataOffset: 5, MaxDataSize: 65531, OSKind: "posix_shm"}},
		{"raw", []string{"create", "frames", "--layout", "raw", "--size", "1024"},
			info{ShmID: "frames", Size: 1024, Layout: "raw", LockOffset: -1, LenOffset: -1, DataOffset: 0, MaxDataSize: 1024, OSKind: "posix_shm"}},
		{"durable", []string{"create", "--id", "cfg", "--durable"},
			info{ShmID: "cfg", Size: 4096, Layout: "utf8", LockOffset: 0, LenOffset: 1, DataOffset: 5, MaxDataSize: 4091, OSKind: "file", Durable: true}},
	}
	created := map[string]info{}
	for _, tt := range creates {
		t.Run("create/"+tt.name, func(t *testing.T) {
			var got info
			cliJSON(t, h, &got, append(tt.args, "--json")...)
			created[got.ShmID] = got
			if got.OSName == "" || got.CtlName == "" || len(got.Nonce) != 16 || got.HostID == "" {
				t.Errorf("create --json = %+v: want os_name, ctl_name, a 16-digit nonce and host_id", got)
			}
			cmp := got
			cmp.OSName, cmp.CtlName, cmp.Nonce, cmp.HostID = "", "", "", ""
			if cmp != tt.want {
				t.Errorf("create --json = %+v, want %+v", cmp, tt.want)
			}
			path := filepath.Join(shmDir, got.OSName)
			if tt.want.Durable {
				path = got.OSName
				if !strings.HasPrefix(path, h.DataDir) {
					t.Errorf("durable os_name %q is not in the data directory %s", path, h.DataDir)
				}
			}
			if st, err := os.Stat(path); err != nil || st.Size() != tt.want.Size {
				t.Errorf("object %s: %v %v, want %d bytes", path, st, err, tt.want.Size)
			}
		})
	}

	t.Run("create/text-output", func(t *testing.T) {
		out := h.MustCLI(t, "create", "small", "--size", "100")
		if !strings.HasPrefix(out, `created "small"`) || !strings.Contains(out, "up to 95 bytes") {
			t.Errorf("create output = %q, want it to name the region and its 95-byte maximum", out)
		}
	})

	t.Run("write-large-region", func(t *testing.T) {
		big := strings.Repeat("x", 65531)
		h.MustCLI(t, "write", "--id", "notes", big)
		if got := readContent(t, h, "notes"); got != big {
			t.Errorf("notes holds %d bytes, want %d", len(got), len(big))
		}
		h.MustCLI(t, "write", "--id", "cfg", "durable content")
		if got := readContent(t, h, "cfg", "--mode", "local"); got != "durable content" {
			t.Errorf("cfg = %q, want %q", got, "durable content")
		}
	})

	t.Run("ls", func(t *testing.T) {
		var list []info
		cliJSON(t, h, &list, "ls", "--json")
		var ids []string
		for _, in := range list {
			ids = append(ids, in.ShmID)
			if c, ok := created[in.ShmID]; ok && (in.OSName != c.OSName || in.Nonce != c.Nonce) {
				t.Errorf("ls: %s has os_name %s nonce %s, create said %s %s", in.ShmID, in.OSName, in.Nonce, c.OSName, c.Nonce)
			}
		}
		if got, want := strings.Join(ids, " "), "cfg default frames notes small"; got != want {
			t.Errorf("ls --json ids = %q, want %q (sorted)", got, want)
		}
		out := h.MustCLI(t, "ls")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 6 || !strings.HasPrefix(lines[0], "SHM_ID") {
			t.Fatalf("ls = %q, want a header and 5 rows", out)
		}
		for i, id := range ids {
			if f := strings.Fields(lines[i+1]); len(f) == 0 || f[0] != id {
				t.Errorf("ls row %d = %q, want it to start with %s", i+1, lines[i+1], id)
			}
		}
	})

	t.Run("info", func(t *testing.T) {
		out := h.MustCLI(t, "info")
		for _, want := range []string{"host:", h.Addr, "default region:", "regions:", "shm_id:     notes", "shmgr/1"} {
			if !strings.Contains(out, want) {
				t.Errorf("info output lacks %q:\n%s", want, out)
			}
		}
		var hi struct {
			Host struct {
				Proto   string `json:"proto"`
				Default string `json:"default"`
				Regions int    `json:"regions"`
			} `json:"host"`
			Address string `json:"address"`
			Regions []info `json:"regions"`
		}
		cliJSON(t, h, &hi, "info", "--json")
		if hi.Host.Proto != "shmgr/1" || hi.Host.Default != "default" || hi.Host.Regions != 5 || hi.Address != h.Addr || len(hi.Regions) != 5 {
			t.Errorf("info --json = %+v, want proto shmgr/1, default region, 5 regions at %s", hi, h.Addr)
		}
		in := regionInfo(t, h, "frames")
		if in.Layout != "raw" || in.Size != 1024 || in.OSName != created["frames"].OSName {
			t.Errorf("info --id frames --json = %+v, want the raw 1024-byte region", in)
		}
		out = h.MustCLI(t, "info", "--id", "notes")
		if !strings.Contains(out, "65536 bytes (utf8 layout, up to 65531 bytes of data)") || !strings.Contains(out, created["notes"].OSName) {
			t.Errorf("info --id notes = %q, want its size, layout and os name", out)
		}
	})

	t.Run("rm", func(t *testing.T) {
		for _, id := range []string{"notes", "frames"} {
			out := h.MustCLI(t, "rm", id)
			if want := `deleted "` + id + `"` + "\n"; out != want {
				t.Errorf("rm %s = %q, want %q", id, out, want)
			}
			for _, n := range []string{created[id].OSName, created[id].CtlName} {
				if exists(t, filepath.Join(shmDir, n)) {
					t.Errorf("rm %s left %s in %s", id, n, shmDir)
				}
			}
		}
		var res map[string]any
		cliJSON(t, h, &res, "rm", "--id", "cfg", "--json")
		if res["shm_id"] != "cfg" || res["deleted"] != true {
			t.Errorf("rm --json = %v, want shm_id cfg, deleted true", res)
		}
		if exists(t, created["cfg"].OSName) {
			t.Errorf("rm cfg left its file %s", created["cfg"].OSName)
		}
		if got := listRegions(t, h); len(got) != 2 || got["default"].ShmID == "" || got["small"].ShmID == "" {
			t.Errorf("ls after rm = %v, want default and small", slices.Sorted(maps.Keys(got)))
		}
		_, errOut, code := h.CLI(t, nil, "read", "--id", "notes")
		if code != 1 || !strings.Contains(errOut, "not found") {
			t.Errorf("read of a removed region: exit %d, stderr %q; want 1 and \"not found\"", code, errOut)
		}
	})
}

// TestCLIVersion checks version and version --json, and that the host
// announces the same version.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	out, errOut, code := shmtest.Run(t, nil, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("version: exit %d, stderr %q", code, errOut)
	}
	re := regexp.MustCompile(`^shmgr (\d+\.\d+\.\d+) \(protocol shmgr/1, (go[^,]+), ([a-z0-9]+/[a-z0-9]+)\)\n$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("version = %q, want %s", out, re)
	}
	if m[2] != runtime.Version() || m[3] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version = %q, want %s and %s/%s", out, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	var v map[string]string
	js, _, code := shmtest.Run(t, nil, "version", "--json")
	if code != 0 {
		t.Fatalf("version --json: exit %d", code)
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, js)
	}
	want := map[string]string{"version": m[1], "proto": "shmgr/1", "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("version --json %s = %q, want %q", k, v[k], w)
		}
	}
	h := startHost(t)
	c := dialRaw(t, h.Addr)
	var meta info
	if err := json.Unmarshal([]byte(c.Meta), &meta); err != nil {
		t.Fatal(err)
	}
	if want := "shmgr " + m[1]; meta.Server != want {
		t.Errorf("host metadata server = %q, want %q", meta.Server, want)
	}
	if !strings.HasPrefix(h.Banner, "shmgr host "+m[1]+" ") {
		t.Errorf("host banner does not start with \"shmgr host %s\":\n%s", m[1], h.Banner)
	}
}

// commands are the documented commands.
var commands = []string{"host", "read", "write", "watch", "ls", "create", "rm", "info", "version"}

// TestCLIHelp checks that every command's --help succeeds, shows usage and
// an Examples section, and matches testdata/help/<command>.golden
// (-update rewrites them).
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range append([]string{""}, commands...) {
		name := cmd
		if name == "" {
			name = "shmgr"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"--help"}
			if cmd != "" {
				args = []string{cmd, "--help"}
			}
			out, errOut, code := shmtest.Run(t, nil, args...)
			if code != 0 || errOut != "" {
				t.Fatalf("shmgr %v: exit %d, stderr %q; want 0 and nothing", args, code, errOut)
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("shmgr %v lacks a Usage section:\n%s", args, out)
			}
			if cmd != "" && !strings.Contains(out, "\nExamples:\n  shmgr "+cmd) {
				t.Errorf("shmgr %v lacks an Examples section with a shmgr %s example:\n%s", args, cmd, out)
			}
			golden := filepath.Join("testdata", "help", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("shmgr %v differs from %s (run with -update if the change is intended):\ngot:\n%s\nwant:\n%s", args, golden, out, want)
			}
		})
	}
	// "shmgr help CMD" is the same text as "shmgr CMD --help".
	a, _, _ := shmtest.Run(t, nil, "help", "read")
	b, _, _ := shmtest.Run(t, nil, "read", "--help")
	if a != b {
		t.Errorf("shmgr help read differs from shmgr read --help:\n%s\n---\n%s", a, b)
	}
}

// TestCLIErrors checks exit codes and messages of failing commands, and
// that a refused write leaves the content as it was.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	const before = "content before the errors"
	h.MustCLI(t, "write", before)

	tests := []struct {
		name       string
		args       []string // --host h.Addr is added unless noHost
		noHost     bool
		stdin      []byte
		wantCode   int
		wantStderr []string
	}{
		{name: "unknown-flag", args: []string{"read", "--bogus"}, wantCode: 2,
			wantStderr: []string{"unknown flag: --bogus", "--help"}},
		{name: "unknown-shorthand", args: []string{"write", "-z", "x"}, wantCode: 2,
			wantStderr: []string{"unknown shorthand flag: 'z'"}},
		{name: "unknown-command", args: []string{"frobnicate"}, noHost: true, wantCode: 2,
			wantStderr: []string{"unknown command \"frobnicate\""}},
		{name: "read-extra-argument", args: []string{"read", "extra"}, wantCode: 2,
			wantStderr: []string{"unknown command \"extra\""}},
		{name: "bad-mode", args: []string{"read", "--mode", "carrier-pigeon"}, wantCode: 2,
			wantStderr: []string{"unknown mode \"carrier-pigeon\"", "auto, local or tcp"}},
		{name: "bad-timeout", args: []string{"read", "--timeout", "soon"}, wantCode: 2,
			wantStderr: []string{"invalid argument \"soon\""}},
		{name: "no-host-listening", args: []string{"read", "--host", "127.0.0.1:1"}, noHost: true, wantCode: 1,
			wantStderr: []string{"connection refused", "no host is listening at 127.0.0.1:1", "start one with 'shmgr host'", "--host"}},
		{name: "no-host-listening/write", args: []string{"write", "--host", "127.0.0.1:1", "x"}, noHost: true, wantCode: 1,
			wantStderr: []string{"no host is listening at 127.0.0.1:1", "shmgr host"}},
		{name: "region-not-found", args: []string{"read", "--id", "nope"}, wantCode: 1,
			wantStderr: []string{`"nope"`, "not found", "shmgr ls"}},
		{name: "write/not-found", args: []string{"write", "--id", "nope", "x"}, wantCode: 1,
			wantStderr: []string{`"nope"`, "not found"}},
		{name: "write/4092/tcp", args: []string{"write", "--mode", "tcp", over4092}, wantCode: 1,
			wantStderr: []string{"4092 bytes", "4091"}},
		{name: "write/4092/local", args: []string{"write", "--mode", "local", over4092}, wantCode: 1,
			wantStderr: []string{"4092 bytes", "4091"}},
		{name: "write/4092/stdin", args: []string{"write"}, stdin: []byte(over4092), wantCode: 1,
			wantStderr: []string{"4091"}},
		{name: "write/invalid-utf8/tcp", args: []string{"write", "--mode", "tcp"}, stdin: []byte("ab\xffcd"), wantCode: 1,
			wantStderr: []string{"UTF-8", "0xff", "--layout raw"}},
		{name: "write/invalid-utf8/local", args: []string{"write", "--mode", "local"}, stdin: []byte("ab\xffcd"), wantCode: 1,
			wantStderr: []string{"UTF-8", "0xff"}},
		{name: "write/file-missing", args: []string{"write", "--file", "/nonexistent"}, wantCode: 1,
			wantStderr: []string{"/nonexistent", "no such file"}},
		{name: "write/text-and-file", args: []string{"write", "--file", "content.txt", "text"}, wantCode: 2,
			wantStderr: []string{"not both"}},
		{name: "write/stale-if-version", args: []string{"write", "--if-version", "0", "x"}, wantCode: 1,
			wantStderr: []string{"conflict", "read it again"}},
		{name: "create/invalid-id", args: []string{"create", "bad id!"}, wantCode: 2,
			wantStderr: []string{`"bad id!"`, "invalid shm_id", "letters, digits"}},
		{name: "create/invalid-id-dot", args: []string{"create", ".hidden"}, wantCode: 2,
			wantStderr: []string{`".hidden"`, "invalid shm_id"}},
		{name: "create/id-too-long", args: []string{"create", strings.Repeat("x", 65)}, wantCode: 2,
			wantStderr: []string{"invalid shm_id"}},
		{name: "create/no-id", args: []string{"create"}, wantCode: 2,
			wantStderr: []string{"no shm_id given"}},
		{name: "create/exists", args: []string{"create", "default"}, wantCode: 1,
			wantStderr: []string{`"default"`, "exists"}},
		{name: "create/bad-size", args: []string{"create", "tiny", "--size", "3"}, wantCode: 1,
			wantStderr: []string{"3 bytes"}},
		{name: "create/bad-layout", args: []string{"create", "zipped", "--layout", "zip"}, wantCode: 2,
			wantStderr: []string{"zip"}},
		{name: "create/max-write-utf8", args: []string{"create", "mw", "--max-write", "10"}, wantCode: 2,
			wantStderr: []string{"--max-write", "raw regions only", "--layout raw"}},
		{name: "create/max-write-zero", args: []string{"create", "mw", "--layout", "raw", "--max-write", "0"}, wantCode: 2,
			wantStderr: []string{"--max-write 0", "must be 1 to"}},
		{name: "create/max-write-negative", args: []string{"create", "mw", "--layout", "raw", "--max-write", "-5"}, wantCode: 2,
			wantStderr: []string{"--max-write -5", "must be 1 to"}},
		{name: "create/max-write-over-size", args: []string{"create", "mw", "--layout", "raw", "--size", "10", "--max-write", "11"}, wantCode: 2,
			wantStderr: []string{"--max-write 11", "--size 10"}},
		{name: "create/max-write-durable", args: []string{"create", "mw", "--layout", "raw", "--durable", "--max-write", "10"}, wantCode: 2,
			wantStderr: []string{"--max-write", "--durable"}},
		{name: "create/max-write-not-a-number", args: []string{"create", "mw", "--layout", "raw", "--max-write", "1k"}, wantCode: 2,
			wantStderr: []string{"max-write", "1k"}},
		{name: "rm/default", args: []string{"rm", "default"}, wantCode: 1,
			wantStderr: []string{"default region", "cannot be deleted"}},
		{name: "rm/not-found", args: []string{"rm", "nope"}, wantCode: 1,
			wantStderr: []string{`"nope"`, "not found"}},
		{name: "rm/two-ids", args: []string{"rm", "a", "--id", "b"}, wantCode: 2,
			wantStderr: []string{"two different shm_ids"}},
		{name: "info/not-found", args: []string{"info", "--id", "nope"}, wantCode: 1,
			wantStderr: []string{`"nope"`, "not found"}},
		{name: "version/extra-argument", args: []string{"version", "extra"}, noHost: true, wantCode: 2,
			wantStderr: []string{"unknown command \"extra\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut string
			var code int
			if tt.noHost {
				out, errOut, code = shmtest.Run(t, tt.stdin, tt.args...)
			} else {
				out, errOut, code = h.CLI(t, tt.stdin, tt.args...)
			}
			if code != tt.wantCode {
				t.Errorf("shmgr %v: exit %d, want %d\nstderr: %s", trimArgs(tt.args), code, tt.wantCode, errOut)
			}
			if out != "" {
				t.Errorf("shmgr %v printed %q on stdout, want nothing", trimArgs(tt.args), trim(out))
			}
			if !strings.HasPrefix(errOut, "shmgr: ") {
				t.Errorf("shmgr %v: stderr %q does not start with \"shmgr: \"", trimArgs(tt.args), errOut)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("shmgr %v: stderr lacks %q:\n%s", trimArgs(tt.args), w, errOut)
				}
			}
		})
	}
	if got := readContent(t, h, ""); got != before {
		t.Errorf("content after the refused writes = %q, want %q (unchanged)", trim(got), before)
	}
	if got := listRegions(t, h); len(got) != 1 {
		t.Errorf("regions after the refused creates = %d, want only the default one", len(got))
	}
}

// trimArgs shortens long arguments for messages.
func trimArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = trim(a)
	}
	return out
}

// TestCLIHostFromEnv checks that SHMGR_HOST is the default --host.
func TestCLIHostFromEnv(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.MustCLI(t, "write", "set through --host")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shmtest.Binary(t), "read")
	cmd.Env = append(os.Environ(), "SHMGR_HOST="+h.Addr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("SHMGR_HOST=%s shmgr read: %v", h.Addr, err)
	}
	if got, want := string(out), "set through --host"; got != want {
		t.Errorf("SHMGR_HOST=%s shmgr read = %q, want %q", h.Addr, got, want)
	}
}

// TestCLIConcurrentWriters runs writers in separate processes at once,
// some mapping the region directly and some going through the host: every
// write gets its own version, and the final content is one whole write.
func TestCLIConcurrentWriters(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	const writers, rounds = 4, 5
	var mu sync.Mutex
	versions := map[uint64]bool{}
	valid := map[string]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		mode := []string{"local", "tcp"}[w%2]
		content := strings.Repeat(string(rune('a'+w)), 1000+w)
		valid[content] = true
		wg.Go(func() {
			for range rounds {
				out, errOut, code := h.CLI(t, nil, "write", "--mode", mode, "--json", content)
				var res writeJSON
				if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Version == nil {
					t.Errorf("write --mode %s: exit %d, output %q, stderr %q", mode, code, out, errOut)
					return
				}
				mu.Lock()
				if versions[*res.Version] {
					t.Errorf("version %d was returned to two writes", *res.Version)
				}
				versions[*res.Version] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for v := uint64(1); v <= writers*rounds; v++ {
		if !versions[v] {
			t.Errorf("no write got version %d; versions: %v", v, slices.Sorted(maps.Keys(versions)))
		}
	}
	var r readJSON
	cliJSON(t, h, &r, "read", "--json")
	if r.Content == nil || !valid[*r.Content] || r.Version == nil || *r.Version != writers*rounds {
		t.Errorf("after %d writes: version %v, content valid %v; want version %d and one writer's whole content",
			writers*rounds, r.Version, r.Content != nil && valid[*r.Content], writers*rounds)
	}
}

// TestHostFlagErrors checks that a bad host flag is a usage error (exit
// 2) naming the flag and what it accepts, found before anything starts.
func TestHostFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--busy-poll", "2ms"}, "--busy-poll 2ms: must be between 0 (off) and 1ms"},
		{[]string{"--busy-poll", "-1us"}, "--busy-poll -1µs: must be between 0 (off) and 1ms"},
		{[]string{"--lock-timeout", "0"}, "--lock-timeout 0s: must be positive"},
		{[]string{"--max-connections", "0"}, "--max-connections 0: must be at least 1"},
		{[]string{"--max-watches", "0"}, "--max-watches 0: must be at least 1"},
		{[]string{"--read-timeout", "0"}, "--read-timeout and --write-timeout must be positive"},
		{[]string{"--log-format", "xml"}, `--log-format "xml": use text or json`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		stdout, stderr, code := shmtest.Run(t, nil, append([]string{"host", "--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("host %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, stdout, stderr, tt.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("host %v: made %d files in the data directory before refusing", tt.args, len(entries))
		}
	}
}
