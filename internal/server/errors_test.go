package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// TestConflictReply: a refused conditional write is answered with the
// versions as fields, "ERROR conflict <current> expected=<expected>", then
// the message an older client reads ("expected version N"); a keyed SET
// retried after its reply was lost gets the same bytes again.
func TestConflictReply(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil, nil)
	c := dial(t, ts.addr)
	c.expect("SET default 1\na\n", "OK 1\n")
	c.expect("SET default 1\nb\n", "OK 2\n")
	const want = "ERROR conflict 2 expected=1 version conflict: expected version 1, region is at version 2\n"
	if got := c.do("SET default 1 ifver=1\nc\n"); got != want {
		t.Errorf("stale SET = %q, want %q", got, want)
	}
	first := c.do("SET default 1 ifver=0 cid=k seq=1\nd\n")
	if want := "ERROR conflict 2 expected=0 version conflict: expected version 0, region is at version 2\n"; first != want {
		t.Errorf("stale keyed SET = %q, want %q", first, want)
	}
	c.expect("SET default 1\ne\n", "OK 3\n")
	if again := c.do("SET default 1 ifver=0 cid=k seq=1\nd\n"); again != first {
		t.Errorf("retried keyed SET = %q, want the first answer %q replayed", again, first)
	}
}

// TestOutcomesCounted: each request is counted with the outcome its
// reply gave, whichever handler refused it, and a replayed answer counts
// as its outcome again.
func TestOutcomesCounted(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil, nil)
	c := dial(t, ts.addr)
	c.expect("SET default 1\na\n", "OK 1\n")
	c.expect("SET default 1 ifver=0\nb\n", "ERROR conflict ")
	c.expect("SET default 1 ifver=0 cid=k seq=1\nb\n", "ERROR conflict ")
	c.expect("SET default 1 ifver=0 cid=k seq=1\nb\n", "ERROR conflict ")
	c.expect("UNLOCK default 7\n", "ERROR fenced ")
	c.expect("LOCK default wait=999999999\n", "ERROR limit ")
	c.expect("UNWATCH nope\n", "ERROR not_found ")
	c.expect("CREATE default size=8\n", "ERROR exists ")
	c.expect("DELETE default\n", "ERROR forbidden ")
	c.expect("READ\n", "OK a")
	ts.wantMetrics(t,
		`shmgr_requests_total{command="SET",outcome="ok"} 1`,
		`shmgr_requests_total{command="SET",outcome="conflict"} 3`,
		`shmgr_requests_total{command="UNLOCK",outcome="fenced"} 1`,
		`shmgr_requests_total{command="LOCK",outcome="limit"} 1`,
		`shmgr_requests_total{command="UNWATCH",outcome="not_found"} 1`,
		`shmgr_requests_total{command="CREATE",outcome="exists"} 1`,
		`shmgr_requests_total{command="DELETE",outcome="forbidden"} 1`,
		`shmgr_requests_total{command="READ",outcome="ok"} 1`,
		`shmgr_limit_refusals_total{limit="LOCK"} 1`)
}

// wantMetrics checks that the server's metrics text has each line.
func (ts *testServer) wantMetrics(t *testing.T, lines ...string) {
	t.Helper()
	var b strings.Builder
	if err := ts.m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, l := range lines {
		if !strings.Contains(text, l+"\n") {
			t.Errorf("metrics lack %q:\n%s", l, text)
		}
	}
}

