package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shmerr"
)

const (
	t0 = int64(1_700_000_000_000_000_000)
	ms = int64(time.Millisecond)
)

// leasesOf is an FSM's lease table and log time, to compare replicas.
func leasesOf(f *fsm) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("now=%d %v tokens=%x/%v", f.now, f.leases, f.tokens.sum, f.tokens.set)
}

// TestFSMLeases: a lease granted, refused to a second LOCK and to an
// unfenced write while live, written under with its token (and refused
// with another), renewed, expired by log time (not by the applying
// host's clock), kept past its deadline for the skew allowance, then
// taken over with a larger token; the old token is fenced. Two hosts
// applying the same log agree on every result, byte and lease.
func TestFSMLeases(t *testing.T) {
	h1, h2 := openHost(t), openHost(t)
	f1, f2 := newFSM(h1, t.Logf, 1000), newFSM(h2, t.Logf, 1000)
	cmds := []Command{
		{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw},                                       // 1
		{Op: OpLock, ID: "r", Lease: 1000, Skew: 500, Stamp: t0},                                      // 2: token 2
		{Op: OpLock, ID: "r", Lease: 1000, Skew: 500, Stamp: t0 + 100*ms},                             // 3: held
		{Op: OpWrite, ID: "r", Data: []byte("unfenced"), Stamp: t0 + 200*ms},                          // 4: held
		{Op: OpWrite, ID: "r", Data: []byte("fenced"), Fenced: true, Token: 2, Stamp: t0 + 300*ms},    // 5: v1
		{Op: OpWriteAt, ID: "r", Data: []byte("F"), Fenced: true, Token: 3, Stamp: t0 + 310*ms},       // 6: wrong token
		{Op: OpRenew, ID: "r", Token: 2, Lease: 2000, Skew: 500, Stamp: t0 + 900*ms},                  // 7: until t0+2900
		{Op: OpWrite, ID: "r", Data: []byte("fenced 2"), Fenced: true, Token: 2, Stamp: t0 + 2800*ms}, // 8: v2
		{Op: OpWrite, ID: "r", Data: []byte("late"), Fenced: true, Token: 2, Stamp: t0 + 3000*ms},     // 9: expired
		{Op: OpRenew, ID: "r", Token: 2, Lease: 1000, Skew: 500, Stamp: t0 + 3001*ms},                 // 10: expired
		{Op: OpLock, ID: "r", Lease: 1000, Skew: 500, Stamp: t0 + 3100*ms},                            // 11: within the skew: held
		{Op: OpWrite, ID: "r", Data: []byte("unfenced"), Stamp: t0 + 1000*ms},                         // 12: clock behind: still held
		{Op: OpLock, ID: "r", Lease: 1000, Skew: 500, Stamp: t0 + 3401*ms},                            // 13: free: token 13
		{Op: OpWrite, ID: "r", Data: []byte("stale"), Fenced: true, Token: 2, Stamp: t0 + 3402*ms},    // 14: fenced
		{Op: OpUnlock, ID: "r", Token: 2, Stamp: t0 + 3403*ms},                                        // 15: fenced
		{Op: OpUnlock, ID: "r", Token: 13, Stamp: t0 + 3404*ms},                                       // 16: ok
		{Op: OpWrite, ID: "r", Data: []byte("free"), Stamp: t0 + 3405*ms},                             // 17: v3
		{Op: OpUnlock, ID: "r", Token: 13, Stamp: t0 + 3406*ms},                                       // 18: fenced
		{Op: OpLock, ID: "r", Lease: 1000, Skew: 500, Stamp: t0 + 3407*ms},                            // 19: token 19
		{Op: OpDelete, ID: "r", Stamp: t0 + 3408*ms},                                                  // 20
		{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw, Stamp: t0 + 3409*ms},                  // 21
		{Op: OpWrite, ID: "r", Data: []byte("anew"), Stamp: t0 + 3410*ms},                             // 22: the lease went with the region
		{Op: OpLock, ID: "nosuch", Lease: 1000, Skew: 500, Stamp: t0 + 3411*ms},                       // 23
		{Op: OpRenew, ID: "nosuch", Token: 2, Lease: 1000, Skew: 500, Stamp: t0 + 3412*ms},            // 24
	}
	r1, r2 := applyAll(f1, 1, cmds), applyAll(f2, 1, cmds)
	for i := range r1 {
		if r1[i].Version != r2[i].Version || fmt.Sprint(r1[i].Err) != fmt.Sprint(r2[i].Err) {
			t.Fatalf("entry %d (%s): %v against %v", i+1, cmds[i].Op, r1[i], r2[i])
		}
	}
	sameState(t, state(t, h1), state(t, h2))
	if a, b := leasesOf(f1), leasesOf(f2); a != b {
		t.Fatalf("leases differ:\n%s\n%s", a, b)
	}
	for _, w := range []struct {
		index int
		v     uint64
		err   error
	}{{2, 2, nil}, {3, 0, ErrLeaseHeld}, {4, 0, ErrLeaseHeld}, {5, 1, nil}, {6, 0, shmerr.ErrFenced}, {7, 2, nil},
		{8, 2, nil}, {9, 0, shmerr.ErrFenced}, {10, 0, shmerr.ErrFenced}, {11, 0, ErrLeaseHeld}, {12, 0, ErrLeaseHeld},
		{13, 13, nil}, {14, 0, shmerr.ErrFenced}, {15, 0, shmerr.ErrFenced}, {16, 13, nil}, {17, 3, nil}, {18, 0, shmerr.ErrFenced},
		{19, 19, nil}, {22, 1, nil}, {23, 0, shmerr.ErrNotFound}, {24, 0, shmerr.ErrNotFound}} {
		got := r1[w.index-1]
		if w.err == ErrLeaseHeld {
			// The refusal says how long the lease is still taken for.
			if !errors.Is(got.Err, shmerr.ErrLockTimeout) || got.Version == 0 {
				t.Errorf("entry %d (%s): %d, %v; want a lease-held refusal (lock timeout) with a wait hint", w.index, cmds[w.index-1].Op, got.Version, got.Err)
			}
			continue
		}
		if got.Version != w.v || !errors.Is(got.Err, w.err) || (w.err == nil) != (got.Err == nil) {
			t.Errorf("entry %d (%s): %d, %v; want %d, %v", w.index, cmds[w.index-1].Op, got.Version, got.Err, w.v, w.err)
		}
	}
	// Within the skew allowance the hint is what is left of it.
	if got := r1[10].Version; got != 300 {
		t.Errorf("entry 11: wait hint %d ms, want 300 (free at deadline + 500 ms skew)", got)
	}
	if f1.now != t0+3412*ms {
		t.Errorf("log time %d, want the last stamp %d", f1.now, t0+3412*ms)
	}
}

