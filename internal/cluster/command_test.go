package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// TestCommandRoundTrip: every field survives Append and Decode.
func TestCommandRoundTrip(t *testing.T) {
	for _, c := range append(history(), Command{Op: OpCreate, ID: "d", Size: 1 << 40, Layout: region.Raw, Durable: true, MaxWrite: 1 << 20},
		Command{Op: OpCommit, ID: "x", Upload: 1<<64 - 1, Chunks: 1<<32 - 1, Total: 1<<63 - 1, Sum: 1<<32 - 1, WriteAt: true, Conditional: true, IfVersion: 1<<64 - 1, Request: 1<<64 - 1},
		Command{Op: OpCommit, ID: "x", Upload: 1, Fenced: true, Token: 1<<64 - 1, Stamp: 1<<63 - 1},
		Command{Op: OpRenew, ID: "x", Token: 9, Lease: 60000, Skew: 1<<63 - 1, Request: 3}) {
		got, err := Decode(c.Append(nil))
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip:\n%+v\n%+v", got, c)
		}
	}
}

// TestDecodeErrors: malformed entries are refused with ErrBadCommand.
func TestDecodeErrors(t *testing.T) {
	good := (&Command{Op: OpWrite, ID: "r", Data: []byte("x")}).Append(nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:2]},
		{"format", append([]byte{3}, good[1:]...)},
		{"format 2 numbers missing", append([]byte{2}, good[1:len(good)-1]...)},
		{"op zero", append([]byte{1, 0}, good[2:]...)},
		{"op unknown", append([]byte{2, 11}, good[2:]...)},
		{"new op in format 1", append([]byte{1, 7}, good[2:]...)},
		{"flags", append([]byte{1, 3, 0x80}, good[3:]...)},
		{"id too long", append([]byte{1, 3, 0, 65}, bytes.Repeat([]byte("a"), 65)...)},
		{"id past end", []byte{1, 3, 0, 5, 'a'}},
		{"numbers missing", good[:5]},
		{"layout out of range", []byte{1, 1, 0, 1, 'r', 0, 0x80, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"seq out of range", []byte{1, 5, 0, 1, 'r', 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0}},
	} {
		_, err := Decode(tc.b)
		if !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v, want ErrBadCommand", tc.name, err)
		}
		if strings.HasSuffix(tc.name, "out of range") && !strings.Contains(fmt.Sprint(err), "out of range") {
			t.Errorf("%s: %v, want a number out of range", tc.name, err)
		}
	}
}

// FuzzDecode: Decode never panics, and what it accepts encodes back to a
// command that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, c := range history() {
		f.Add(c.Append(nil))
	}
	f.Add([]byte{1, 6, 7, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(c.Append(nil))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
	})
}

// FuzzReadSnapshot: a snapshot stream of any bytes is read or refused,
// never a panic, and what is read writes back to the same bytes.
func FuzzReadSnapshot(f *testing.F) {
	s := &snapshot{regions: []snapRegion{{ID: "a", Size: 4096, Layout: region.UTF8, Nonce: "00ff", Version: 3, Content: []byte("héllo")},
		{ID: "b", Size: 64, Layout: region.Raw, MaxWrite: 8, Version: 1 << 40, Content: make([]byte, 64)}},
		uploads:  []snapUpload{{ID: 9, Last: 12, Parts: [][]byte{[]byte("ab"), []byte("c")}}},
		requests: []snapRequest{{ID: 5, Result: Result{Version: 3}}, {ID: 6, Result: Result{Err: &remoteError{kind: shmerr.ErrConflict, msg: "version conflict"}}}},
		now:      1 << 60, leases: []snapLease{{ID: "a", lease: lease{Token: 7, Deadline: 1<<60 + 5, Free: 1<<60 + 9}}},
		tokens: tokens{data: []byte(`{"tokens": []}`), set: true}}
	var buf bytes.Buffer
	s.write(&buf)
	f.Add(buf.Bytes())
	buf.Reset()
	(&snapshot{}).write(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readSnapshot(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v is not ErrBadSnapshot", err)
			}
			return
		}
		var out bytes.Buffer
		if err := got.write(&out); err != nil {
			t.Fatal(err)
		}
		if _, err := readSnapshot(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("rewritten snapshot refused: %v", err)
		}
	})
}