// TestClassify: each kind of error becomes the reply its code and message
// say (proto.CodeOf's code, the error's message), except the deliberate
// rewordings; every reply parses back to its code, and a conflict's to
// its fields.
func TestClassify(t *testing.T) {
	conflict := &region.ConflictError{Expected: 4, Current: 9}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"conflict", fmt.Errorf("region %q: %w", "r", conflict), "ERROR conflict 9 expected=4 version conflict: expected version 4, region is at version 9\n"},
		{"conflict at version 0", &region.ConflictError{Expected: 1}, "ERROR conflict 0 expected=1 version conflict: expected version 1, region is at version 0\n"},
		{"not found", fmt.Errorf("region %q: %w", "r", host.ErrNotFound), "ERROR not_found region \"r\": region not found\n"},
		{"too large", fmt.Errorf("9 bytes: %w", region.ErrTooLarge), "ERROR too_large 9 bytes: content too large\n"},
		{"bad size", fmt.Errorf("size 3: %w", region.ErrBadSize), "ERROR bad_request size 3: bad region size\n"},
		{"lock timeout", &region.LockTimeoutError{Waited: time.Second, PID: 7}, "ERROR lock_timeout lock timeout after 1s: held by pid 7\n"},
		{"no space", host.ErrNoSpace, "ERROR limit not enough shared memory\n"},
		{"fenced", fmt.Errorf("%w: stale token", region.ErrFenced), "ERROR fenced lease lost: stale token\n"},
		{"vanished", host.ErrVanished, "ERROR unavailable region object removed and not restored\n"},
		{"closed", fmt.Errorf("create: %w", host.ErrClosed), "ERROR unavailable host is shutting down\n"},
		{"stopped", region.ErrStopped, "ERROR unavailable host is shutting down\n"},
		{"bad token", errBadToken, "ERROR unauthorized " + errBadToken.Error() + "\n"},
		{"revoked", errRevoked, "ERROR unauthorized " + revokedMsg + "\n"},
		{"other", errors.New("disk on fire\nreally"), "ERROR internal disk on fire really\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := classify(tt.err)
			got := f.append(nil)
			if string(got) != tt.want {
				t.Fatalf("reply %q, want %q", got, tt.want)
			}
			if kept := proto.AppendError(nil, f.code, f.text()); string(kept) != tt.want {
				t.Errorf("reply from the code and text the dedup record keeps %q, want %q", kept, tt.want)
			}
			r, n, err := proto.NewReplyParser(proto.DefaultMaxLine, 0).Next(got)
			if err != nil || n != len(got) || r.Code != proto.CodeOf(tt.err) {
				t.Fatalf("parsed back: %+v, %d of %d bytes, %v; want code %v", r, n, len(got), err, proto.CodeOf(tt.err))
			}
			var ce *region.ConflictError
			if errors.As(tt.err, &ce) {
				if want := (proto.ConflictFields{Current: ce.Current, Expected: ce.Expected, HasCurrent: true, HasExpected: true}); r.Conflict != want {
					t.Errorf("conflict fields %+v, want %+v", r.Conflict, want)
				}
			}
		})
	}
}

// TestStateKeepsConflict: a conflict remembered by the dedup record
// replays with its fields after State and Resume, and one saved by a host
// older than them (its text begins with the current version alone) is
// replayed as that host answered it.
func TestStateKeepsConflict(t *testing.T) {
	a := New(nil, Config{})
	w, _ := a.dedup.client([]byte("c1"))
	f := classify(&region.ConflictError{Expected: 0, Current: 5})
	w.record(outcome{seq: 1, code: f.code, msg: f.text()})
	old := "5 version conflict: expected version 0, region is at version 5"
	w.record(outcome{seq: 2, code: proto.CodeConflict, msg: old})
	zw, _ := handOver(t, a).dedup.client([]byte("c1"))
	for _, tt := range []struct {
		seq  uint64
		want string
	}{
		{1, string(f.append(nil))},
		{2, "ERROR conflict " + old + "\n"},
	} {
		o, known, _ := zw.lookup(tt.seq)
		if got := string(proto.AppendError(nil, o.code, o.msg)); !known || got != tt.want {
			t.Errorf("seq %d after Resume: known %v, reply %q; want %q", tt.seq, known, got, tt.want)
		}
	}
	if want := "ERROR conflict 5 expected=0 version conflict: expected version 0, region is at version 5\n"; string(f.append(nil)) != want {
		t.Errorf("conflict reply %q, want %q", f.append(nil), want)
	}
}
