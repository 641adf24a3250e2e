package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmgr/shmgr/internal/proto"
)

// TestStateRoundTrip: the outcomes a server remembers, saved with State
// and taken over with Resume by another server, answer the same lookups,
// and the session id goes with them.
func TestStateRoundTrip(t *testing.T) {
	a := New(nil, Config{})
	w := a.dedup.client([]byte("c1"))
	w.record(outcome{seq: 7, version: 41})
	w.record(outcome{seq: 8, code: proto.CodeLockTimeout, msg: "lock held"})
	a.dedup.client([]byte("c2")).record(outcome{seq: 1, version: 3})

	b, err := json.Marshal(a.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	z := New(nil, Config{})
	if z.session == a.session {
		t.Fatal("two servers got the same session id")
	}
	if err := z.Resume(st); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if z.session != a.session {
		t.Errorf("session after Resume = %q, want %q", z.session, a.session)
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
		o, known, _ := z.dedup.client([]byte(tt.client)).lookup(tt.seq)
		if known != tt.known || o.version != tt.version || o.code != tt.code {
			t.Errorf("%s seq %d: %+v known %v, want version %d code %v known %v", tt.client, tt.seq, o, known, tt.version, tt.code, tt.known)
		}
	}
	// The least recently used client stays the first to go.
	if got := z.dedup.lru.Back().Value.(*window).id; got != "c1" {
		t.Errorf("least recently used after Resume = %q, want c1", got)
	}
}

// TestResumeRefuses: a state that does not check out is refused whole.
func TestResumeRefuses(t *testing.T) {
	good := "0123456789abcdef"
	tests := []struct {
		name string
		st   State
		want string
	}{
		{"bad session", State{Session: "xyz"}, "16 hex digits"},
		{"short session", State{Session: "0123"}, "16 hex digits"},
		{"no client id", State{Session: good, Clients: []ClientState{{MaxSeq: 1}}}, "want an id"},
		{"unknown code", State{Session: good, Clients: []ClientState{{ID: "c", Results: []OutcomeState{{Seq: 1, Code: "nonsense"}}}}}, "unknown code"},
		{"too many results", State{Session: good, Clients: []ClientState{{ID: "c", Results: make([]OutcomeState, dedupWindow+1)}}}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(nil, Config{})
			before := s.session
			err := s.Resume(tt.st)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resume = %v, want an error saying %q", err, tt.want)
			}
			if s.session != before || s.dedup.lru.Len() != 0 {
				t.Errorf("a refused state changed the server (session %q, %d clients)", s.session, s.dedup.lru.Len())
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
	a.dedup.client([]byte("c1")).record(outcome{seq: 1, version: 9})
	if err := a.SaveTo(dir); err != nil {
		t.Fatalf("SaveTo: %v", err)
	}
	path := filepath.Join(dir, StateFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	b := New(nil, Config{})
	st, found, err := b.ResumeFrom(dir)
	if err != nil || !found || st.Session != a.session || b.session != a.session {
		t.Fatalf("ResumeFrom = %+v, %v, %v; want session %q", st, found, err, a.session)
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
	before := c.session
	if _, found, err := c.ResumeFrom(dir); !found || err == nil || c.session != before {
		t.Errorf("ResumeFrom of a bad file = found %v, %v, session changed %v; want an error and no change", found, err, c.session != before)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a bad state file was left in place (%v)", err)
	}
}
