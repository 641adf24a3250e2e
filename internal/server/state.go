package server

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmgr/shmgr/internal/atomicfile"

	"github.com/shmgr/shmgr/internal/proto"
)

// State is what a host hands on to its next process when it stops
// gracefully: its session id and the outcomes of the recent idempotent
// writes. A client that lost a write's reply and retries it after the
// restart then finds the same session and gets the first answer replayed,
// instead of ErrUnknownOutcome. (After a crash there is no State: the new
// process has a new session, and such a retry ends ErrUnknownOutcome.)
type State struct {
	// Session is the session id of the process that saved the state.
	Session string `json:"session"`
	// Clients are the remembered client ids, least recently used first.
	Clients []ClientState `json:"clients"`
}

// ClientState is one client id's recent write outcomes.
type ClientState struct {
	ID      string         `json:"id"`
	MaxSeq  uint64         `json:"max_seq"`
	Results []OutcomeState `json:"results"`
}

// OutcomeState is one write's answer: a version, or an error code
// (proto.Code's name) and message.
type OutcomeState struct {
	Seq     uint64 `json:"seq"`
	Version uint64 `json:"version,omitempty"`
	Code    string `json:"code,omitempty"`
	Msg     string `json:"msg,omitempty"`
}

// State returns the server's session and remembered write outcomes. Call
// it after Shutdown, when no write can change them any more.
func (s *Server) State() State {
	st := State{Session: s.session, Clients: []ClientState{}}
	d := &s.dedup
	d.mu.Lock()
	defer d.mu.Unlock()
	for e := d.lru.Back(); e != nil; e = e.Prev() {
		w := e.Value.(*window)
		w.mu.Lock()
		cs := ClientState{ID: w.id, MaxSeq: w.maxSeq}
		for _, o := range w.results {
			if !o.set {
				continue
			}
			oc := OutcomeState{Seq: o.seq, Version: o.version}
			if o.code != proto.CodeUnknown {
				oc.Code, oc.Msg = o.code.String(), o.msg
			}
			cs.Results = append(cs.Results, oc)
		}
		w.mu.Unlock()
		st.Clients = append(st.Clients, cs)
	}
	return st
}

// Resume takes over a state saved by State: the session id and the
// remembered outcomes. Call it before Serve. A state that does not check
// out changes nothing.
func (s *Server) Resume(st State) error {
	if b, err := hex.DecodeString(st.Session); err != nil || len(b) != 8 {
		return fmt.Errorf("session %q: want 16 hex digits", st.Session)
	}
	windows := make([]*window, 0, len(st.Clients))
	for _, cs := range st.Clients {
		if cs.ID == "" || len(cs.Results) > dedupWindow {
			return fmt.Errorf("client %q: %d results, want an id and at most %d", cs.ID, len(cs.Results), dedupWindow)
		}
		w := &window{id: cs.ID, maxSeq: cs.MaxSeq}
		for _, oc := range cs.Results {
			o := outcome{seq: oc.Seq, version: oc.Version, msg: oc.Msg}
			if oc.Code != "" {
				if o.code = proto.ParseCode(oc.Code); o.code == proto.CodeUnknown {
					return fmt.Errorf("client %q, seq %d: unknown code %q", cs.ID, oc.Seq, oc.Code)
				}
			}
			w.record(o)
		}
		windows = append(windows, w)
	}
	d := &s.dedup
	d.mu.Lock()
	defer d.mu.Unlock()
	s.session = st.Session
	for _, w := range windows {
		d.insert(w)
	}
	return nil
}

// StateFile is where, in its data directory, a host that stops
// gracefully leaves its State for the next start.
const StateFile = "session.json"

// ResumeFrom takes over the State that the previous host process left in
// dir, if it left one (found). It removes the file first, durably: a
// process that resumed a session and then crashed must not hand that
// session to the next one, whose clients would retry writes it never
// heard of. A file that does not check out is removed and reported.
func (s *Server) ResumeFrom(dir string) (st State, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err == nil {
		err = atomicfile.Remove(dir, StateFile)
	}
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err == nil {
		err = s.Resume(st)
	}
	if err != nil {
		return State{}, true, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, true, nil
}

// SaveTo leaves the server's State in dir for the next start (owner-only,
// replaced atomically). Call it after Shutdown.
func (s *Server) SaveTo(dir string) error {
	b, err := json.Marshal(s.State())
	if err != nil {
		return err
	}
	return atomicfile.Write(dir, StateFile, b, 0o600)
}
