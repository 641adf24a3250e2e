package server

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/proto"
)

// TestStateRoundTrip: the outcomes a server remembers, saved with State
// and taken over with Resume by another server, answer the same lookups,
// and the session id goes with them.
func TestStateRoundTrip(t *testing.T) {
	a := New(nil, Config{})
	w, _ := a.dedup.client([]byte("c1"))
	w.record(outcome{seq: 7, version: 41})
	w.record(outcome{seq: 8, code: proto.CodeLockTimeout, msg: "lock held"})
	w2, _ := a.dedup.client([]byte("c2"))
	w2.record(outcome{seq: 1, version: 3})

	z := handOver(t, a)
	if z.dedup.sessionID() != a.dedup.sessionID() {
		t.Errorf("session after Resume = %q, want %q", z.dedup.sessionID(), a.dedup.sessionID())
	}
	tests := []struct {
		client  string
		seq     uint64
		known   bool
		version uint64
		code    proto.Code
	}{
		{"c1", 7, true, 41, proto.CodeUnknown},
		{"c1", 8, true, 0, proto.CodeLockTimeout},
		{"c1", 9, false, 0, proto.CodeUnknown},
		{"c2", 1, true, 3, proto.CodeUnknown},
		{"c3", 1, false, 0, proto.CodeUnknown},
	}
	for _, tt := range tests {
		w, _ := z.dedup.client([]byte(tt.client))
		o, known, _ := w.lookup(tt.seq)
		if known != tt.known || o.version != tt.version || o.code != tt.code {
			t.Errorf("%s seq %d: %+v known %v, want version %d code %v known %v", tt.client, tt.seq, o, known, tt.version, tt.code, tt.known)
		}
	}
	// The least recently used client stays the first to go.
	if got := z.dedup.lru.Back().Value.(*window).id; got != "c1" {
		t.Errorf("least recently used after Resume = %q, want c1", got)
	}
}

// handOver passes a's State through JSON to a new server, as a graceful
// restart does, and returns the new server.
func handOver(t *testing.T, a *Server) *Server {
	t.Helper()
	b, err := json.Marshal(a.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	z := New(nil, Config{})
	if z.dedup.sessionID() == a.dedup.sessionID() {
		t.Fatal("two servers got the same session id")
	}
	if err := z.Resume(st); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	return z
}

// TestResumeRefuses: a state that does not check out is refused whole.
func TestResumeRefuses(t *testing.T) {
	good, key := "0123456789abcdef", "0123456789abcdef0123456789abcdef"
	none, gone := []ClientState{}, []ForgottenState{}
	tests := []struct {
		name string
		st   State
		want string
	}{
		{"bad session", State{Session: "xyz", Key: key, Clients: none, Forgotten: gone}, "16 hex digits"},
		{"short session", State{Session: "0123", Key: key, Clients: none, Forgotten: gone}, "16 hex digits"},
		{"no key", State{Session: good, Clients: none, Forgotten: gone}, "32 hex digits"},
		{"clients null", State{Session: good, Key: key, Forgotten: gone}, `"clients" or "forgotten" is missing`},
		{"forgotten null", State{Session: good, Key: key, Clients: none}, `"clients" or "forgotten" is missing`},
		{"no client id", State{Session: good, Key: key, Forgotten: gone, Clients: []ClientState{{MaxSeq: 1, Results: []OutcomeState{}}}}, "want an id"},
		{"results null", State{Session: good, Key: key, Forgotten: gone, Clients: []ClientState{{ID: "c", MaxSeq: 1}}}, "want an id and a list"},
		{"unknown code", State{Session: good, Key: key, Forgotten: gone, Clients: []ClientState{{ID: "c", Results: []OutcomeState{{Seq: 1, Code: "nonsense"}}}}}, "unknown code"},
		{"too many results", State{Session: good, Key: key, Forgotten: gone, Clients: []ClientState{{ID: "c", Results: make([]OutcomeState, dedupWindow+1)}}}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(nil, Config{})
			before := s.dedup.sessionID()
			err := s.Resume(tt.st)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resume = %v, want an error saying %q", err, tt.want)
			}
			if s.dedup.sessionID() != before || s.dedup.lru.Len() != 0 {
				t.Errorf("a refused state changed the server (session %q, %d clients)", s.dedup.sessionID(), s.dedup.lru.Len())
			}
		})
	}
}

