package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// openHost opens a host on a fresh data directory (its own instance, so
// its own shared-memory names) and removes every object it made when the
// test ends.
func openHost(t testing.TB) *host.Host {
	t.Helper()
	h, _, err := host.Open(host.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeHost(t, h) })
	return h
}

// closeHost closes h, removes its objects and fails the test if any
// object with its prefix is left in /dev/shm.
func closeHost(t testing.TB, h *host.Host) {
	infos := h.List()
	h.Close()
	prefix := ""
	for _, in := range infos {
		if !in.Durable {
			shm.Remove(in.OSName)
			shm.Remove(in.CtlName)
			prefix = in.OSName[:strings.LastIndexByte(in.OSName, '-')+1]
		}
	}
	if left, _ := shm.List(prefix); prefix != "" && len(left) > 0 {
		t.Errorf("shared-memory objects left behind: %v", left)
	}
}

// state is every region of a host: shm_id -> version and content.
func state(t testing.TB, h *host.Host) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range h.List() {
		b, v := readRegion(t, h, in.ShmID)
		out[in.ShmID] = fmt.Sprintf("%s size=%d v=%d crc=%08x len=%d", in.Layout, in.Size, v, crc32.ChecksumIEEE(b), len(b))
	}
	return out
}

func sameState(t testing.TB, a, b map[string]string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d regions against %d:\n%v\n%v", len(a), len(b), a, b)
	}
	for id, s := range a {
		if b[id] != s {
			t.Fatalf("region %q: %s against %s", id, s, b[id])
		}
	}
}

// history is a log with every kind of entry and every kind of outcome:
// creates, a create that exists, writes whole and by range, conditional
// writes that apply and that conflict, a chunked write, an abandoned
// upload, bad UTF-8, out of range, a delete and a re-create.
func history() []Command {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
	var out []Command
	out = append(out,
		Command{Op: OpCreate, ID: "raw", Size: 1 << 17, Layout: region.Raw},
		Command{Op: OpCreate, ID: "txt", Size: 4096, Layout: region.UTF8},
		Command{Op: OpCreate, ID: "txt", Size: 4096, Layout: region.UTF8}, // exists
		Command{Op: OpWrite, ID: "txt", Data: []byte("héllo wörld")},
		Command{Op: OpWriteAt, ID: "txt", Off: 1, Data: []byte("a")}, // splits é
		Command{Op: OpWriteAt, ID: "txt", Off: 7, Data: []byte("WORLD")},
		Command{Op: OpWrite, ID: "txt", Data: []byte{0xff}}, // bad utf8
		Command{Op: OpWrite, ID: "txt", Conditional: true, IfVersion: 2, Data: []byte("cond ok")},
		Command{Op: OpWrite, ID: "txt", Conditional: true, IfVersion: 2, Data: []byte("conflict")},
		Command{Op: OpWriteAt, ID: "raw", Off: 1<<17 - 2, Data: []byte("xyz")}, // out of range
		Command{Op: OpWrite, ID: "nosuch", Data: []byte("x")},
		Command{Op: OpWrite, ID: "default", Data: []byte("default content")},
	)
	// A chunked write of big at offset 100, in 7 pieces.
	const piece = 12000
	n := (len(big) + piece - 1) / piece
	for i := 0; i < n; i++ {
		out = append(out, Command{Op: OpChunk, ID: "raw", Upload: 7, Seq: uint32(i), Data: big[i*piece : min((i+1)*piece, len(big))]})
	}
	// An upload whose leader died after two pieces: never committed.
	out = append(out, Command{Op: OpChunk, ID: "raw", Upload: 9, Seq: 0, Data: []byte("lost")})
	out = append(out, Command{Op: OpCommit, ID: "raw", Upload: 7, Chunks: uint32(n), Total: int64(len(big)), Sum: crc32.Checksum(big, castagnoli), WriteAt: true, Off: 100})
	out = append(out,
		Command{Op: OpCommit, ID: "raw", Upload: 7, Chunks: uint32(n), Total: int64(len(big))}, // taken already
		Command{Op: OpCreate, ID: "gone", Size: 4096},
		Command{Op: OpWrite, ID: "gone", Data: []byte("1")},
		Command{Op: OpDelete, ID: "gone"},
		Command{Op: OpCreate, ID: "gone", Size: 8192},
		Command{Op: OpDelete, ID: "default"}, // refused
	)
	// Leases and tokens, on log time: a lease on txt, refused a second
	// time and to an unfenced write, written under, renewed, then
	// expired and taken over; the tokens file replaced.
	const t0, ms = int64(1_700_000_000_000_000_000), int64(1_000_000)
	out = append(out,
		Command{Op: OpLock, ID: "txt", Lease: 1000, Skew: 500, Stamp: t0},
		Command{Op: OpLock, ID: "txt", Lease: 1000, Skew: 500, Stamp: t0 + 100*ms},    // held
		Command{Op: OpWrite, ID: "txt", Data: []byte("unfenced"), Stamp: t0 + 200*ms}, // held
		Command{Op: OpWrite, ID: "txt", Data: []byte("fenced"), Fenced: true, Token: uint64(len(out) + 1), Stamp: t0 + 300*ms},
		Command{Op: OpRenew, ID: "txt", Token: uint64(len(out) + 1), Lease: 2000, Skew: 500, Stamp: t0 + 900*ms},
		Command{Op: OpTokens, Data: []byte(`{"tokens": []}` + "\n"), Stamp: t0 + 950*ms},
		Command{Op: OpLock, ID: "nosuch", Lease: 1000, Skew: 500, Stamp: t0 + 960*ms},
		Command{Op: OpWrite, ID: "txt", Data: []byte("late"), Fenced: true, Token: uint64(len(out) + 1), Stamp: t0 + 3000*ms}, // expired
		Command{Op: OpLock, ID: "txt", Lease: 1000, Skew: 500, Stamp: t0 + 1000*ms},                                           // clock behind: log time stays, still held
		Command{Op: OpLock, ID: "txt", Lease: 1000, Skew: 500, Stamp: t0 + 3500*ms},                                           // free: taken over
		Command{Op: OpUnlock, ID: "txt", Token: uint64(len(out) + 1), Stamp: t0 + 3600*ms},                                    // the old lease: fenced
	)
	return out
}