// TestFSMLeaseRequests: a LOCK refused while the region is held is not
// remembered, so its retry with the same Request takes the lock once it
// is free; a retry after that gets the same token, not a new grant.
func TestFSMLeaseRequests(t *testing.T) {
	f := newFSM(openHost(t), t.Logf, 1000)
	res := applyAll(f, 1, []Command{
		{Op: OpCreate, ID: "r", Size: 4096},
		{Op: OpLock, ID: "r", Lease: 100, Stamp: t0},
		{Op: OpLock, ID: "r", Lease: 100, Stamp: t0 + 10*ms, Request: 7},  // held
		{Op: OpLock, ID: "r", Lease: 100, Stamp: t0 + 101*ms, Request: 7}, // granted: token 4
		{Op: OpLock, ID: "r", Lease: 100, Stamp: t0 + 102*ms, Request: 7}, // the retry: token 4 again
		{Op: OpWrite, ID: "r", Data: []byte("x"), Stamp: t0 + 103*ms, Request: 8},
		{Op: OpWrite, ID: "r", Data: []byte("x"), Stamp: t0 + 300*ms, Request: 8}, // applies now
	})
	if !errors.Is(res[2].Err, ErrLeaseHeld) || res[3].Version != 4 || res[3].Err != nil || res[4].Version != 4 || res[4].Err != nil {
		t.Fatalf("LOCK with a Request: %v %v %v; want held, then token 4 twice", res[2], res[3], res[4])
	}
	if !errors.Is(res[5].Err, ErrLeaseHeld) || res[6].Err != nil || res[6].Version != 1 {
		t.Fatalf("a keyed write refused under a lease, then retried once free: %v, %v", res[5], res[6])
	}
	if l, ok := f.leases["r"]; !ok || l.Token != 4 || l.Deadline != t0+201*ms {
		t.Fatalf("lease %+v, %v; want token 4 until t0+201ms", l, ok)
	}
}