// TestSaveToResumeFrom: the state goes through the data directory once:
// the file is owner-only, and taken away by the start that resumes it; a
// file that does not check out is refused and removed too.
func TestSaveToResumeFrom(t *testing.T) {
	dir := t.TempDir()
	a := New(nil, Config{})
	w, _ := a.dedup.client([]byte("c1"))
	w.record(outcome{seq: 1, version: 9})
	if err := a.SaveTo(dir); err != nil {
		t.Fatalf("SaveTo: %v", err)
	}
	path := filepath.Join(dir, StateFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	b := New(nil, Config{})
	st, found, err := b.ResumeFrom(dir)
	if err != nil || !found || st.Session != a.dedup.sessionID() || b.dedup.sessionID() != a.dedup.sessionID() {
		t.Fatalf("ResumeFrom = %+v, %v, %v; want session %q", st, found, err, a.dedup.sessionID())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after ResumeFrom the file is still there (%v)", err)
	}
	if _, found, err := New(nil, Config{}).ResumeFrom(dir); found || err != nil {
		t.Errorf("a second ResumeFrom = found %v, %v; want nothing found", found, err)
	}
	if err := os.WriteFile(path, []byte(`{"session":"nope"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(nil, Config{})
	before := c.dedup.sessionID()
	if _, found, err := c.ResumeFrom(dir); !found || err == nil || c.dedup.sessionID() != before {
		t.Errorf("ResumeFrom of a bad file = found %v, %v, session changed %v; want an error and no change", found, err, c.dedup.sessionID() != before)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a bad state file was left in place (%v)", err)
	}
}

// TestDedupForgotten: a client id evicted from the window, by more other
// clients than it holds, keeps its highest seq in the compact record: a
// retry at or below it is unknown, a new seq is not, and the record goes
// through State and Resume.
func TestDedupForgotten(t *testing.T) {
	a := New(nil, Config{})
	w, _ := a.dedup.acquire([]byte("old"))
	w.record(outcome{seq: 5, version: 1})
	w.mu.Unlock()
	for i := range dedupClients + 10 {
		o, _ := a.dedup.acquire(fmt.Appendf(nil, "other-%d", i))
		o.record(outcome{seq: 1, version: 2})
		o.mu.Unlock()
	}
	st := a.State()
	if len(st.Forgotten) != 11 {
		t.Fatalf("compact record holds %d ids, want 11 (old and the first 10 others)", len(st.Forgotten))
	}
	z := New(nil, Config{})
	if err := z.Resume(st); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Server{a, z} {
		w, _ := s.dedup.acquire([]byte("old"))
		for seq, wantUnknown := range map[uint64]bool{1: true, 5: true, 6: false} {
			if _, known, unknown := w.lookup(seq); known || (unknown != "") != wantUnknown {
				t.Errorf("evicted client, seq %d: known %v, unknown %q; want unknown %v", seq, known, unknown, wantUnknown)
			}
		}
		w.mu.Unlock()
	}
}

// TestDedupSessionEnds: past the compact record's bound the session
// ends: a new session id, nothing remembered, and a connection of the old
// session refused (see conn.write).
func TestDedupSessionEnds(t *testing.T) {
	var logged []string
	s := New(nil, Config{Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	s.dedup.maxForgotten = 3
	first := s.dedup.sessionID()
	var session string
	for i := range dedupClients + 4 {
		var w *window
		w, session = s.dedup.acquire(fmt.Appendf(nil, "c-%d", i))
		w.record(outcome{seq: 1})
		w.mu.Unlock()
	}
	if session == first || s.dedup.sessionID() != session {
		t.Fatalf("session after %d clients = %q (first %q), want a new one", dedupClients+4, session, first)
	}
	if n := s.dedup.lru.Len(); n != 1 || len(s.dedup.forgotten) != 0 {
		t.Errorf("new session remembers %d windows and %d ids, want 1 and 0", n, len(s.dedup.forgotten))
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "session "+first+" ended") {
		t.Errorf("logged %q, want the end of session %s", logged, first)
	}
}

// FuzzResume: a session file's content is resumed only if it checks out
// whole; an accepted state saves and resumes back the same.
func FuzzResume(f *testing.F) {
	f.Add([]byte(`{"session":"0123456789abcdef","key":"0123456789abcdef0123456789abcdef","clients":[{"id":"c1","max_seq":2,"results":[{"seq":1,"version":4},{"seq":2,"code":"lock_timeout","msg":"held"}]}],"forgotten":[{"h":7,"seq":9}]}`))
	f.Add([]byte(`{"session":"0123456789abcdef","key":"0123456789abcdef0123456789abcdef","clients":null,"forgotten":[]}`))
	f.Add([]byte(`{"session":"0123456789abcdef","clients":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var st State
		if json.Unmarshal(b, &st) != nil {
			return
		}
		s := New(nil, Config{})
		before := s.dedup.sessionID()
		if err := s.Resume(st); err != nil {
			if s.dedup.sessionID() != before || s.dedup.lru.Len() != 0 {
				t.Fatalf("a refused state changed the server: %v", err)
			}
			return
		}
		got := s.State()
		z := New(nil, Config{})
		if err := z.Resume(got); err != nil {
			t.Fatalf("Resume of a saved state: %v", err)
		}
		again := z.State()
		if again.Session != got.Session || again.Key != got.Key || len(again.Clients) != len(got.Clients) || len(again.Forgotten) != len(got.Forgotten) {
			t.Fatalf("round trip: %+v, want %+v", again, got)
		}
	})
}

// BenchmarkDedupEvicted: what the compact record costs per client id
// pushed out of the window (heap bytes per id), and how long a new
// client's first write takes to find its window when one is evicted.
func BenchmarkDedupEvicted(b *testing.B) {
	s := New(nil, Config{})
	for i := range dedupClients {
		w, _ := s.dedup.acquire(fmt.Appendf(nil, "warm-%d", i))
		w.record(outcome{seq: 1})
		w.mu.Unlock()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		w, _ := s.dedup.acquire(fmt.Appendf(nil, "c%016x", i))
		w.record(outcome{seq: 1})
		w.mu.Unlock()
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := len(s.dedup.forgotten); n > 0 {
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/evicted-id")
	}
}

// TestSessionEndsOverTCP: when the compact record overflows, a keyed
// write on a connection of the old session is answered unknown_outcome
// (its client may be retrying a write the new session never heard of) and
// the connection is closed; a new connection announces the new session
// and writes as usual.
func TestSessionEndsOverTCP(t *testing.T) {
	ts := startServer(t, Config{}, nil, nil)
	ts.srv.dedup.mu.Lock()
	ts.srv.dedup.maxForgotten = 3
	ts.srv.dedup.mu.Unlock()
	old := dial(t, ts.addr)
	old.expect("SET default 1 cid=old seq=1\nx\n", "OK ")
	flood := dial(t, ts.addr)
	var b strings.Builder
	const n = dedupClients + 5
	for i := range n {
		fmt.Fprintf(&b, "SET default 1 cid=f%d seq=1\nx\n", i)
	}
	sent := make(chan struct{})
	go func() { defer close(sent); flood.nc.Write([]byte(b.String())) }()
	// The flood's own connection began in the old session too: the write
	// that ends it is answered unknown_outcome, and the connection closed.
	lines, closed := flood.drain()
	<-sent
	// The window holds "old" and the first 4095 flood clients; each one
	// after evicts one id, and the fourth eviction overflows the record.
	want := dedupClients - 1 + 4
	if len(lines) == 0 || !closed || !strings.Contains(lines[len(lines)-1], "ended session") || len(lines) != want {
		t.Fatalf("flood of %d clients: %d replies, closed %v, last %q; want %d: all OK but the last, unknown_outcome, then the close", n, len(lines), closed, lines[len(lines)-1], want)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "OK ") {
			t.Fatalf("flood: %q before the session ended", l)
		}
	}
	if rep := old.do("SET default 1 cid=old seq=2\ny\n"); !strings.HasPrefix(rep, "ERROR unknown_outcome") || !strings.Contains(rep, "ended session") {
		t.Errorf("keyed write on a connection of the ended session = %q, want unknown_outcome", rep)
	}
	if _, closed := old.drain(); !closed {
		t.Error("the connection of the ended session was left open")
	}
	fresh := dial(t, ts.addr)
	if !strings.Contains(fresh.meta, ts.srv.dedup.sessionID()) || strings.Contains(old.meta, ts.srv.dedup.sessionID()) {
		t.Errorf("metadata sessions: old %q, new %q; want the new one announced", old.meta, fresh.meta)
	}
	fresh.expect("SET default 1 cid=old seq=2\ny\n", "OK ")
}
