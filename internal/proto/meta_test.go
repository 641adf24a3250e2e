package proto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func utf8Meta() Meta {
	m := Meta{
		Proto:   ProtoName,
		Server:  "shmgr 0.1.0",
		HostID:  "5f2b9c0e7a1d4c33",
		ShmID:   "default",
		Size:    4096,
		Layout:  LayoutUTF8,
		Version: 7,
		OSName:  "/shmgr-0a1b2c3d-9f86d081",
		CtlName: "/shmgr-0a1b2c3d-9f86d081-c",
		OSKind:  "posix_shm",
		Nonce:   "8c1f0e3a5b7d9f21",
		Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Auth:    "none",
	}
	m.FillOffsets()
	return m
}

func TestMetaRoundTrip(t *testing.T) {
	raw := utf8Meta()
	raw.ShmID, raw.Layout, raw.Size, raw.Durable, raw.OSKind = "big.raw", LayoutRaw, 1<<30, true, "file"
	raw.Created, raw.Auth, raw.Nonce, raw.Features = time.Time{}, "", "", []string{FeatureDelta}
	raw.FillOffsets()
	for _, m := range []Meta{utf8Meta(), raw} {
		line := AppendMeta([]byte("x"), m)
		if line[0] != 'x' || line[len(line)-1] != '\n' || strings.Count(string(line), "\n") != 1 {
			t.Fatalf("AppendMeta = %q, want one line appended", line)
		}
		got, err := ParseMeta(line[1:])
		if err != nil {
			t.Fatalf("ParseMeta(%s): %v", line[1:], err)
		}
		if !metaEqual(got, m) {
			t.Errorf("ParseMeta(AppendMeta(%+v)) = %+v", m, got)
		}
	}
}

func metaEqual(a, b Meta) bool {
	if !a.Created.Equal(b.Created) {
		return false
	}
	a.Created, b.Created = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestAppendMetaFields(t *testing.T) {
	line := string(AppendMeta(nil, utf8Meta()))
	const want = `{"proto":"shmgr/1","server":"shmgr 0.1.0","host_id":"5f2b9c0e7a1d4c33","shm_id":"default",` +
		`"size":4096,"layout":"utf8","lock_offset":0,"len_offset":1,"data_offset":5,"max_data_size":4091,` +
		`"version":7,"os_name":"/shmgr-0a1b2c3d-9f86d081","ctl_name":"/shmgr-0a1b2c3d-9f86d081-c",` +
		`"os_kind":"posix_shm","nonce":"8c1f0e3a5b7d9f21","durable":false,"created":"2025-01-02T03:04:05.000000006Z","auth":"none"}` + "\n"
	if line != want {
		t.Errorf("AppendMeta =\n%s\nwant\n%s", line, want)
	}
	m := utf8Meta()
	m.Created, m.Auth = time.Time{}, ""
	if line := string(AppendMeta(nil, m)); strings.Contains(line, "created") || strings.Contains(line, "auth") {
		t.Errorf("AppendMeta with zero Created and Auth = %s, want them omitted", line)
	}
	m.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if line := string(AppendMeta(nil, m)); strings.Contains(line, "created") || !strings.HasSuffix(line, "}\n") {
		t.Errorf("AppendMeta with year 10000 = %s, want created left out", line)
	}
}

func TestParseMetaErrors(t *testing.T) {
	good := string(AppendMeta(nil, utf8Meta()))
	tests := []struct {
		name, line, want string
	}{
		{"empty", "", "not a JSON object"},
		{"null", "null\n", "not a JSON object"},
		{"array", "[1]", "not a JSON object"},
		{"string", `"shmgr/1"`, "not a JSON object"},
		{"truncated", good[:40], "unexpected end of JSON input"},
		{"trailing", strings.TrimSuffix(good, "\n") + " {}", "invalid character"},
		{"size-type", strings.Replace(good, `"size":4096`, `"size":"4096"`, 1), "cannot unmarshal"},
		{"proto", strings.Replace(good, `"shmgr/1"`, `"redis/1"`, 1), `proto "redis/1"`},
		{"proto-missing", strings.Replace(good, `"proto":"shmgr/1",`, ``, 1), `proto ""`},
		{"shm-id", strings.Replace(good, `"shm_id":"default"`, `"shm_id":"-x"`, 1), `invalid shm_id "-x"`},
		{"size-zero", strings.Replace(good, `"size":4096`, `"size":0`, 1), "size 0 is not positive"},
		{"size-small", strings.Replace(strings.Replace(good, `"size":4096`, `"size":4`, 1), `4091`, `-1`, 1), "too small for the utf8 layout"},
		{"layout", strings.Replace(good, `"layout":"utf8"`, `"layout":"utf16"`, 1), `unknown layout "utf16"`},
		{"offsets", strings.Replace(good, `"data_offset":5`, `"data_offset":4`, 1), "do not match layout utf8"},
		{"max-data", strings.Replace(good, `"max_data_size":4091`, `"max_data_size":4096`, 1), "do not match layout utf8"},
		{"raw-offsets", strings.Replace(good, `"layout":"utf8"`, `"layout":"raw"`, 1), "do not match layout raw"},
		{"nonce", strings.Replace(good, `8c1f0e3a5b7d9f21`, `8c1f0e3a5b7d9f2`, 1), "not 16 hex digits"},
		{"nonce-hex", strings.Replace(good, `8c1f0e3a5b7d9f21`, `8c1f0e3a5b7d9f2g`, 1), "not 16 hex digits"},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			_, err := ParseMeta([]byte(tt.line))
			if err == nil || !errors.Is(err, ErrBadMeta) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMeta(%q) = %v, want an ErrBadMeta containing %q", tt.line, err, tt.want)
			}
		})
	}
}

func TestParseMetaLenient(t *testing.T) {
	// Unknown fields (from a newer host), a CRLF and other versions pass.
	line := `{"proto":"shmgr/2","shm_id":"r","size":1,"layout":"raw","lock_offset":-1,"len_offset":-1,` +
		`"data_offset":0,"max_data_size":1,"future":{"x":[1,2]}}` + "\r\n"
	m, err := ParseMeta([]byte(line))
	if err != nil {
		t.Fatalf("ParseMeta(%q): %v", line, err)
	}
	if m.Proto != "shmgr/2" || m.Size != 1 || m.Layout != LayoutRaw {
		t.Errorf("ParseMeta(%q) = %+v", line, m)
	}
}