// TestFSMTokens: an OpTokens entry writes the whole file, atomically, as
// the tokens file of every host that applies it; a snapshot carries it
// to a host that never saw the entry.
func TestFSMTokens(t *testing.T) {
	h1, h2, h3 := openHost(t), openHost(t), openHost(t)
	f1, f2, f3 := newFSM(h1, t.Logf, 1000), newFSM(h2, t.Logf, 1000), newFSM(h3, t.Logf, 1000)
	file := []byte(`{"tokens": [{"name": "x", "token": "0123456789abcdef01", "access": "ro", "created": "2026-01-01T00:00:00Z"}]}` + "\n")
	cmds := []Command{{Op: OpTokens, Data: []byte(`{"tokens": []}`)}, {Op: OpTokens, Data: file}}
	applyAll(f1, 1, cmds)
	applyAll(f2, 1, cmds)
	for i, h := range []interface{ DataDir() string }{h1, h2} {
		got, err := os.ReadFile(filepath.Join(h.DataDir(), auth.FileName))
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("host %d: tokens file %q, %v; want %q", i+1, got, err, file)
		}
		st, _ := os.Stat(filepath.Join(h.DataDir(), auth.FileName))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("host %d: tokens file mode %v, want 0600", i+1, st.Mode().Perm())
		}
	}
	s, err := auth.Open(h1.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	if g, err := s.Check("0123456789abcdef01"); err != nil || g.Name != "x" || !g.ReadOnly {
		t.Fatalf("the token from the log: %+v, %v", g, err)
	}
	snap, _ := f1.Snapshot()
	var buf bytes.Buffer
	snap.(*snapshot).write(&buf)
	if err := f3.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(h3.DataDir(), auth.FileName))
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("restored host: tokens file %q, %v", got, err)
	}
	if a, b := leasesOf(f1), leasesOf(f3); a != b {
		t.Fatalf("after restore: %s against %s", a, b)
	}
}

// TestSnapshotLeases: leases, log time and tokens survive a snapshot,
// and a snapshot of format 1 (before leases) still reads, with none.
func TestSnapshotLeases(t *testing.T) {
	s := &snapshot{index: 9, now: t0, leases: []snapLease{{ID: "a", lease: lease{Token: 5, Deadline: t0 + 1000*ms, Free: t0 + 1500*ms}}},
		tokens: tokens{data: []byte("{}"), set: true}}
	var buf bytes.Buffer
	if err := s.write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := readSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.now != s.now || !reflect.DeepEqual(got.leases, s.leases) || !bytes.Equal(got.tokens.data, s.tokens.data) || !got.tokens.set {
		t.Fatalf("read back %+v, want %+v", got, s)
	}

	// Format 1 is format 2 without its three trailing sections (here
	// each one zero byte: log time 0, no leases, no tokens).
	buf.Reset()
	old := &snapshot{index: 3, regions: []snapRegion{{ID: "r", Size: 8, Version: 2, Content: []byte("ab")}},
		requests: []snapRequest{{ID: 1, Result: Result{Version: 2}}}}
	old.write(&buf)
	b := buf.Bytes()
	body := b[len(snapMagic) : len(b)-4]
	if !bytes.HasSuffix(body, []byte{0, 0, 0}) {
		t.Fatalf("format 2 with nothing new does not end in three zero bytes: % x", body[len(body)-3:])
	}
	v1 := append([]byte(snapMagic1), body[:len(body)-3]...)
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	got, err = readSnapshot(bytes.NewReader(v1))
	if err != nil {
		t.Fatalf("format 1 snapshot: %v", err)
	}
	if got.index != 3 || len(got.regions) != 1 || len(got.requests) != 1 || got.now != 0 || got.leases != nil || got.tokens.set {
		t.Fatalf("format 1 snapshot read as %+v", got)
	}
	// A format 1 stream with format 2's sections is refused (its
	// checksum does not come where it should).
	bad := append([]byte(snapMagic1), body...)
	bad = binary.LittleEndian.AppendUint32(bad, crc32.Checksum(bad, castagnoli))
	if _, err := readSnapshot(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("format 1 with trailing sections: %v, want ErrBadSnapshot", err)
	}
}

