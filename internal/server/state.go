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
	// Key is the key of the forgotten clients' hashes (32 hex digits).
	Key string `json:"key"`
	// Clients are the remembered client ids, least recently used first.
	Clients []ClientState `json:"clients"`
	// Forgotten is the compact record of the client ids evicted in this
	// session: hash and highest seq (see dedup).
	Forgotten []ForgottenState `json:"forgotten"`
}

// ClientState is one client id's recent write outcomes.
type ClientState struct {
	ID     string `json:"id"`
	MaxSeq uint64 `json:"max_seq"`
	// Floor is the highest seq the client used before its id was evicted
	// (0: never evicted).
	Floor   uint64         `json:"floor,omitempty"`
	Results []OutcomeState `json:"results"`
}

// ForgottenState is one evicted client id: its hash and highest seq.
type ForgottenState struct {
	Hash   uint64 `json:"h"`
	MaxSeq uint64 `json:"seq"`
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
	d := &s.dedup
	d.mu.Lock()
	defer d.mu.Unlock()
	st := State{Session: d.session, Key: hex.EncodeToString(d.key[:]), Clients: []ClientState{}, Forgotten: make([]ForgottenState, 0, len(d.forgotten))}
	for e := d.lru.Back(); e != nil; e = e.Prev() {
		w := e.Value.(*window)
		w.mu.Lock()
		cs := ClientState{ID: w.id, MaxSeq: w.maxSeq, Floor: w.floor, Results: []OutcomeState{}}
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
	for h, seq := range d.forgotten {
		st.Forgotten = append(st.Forgotten, ForgottenState{Hash: h, MaxSeq: seq})
	}
	return st
}

// Resume takes over a state saved by State: the session id and the
// remembered outcomes. Call it before Serve. A state that does not check
// out, or lacks a field, changes nothing: resuming a session without all
// it remembered could apply a retried write twice.
func (s *Server) Resume(st State) error {
	if b, err := hex.DecodeString(st.Session); err != nil || len(b) != 8 {
		return fmt.Errorf("session %q: want 16 hex digits", st.Session)
	}
	var key [16]byte
	if b, err := hex.DecodeString(st.Key); err != nil || len(b) != len(key) {
		return fmt.Errorf("key %q: want 32 hex digits", st.Key)
	} else {
		copy(key[:], b)
	}
	if st.Clients == nil || st.Forgotten == nil {
		return fmt.Errorf(`"clients" or "forgotten" is missing or null`)
	}
	windows := make([]*window, 0, len(st.Clients))
	for _, cs := range st.Clients {
		if cs.ID == "" || cs.Results == nil || len(cs.Results) > dedupWindow {
			return fmt.Errorf("client %q: want an id and a list of at most %d results", cs.ID, dedupWindow)
		}
		w := &window{id: cs.ID, maxSeq: cs.MaxSeq, floor: cs.Floor}
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
	d.newSession()
	d.session, d.key = st.Session, key
	for _, f := range st.Forgotten {
		d.forgotten[f.Hash] = max(d.forgotten[f.Hash], f.MaxSeq)
	}
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