// applyAll applies cmds from index first on and returns the results.
func applyAll(f *fsm, first uint64, cmds []Command) []Result {
	var out []Result
	for i, c := range cmds {
		res := f.Apply(&raft.Log{Index: first + uint64(i), Type: raft.LogCommand, Data: c.Append(nil)}).(*Result)
		out = append(out, *res)
	}
	return out
}

// TestFSMDeterministic: the same log applied on two hosts gives the same
// regions, bytes, versions and errors; and the outcomes are the ones each
// entry asks for.
func TestFSMDeterministic(t *testing.T) {
	h1, h2 := openHost(t), openHost(t)
	f1, f2 := newFSM(h1, t.Logf, 1000), newFSM(h2, t.Logf, 1000)
	cmds := history()
	r1, r2 := applyAll(f1, 1, cmds), applyAll(f2, 1, cmds)
	for i := range r1 {
		if r1[i].Version != r2[i].Version || fmt.Sprint(r1[i].Err) != fmt.Sprint(r2[i].Err) {
			t.Fatalf("entry %d (%s): %v against %v", i+1, cmds[i].Op, r1[i], r2[i])
		}
	}
	sameState(t, state(t, h1), state(t, h2))

	want := []struct {
		i   int
		v   uint64
		err error
	}{{2, 0, shmerr.ErrExists}, {3, 1, nil}, {4, 0, shmerr.ErrInvalidUTF8}, {5, 2, nil}, {6, 0, shmerr.ErrInvalidUTF8},
		{7, 3, nil}, {8, 0, shmerr.ErrConflict}, {9, 0, shmerr.ErrOutOfRange}, {10, 0, shmerr.ErrNotFound}, {11, 1, nil}}
	for _, w := range want {
		if r1[w.i].Version != w.v || !errors.Is(r1[w.i].Err, w.err) || (w.err == nil) != (r1[w.i].Err == nil) {
			t.Errorf("entry %d (%s): version %d, error %v; want %d, %v", w.i, cmds[w.i].Op, r1[w.i].Version, r1[w.i].Err, w.v, w.err)
		}
	}
	raw, _ := h1.Get("raw")
	var b []byte
	raw.Do(func(rr *region.Region) (err error) { b, _, err = rr.AppendRange(nil, 100, 80000); return err })
	if !bytes.Equal(b, bytes.Repeat([]byte("0123456789abcdef"), 5000)) || raw.Info().Version != 1 {
		t.Fatalf("the chunked write did not land whole at version 1 (version %d)", raw.Info().Version)
	}
	if n, size := f1.staged(); n != 1 || size != 4 {
		t.Fatalf("staged %d uploads of %d bytes, want the abandoned one (1, 4)", n, size)
	}
	if txt := state(t, h1)["txt"]; txt != state(t, h2)["txt"] {
		t.Fatal(txt)
	}
}