// TestCommandFormats: a command with nothing format 2 adds is written as
// format 1, which a node of the previous version reads; one with a stamp,
// a lease or a new op is format 2; format 1 cannot carry the new ops.
func TestCommandFormats(t *testing.T) {
	if b := (&Command{Op: OpWrite, ID: "r", Data: []byte("x")}).Append(nil); b[0] != 1 {
		t.Errorf("plain write in format %d, want 1", b[0])
	}
	for _, c := range []Command{{Op: OpWrite, ID: "r", Stamp: 1}, {Op: OpUnlock, ID: "r"}, {Op: OpWrite, ID: "r", Fenced: true}, {Op: OpTokens}} {
		if b := c.Append(nil); b[0] != 2 {
			t.Errorf("%+v in format %d, want 2", c, b[0])
		}
	}
	b := (&Command{Op: OpLock, ID: "r", Lease: 5}).Append(nil)
	b[0] = 1
	if _, err := Decode(b); !errors.Is(err, ErrBadCommand) {
		t.Errorf("a lock in format 1: %v, want ErrBadCommand", err)
	}
	var c Command
	c = Command{Op: OpLock, ID: "r", Lease: 1000}
	c.stamp(time.Unix(0, t0), 0)
	if c.Stamp != t0 || c.Skew != DefaultClockSkew.Milliseconds() {
		t.Errorf("stamped lock: stamp %d skew %d, want %d and the default skew", c.Stamp, c.Skew, t0)
	}
	c = Command{Op: OpChunk}
	if c.stamp(time.Unix(0, t0), 0); c.Stamp != 0 {
		t.Error("a chunk was stamped: only what applies to a region or a lease is")
	}
	for _, bad := range []Command{{Op: OpLock, ID: "r"}, {Op: OpRenew, ID: "r", Lease: MaxLease.Milliseconds() + 1}, {Op: OpTokens, Data: make([]byte, MaxTokensFile+1)}} {
		if err := bad.check(); err == nil {
			t.Errorf("check(%v %d ms, %d bytes) accepted", bad.Op, bad.Lease, len(bad.Data))
		}
	}
}

// TestFSMFencedCommit: a large write under a lease travels as pieces and
// a commit; the commit is checked against the lease when it applies,
// and a refused commit leaves no piece staged.
func TestFSMFencedCommit(t *testing.T) {
	f := newFSM(openHost(t), t.Logf, 1000)
	data := []byte("a large write")
	sum := crc32.Checksum(data, castagnoli)
	res := applyAll(f, 1, []Command{
		{Op: OpCreate, ID: "r", Size: 4096, Layout: region.Raw},
		{Op: OpLock, ID: "r", Lease: 1000, Stamp: t0},
		{Op: OpChunk, ID: "r", Upload: 1, Data: data},
		{Op: OpCommit, ID: "r", Upload: 1, Chunks: 1, Total: int64(len(data)), Sum: sum, Fenced: true, Token: 99, Stamp: t0 + ms},
		{Op: OpChunk, ID: "r", Upload: 2, Data: data},
		{Op: OpCommit, ID: "r", Upload: 2, Chunks: 1, Total: int64(len(data)), Sum: sum, Stamp: t0 + 2*ms},
		{Op: OpChunk, ID: "r", Upload: 3, Data: data},
		{Op: OpCommit, ID: "r", Upload: 3, Chunks: 1, Total: int64(len(data)), Sum: sum, Fenced: true, Token: 2, Stamp: t0 + 3*ms},
	})
	if !errors.Is(res[3].Err, shmerr.ErrFenced) || !errors.Is(res[5].Err, shmerr.ErrLockTimeout) || res[7].Err != nil || res[7].Version != 1 {
		t.Fatalf("commits: wrong token %v, unfenced %v, the lease's token %v", res[3], res[5], res[7])
	}
	if n, _ := f.staged(); n != 0 {
		t.Fatalf("%d uploads still staged after their commits", n)
	}
}

// BenchmarkFSMWrite: applying a 4 KiB write entry (decode, gate, region
// write) with no lease, and fenced under a live lease; and encoding the
// entry in format 1 (no stamp) and format 2 (stamped, as the leader
// proposes it).
func BenchmarkFSMWrite(b *testing.B) {
	data := make([]byte, 4096)
	for _, bc := range []struct {
		name string
		cmd  Command
	}{
		{"lease=none", Command{Op: OpWrite, ID: "r", Data: data, Stamp: t0}},
		{"lease=fenced", Command{Op: OpWrite, ID: "r", Data: data, Fenced: true, Token: 2, Stamp: t0}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFSM(openHost(b), b.Logf, 1000)
			setup := []Command{{Op: OpCreate, ID: "r", Size: 8192, Layout: region.Raw}, {Op: OpWrite, ID: "r", Data: []byte("x"), Stamp: t0}}
			if bc.cmd.Fenced {
				setup[1] = Command{Op: OpLock, ID: "r", Lease: 60000, Stamp: t0}
			}
			applyAll(f, 1, setup)
			entry := bc.cmd.Append(nil)
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := f.Apply(&raft.Log{Index: uint64(3 + i), Type: raft.LogCommand, Data: entry}).(*Result); res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		})
	}
	for _, bc := range []struct {
		name string
		cmd  Command
	}{{"encode=format1", Command{Op: OpWrite, ID: "r", Data: data}}, {"encode=format2", Command{Op: OpWrite, ID: "r", Data: data, Stamp: t0}}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 8192)
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				buf = bc.cmd.Append(buf[:0])
			}
		})
	}
}
