package region_test

import (
	"bufio"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/region"
)

// Control block offsets tests read and write raw (docs/ARCHITECTURE.md;
// TestArchitectureByteMap keeps the three in step).
const (
	ctlSeq       = 64
	ctlLock      = 128
	ctlLease     = 136
	ctlUndoState = 192
	ctlFlagBy    = 216
	ctlFence     = 272
	ctlSlots     = 2048
	ctlSlotSize  = 16
)

// TestArchitectureByteMap reads the control block's byte map from
// docs/ARCHITECTURE.md and checks every row against the code's offsets
// and sizes, and that no field of the code is missing from the document.
func TestArchitectureByteMap(t *testing.T) {
	f, err := os.Open("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct {
		off  int
		size string
		text string
	}
	var rows []row
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "byte map: checked against") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("byte map row %q: want 3 cells", line)
		}
		off, err := strconv.Atoi(strings.TrimSpace(cells[0]))
		if err != nil {
			continue // the header and the separator
		}
		rows = append(rows, row{off, strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])})
	}
	if len(rows) == 0 {
		t.Fatal("no byte map found in docs/ARCHITECTURE.md (the comment marking it is missing)")
	}
	byOff := map[int]row{}
	for _, r := range rows {
		byOff[r.off] = r
	}
	for _, want := range region.ByteMap {
		got, ok := byOff[want.Offset]
		if !ok {
			t.Errorf("code field %q at offset %d is not in the documented byte map", want.Field, want.Offset)
			continue
		}
		if !strings.HasPrefix(got.text, want.Field) {
			t.Errorf("offset %d: documented as %q, the code has %q there", want.Offset, got.text, want.Field)
		}
		wantSize := strconv.Itoa(want.Size)
		switch {
		case want.Size < 0:
			wantSize = "max write+8"
		case want.Offset == 2048:
			wantSize = strconv.Itoa(region.NumSlots) + " x " + strconv.Itoa(region.SlotSize)
		}
		if got.size != wantSize {
			t.Errorf("offset %d (%s): documented size %q, the code's is %q", want.Offset, want.Field, got.size, wantSize)
		}
		delete(byOff, want.Offset)
	}
	for off, r := range byOff {
		t.Errorf("documented field at offset %d (%q) is not in the code", off, r.text)
	}
	for _, c := range []struct {
		name      string
		doc, code int
	}{
		{"seq", ctlSeq, 64}, {"lock", ctlLock, 128}, {"lease", ctlLease, 136}, {"undo state", ctlUndoState, 192},
		{"flag holder", ctlFlagBy, 216}, {"fence", ctlFence, 272}, {"slots", ctlSlots, 2048},
	} {
		found := false
		for _, f := range region.ByteMap {
			if f.Offset == c.doc {
				found = true
			}
		}
		if !found {
			t.Errorf("the tests' offset for %s (%d) is not a field of the code", c.name, c.doc)
		}
	}
	if rows[0].off != 0 || rows[0].text != "magic `"+region.Magic+"`" {
		t.Errorf("documented magic %q, want magic `%s`", rows[0].text, region.Magic)
	}
}

func putU64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }
func putU32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