// TestFSMDropsStaleUploads: an upload no piece has joined for staleAfter
// entries is dropped on every replica alike, and its late commit fails.
func TestFSMDropsStaleUploads(t *testing.T) {
	h := openHost(t)
	f := newFSM(h, t.Logf, 10)
	applyAll(f, 1, []Command{{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw}, {Op: OpChunk, ID: "r", Upload: 1, Data: []byte("a")}})
	res := applyAll(f, 20, []Command{{Op: OpChunk, ID: "r", Upload: 2, Data: []byte("b")},
		{Op: OpCommit, ID: "r", Upload: 1, Chunks: 1, Total: 1, Sum: crc32.Checksum([]byte("a"), castagnoli)}})
	if !errors.Is(res[1].Err, shmerr.ErrUnknownOutcome) {
		t.Fatalf("commit of a dropped upload: %v, want unknown outcome", res[1].Err)
	}
	if n, _ := f.staged(); n != 1 {
		t.Fatalf("%d uploads staged, want 1", n)
	}
}

// TestSnapshotRestore: a snapshot restored onto another host gives the
// same regions, bytes and versions (and the staged upload, which commits
// there after the restore); restored onto the host it was taken from,
// it leaves the regions in place (same objects, nothing rewritten).
func TestSnapshotRestore(t *testing.T) {
	h1, h2 := openHost(t), openHost(t)
	f1, f2 := newFSM(h1, t.Logf, 1000), newFSM(h2, t.Logf, 1000)
	cmds := history()
	applyAll(f1, 1, cmds)
	// h2 starts out different: a region the snapshot lacks, a default
	// region at another version.
	applyAll(f2, 1, []Command{{Op: OpCreate, ID: "extra", Size: 4096}, {Op: OpWrite, ID: "default", Data: []byte("x")},
		{Op: OpWrite, ID: "default", Data: []byte("y")}})
	var buf bytes.Buffer
	snap, err := f1.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.(*snapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := f2.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	sameState(t, state(t, h1), state(t, h2))
	// The restored node counts the snapshot's entries as applied: Barrier
	// waits on this, not on Raft's index (which runs ahead of the FSM).
	if got, want := f2.applied.Load(), uint64(len(cmds)); got != want {
		t.Fatalf("applied index after restore %d, want the snapshot's %d", got, want)
	}
	tail := []Command{{Op: OpCommit, ID: "raw", Upload: 9, Chunks: 1, Total: 4, Sum: crc32.Checksum([]byte("lost"), castagnoli)}}
	a, b := applyAll(f1, 100, tail), applyAll(f2, 100, tail)
	if a[0].Err != nil || b[0] != a[0] {
		t.Fatalf("the staged upload's commit after restore: %v against %v", a[0], b[0])
	}
	sameState(t, state(t, h1), state(t, h2))

	before, _ := h1.Get("txt")
	snap, _ = f1.Snapshot()
	buf.Reset()
	snap.(*snapshot).write(&buf)
	if err := f1.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if after, _ := h1.Get("txt"); after != before || before.Gone() {
		t.Fatal("restoring a host's own snapshot replaced a region that was already at its version")
	}

	// A damaged snapshot is refused, whatever byte is damaged.
	good := buf.Bytes()
	for _, at := range []int{0, 9, len(good) / 2, len(good) - 1} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x40
		if _, err := readSnapshot(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("byte %d damaged: %v, want ErrBadSnapshot", at, err)
		}
	}
	if _, err := readSnapshot(bytes.NewReader(good[:len(good)-3])); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("truncated: %v, want ErrBadSnapshot", err)
	}
}

// TestFSMReset: reset leaves the default region alone, empty, at version 0.
func TestFSMReset(t *testing.T) {
	h := openHost(t)
	f := newFSM(h, t.Logf, 1000)
	applyAll(f, 1, history())
	if err := f.reset(); err != nil {
		t.Fatal(err)
	}
	fresh := openHost(t)
	sameState(t, state(t, fresh), state(t, h))
}

// TestFSMRequestsOnce: a command retried with the same Request is answered
// with the first result, success or error, and not applied again, also
// after a snapshot is restored elsewhere; a chunked retry's pieces are
// dropped; the oldest requests beyond maxRequests are forgotten.
func TestFSMRequestsOnce(t *testing.T) {
	h1, h2 := openHost(t), openHost(t)
	f1, f2 := newFSM(h1, t.Logf, 1000), newFSM(h2, t.Logf, 1000)
	data := []byte("chunked")
	cmds := []Command{
		{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw, Request: 1},
		{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw, Request: 1}, // retry: no ErrExists
		{Op: OpWrite, ID: "r", Data: []byte("a"), Request: 2},
		{Op: OpWrite, ID: "r", Data: []byte("a"), Request: 2},
		{Op: OpWrite, ID: "r", Conditional: true, IfVersion: 7, Data: []byte("b"), Request: 3},
		{Op: OpWrite, ID: "r", Data: []byte("c")},
		{Op: OpWrite, ID: "r", Conditional: true, IfVersion: 7, Data: []byte("b"), Request: 3}, // the first conflict
		{Op: OpChunk, ID: "r", Upload: 10, Data: data},
		{Op: OpCommit, ID: "r", Upload: 10, Chunks: 1, Total: int64(len(data)), Sum: crc32.Checksum(data, castagnoli), Request: 4},
		{Op: OpChunk, ID: "r", Upload: 11, Data: data}, // the retry's pieces
		{Op: OpCommit, ID: "r", Upload: 11, Chunks: 1, Total: int64(len(data)), Sum: crc32.Checksum(data, castagnoli), Request: 4},
	}
	res := applyAll(f1, 1, cmds)
	for _, tc := range []struct {
		i   int
		v   uint64
		err error
	}{{1, 0, nil}, {3, 1, nil}, {4, 0, shmerr.ErrConflict}, {5, 2, nil}, {6, 0, shmerr.ErrConflict}, {8, 3, nil}, {10, 3, nil}} {
		if res[tc.i].Version != tc.v || !errors.Is(res[tc.i].Err, tc.err) || (tc.err == nil) != (res[tc.i].Err == nil) {
			t.Errorf("entry %d: %d, %v; want %d, %v", tc.i, res[tc.i].Version, res[tc.i].Err, tc.v, tc.err)
		}
	}
	if n, _ := f1.staged(); n != 0 {
		t.Fatalf("%d uploads staged: the retry's pieces were kept", n)
	}
	if v := state(t, h1)["r"]; !strings.Contains(v, "v=3 ") {
		t.Fatalf("r: %s, want version 3", v)
	}
	var buf bytes.Buffer
	snap, _ := f1.Snapshot()
	snap.(*snapshot).write(&buf)
	if err := f2.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	again := applyAll(f2, 20, []Command{cmds[4], cmds[2]})
	if !errors.Is(again[0].Err, shmerr.ErrConflict) || again[1].Version != 1 || again[1].Err != nil {
		t.Fatalf("retries after a restore: %v", again)
	}
	sameState(t, state(t, h1), state(t, h2))

	for i := 0; i < maxRequests; i++ {
		f1.remember(uint64(100+i), Result{})
	}
	if _, ok := f1.seen(1); ok {
		t.Fatal("the oldest request is still remembered past maxRequests")
	}
	if _, ok := f1.seen(uint64(100 + maxRequests - 1)); !ok {
		t.Fatal("the newest request is forgotten")
	}
}

// TestFSMDetectsWritesBehindTheLog: a region written through its mapping
// rather than the log is reported (loudly, and counted) at the next entry
// for it; regions only the log writes are not.
func TestFSMDetectsWritesBehindTheLog(t *testing.T) {
	h := openHost(t)
	var logged []string
	f := newFSM(h, func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }, 1000)
	applyAll(f, 1, []Command{{Op: OpCreate, ID: "a", Size: 4096}, {Op: OpCreate, ID: "b", Size: 4096}, {Op: OpWrite, ID: "a", Data: []byte("1")}})
	if f.diverged.Load() != 0 {
		t.Fatalf("divergence reported with only the log writing: %v", logged)
	}
	r, _ := h.Get("a")
	if err := r.Do(func(rr *region.Region) error { _, err := rr.Write([]byte("behind"), region.WriteOptions{}); return err }); err != nil {
		t.Fatal(err)
	}
	applyAll(f, 4, []Command{{Op: OpWrite, ID: "b", Data: []byte("2")}, {Op: OpWrite, ID: "a", Data: []byte("3")}})
	if f.diverged.Load() != 1 || len(logged) != 1 || !strings.Contains(logged[0], "DIVERGED") || !strings.Contains(logged[0], `"a"`) {
		t.Fatalf("diverged %d, logged %q; want one report about a", f.diverged.Load(), logged)
	}
}
