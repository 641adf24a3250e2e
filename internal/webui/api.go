package webui

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Limits.
const (
	// maxBody bounds a request body. A write's JSON can be a few times
	// larger than its content (escapes).
	maxBody = 8 << 20
	// maxShown is the most content the page shows and edits; larger
	// content is shown truncated and read-only.
	maxShown = 1 << 20
	// writeTimeout bounds one write, waiting for the lock included.
	writeTimeout = 10 * time.Second
)

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("/api/events", get(s.handleEvents))
	m.Handle("/api/state", get(s.handleState))
	m.Handle("/api/host/start", post(s.handleHostStart))
	m.Handle("/api/host/stop", post(s.handleHostStop))
	m.Handle("/api/host/create", post(s.handleCreate))
	m.Handle("/api/host/delete", post(s.handleDelete))
	m.Handle("/api/client/connect", post(s.handleConnect))
	m.Handle("/api/client/disconnect", post(s.handleDisconnect))
	m.Handle("/api/write", post(s.handleWrite))
	m.Handle("/api/", handler(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "not_found", "no API endpoint %s", r.URL.Path)
	}))
	m.Handle("/", get(s.handleStatic))
	return m
}

// get and post restrict a handler to its method, with a JSON error.
func get(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return errorf(http.StatusMethodNotAllowed, "method", "%s %s: use GET", r.Method, r.URL.Path)
		}
		return h(w, r)
	}
}

func post(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			return errorf(http.StatusMethodNotAllowed, "method", "%s %s: use POST", r.Method, r.URL.Path)
		}
		return h(w, r)
	}
}

// decode reads a JSON body into v, refusing unknown fields and bodies
// over maxBody.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the request is larger than %d bytes", maxBody)
		}
		return errorf(http.StatusBadRequest, "bad_request", "bad JSON body: %v", err)
	}
	return nil
}

// handleStatic serves index.html (with the CSRF token) and the files it
// loads.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "" || name == "index.html" {
		var buf bytes.Buffer
		if err := s.index.Execute(&buf, map[string]string{"CSRF": s.csrf, "Version": s.cfg.Version}); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(buf.Bytes())
		return nil
	}
	b, err := fs.ReadFile(s.cfg.Assets, name)
	if err != nil || strings.HasPrefix(path.Base(name), ".") {
		return errorf(http.StatusNotFound, "not_found", "no file %s", r.URL.Path)
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	return nil
}

// stateReply is GET /api/state: both modes at once.
type stateReply struct {
	Version string       `json:"version"`
	Host    hostStatus   `json:"host"`
	Client  clientStatus `json:"client"`
}

func (s *Server) state() stateReply {
	hs, cs := s.sessions()
	st := stateReply{Version: s.cfg.Version, Host: s.stoppedStatus()}
	if hs != nil {
		st.Host = hs.status()
	}
	if cs != nil {
		st.Client = cs.status()
	}
	return st
}

func (s *Server) handleState(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.state())
	return nil
}

func (s *Server) handleHostStart(w http.ResponseWriter, r *http.Request) error {
	var req startRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	s.hostOps.Lock()
	defer s.hostOps.Unlock()
	s.mu.Lock()
	closing, running := s.closing, s.host != nil
	s.mu.Unlock()
	if closing {
		return errClosing
	}
	if running {
		return errorf(http.StatusConflict, "host_running", "a host is running already: stop it first")
	}
	hs, err := s.startHost(req)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.stop(ctx)
		return errClosing
	}
	s.host = hs
	s.mu.Unlock()
	s.changes.notify()
	writeJSON(w, http.StatusOK, hs.status())
	return nil
}

func (s *Server) handleHostStop(w http.ResponseWriter, r *http.Request) error {
	if err := decode(w, r, &struct{}{}); err != nil {
		return err
	}
	s.hostOps.Lock()
	defer s.hostOps.Unlock()
	s.mu.Lock()
	hs := s.host
	s.host = nil
	s.mu.Unlock()
	if hs != nil {
		s.changes.notify()
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := hs.stop(ctx); err != nil {
			s.cfg.Logf("host mode: stop: %v", err)
		}
		s.cfg.Logf("host mode: stopped; the regions stay in place")
		s.changes.notify()
	}
	writeJSON(w, http.StatusOK, s.stoppedStatus())
	return nil
}

// runningHost returns the host, or an error if none runs.
func (s *Server) runningHost() (*hostSession, error) {
	hs, _ := s.sessions()
	if hs == nil {
		return nil, errorf(http.StatusConflict, "host_stopped", "no host is running: start one first")
	}
	return hs, nil
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	hs, err := s.runningHost()
	if err != nil {
		return err
	}
	v, err := hs.create(req)
	if err != nil {
		return err
	}
	s.changes.notify()
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ID string `json:"id"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	hs, err := s.runningHost()
	if err != nil {
		return err
	}
	if err := hs.h.Delete(req.ID); err != nil {
		return err
	}
	s.changes.notify()
	writeJSON(w, http.StatusOK, map[string]string{"deleted": req.ID})
	return nil
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) error {
	var req connectRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	cs, err := newClientSession(req, &s.clientRev, s.clientChanged, s.changes.notify)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errClosing
	}
	old := s.client
	s.client = cs
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	s.clientChanged()
	if err := cs.dial(s.goroutine); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cs.status())
	return nil
}

func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request) error {
	if err := decode(w, r, &struct{}{}); err != nil {
		return err
	}
	s.mu.Lock()
	cs := s.client
	s.client = nil
	s.mu.Unlock()
	if cs != nil {
		cs.close()
	}
	s.clientChanged()
	writeJSON(w, http.StatusOK, s.clientStatus(nil))
	return nil
}

// target is a region the page edits: one of the GUI's own host (Host
// mode) or the client session's (Client mode).
type target interface {
	// describe returns the region's layout, the most content it holds
	// and its max write (0 from a host older than the field: the whole
	// size).
	describe() (layout string, max, maxWrite int64)
	write(ctx context.Context, p []byte, ifVersion *uint64) (uint64, error)
	read(ctx context.Context) ([]byte, uint64, error)
	// writeAt and readAt are byte-range writes and reads (raw regions).
	writeAt(ctx context.Context, off int64, p []byte, ifVersion *uint64) (uint64, error)
	readAt(ctx context.Context, off, n int64) ([]byte, uint64, error)
}

// writeRequest is the body of POST /api/write.
type writeRequest struct {
	// Target is "host" or "client".
	Target string `json:"target"`
	// Region is the shm_id in Host mode (default: the default region).
	Region  string `json:"region"`
	Content string `json:"content"`
	// Hex, for a raw region, is the bytes to write at Offset, as hex
	// digits (whitespace between them is ignored); the region's other
	// bytes stay as they are.
	Hex    string `json:"hex"`
	Offset int64  `json:"offset"`
	// IfVersion makes the write conditional: the version the edit
	// started from.
	IfVersion *uint64 `json:"if_version"`
}

func (s *Server) target(req writeRequest) (target, error) {
	hs, cs := s.sessions()
	switch req.Target {
	case "host":
		if hs == nil {
			return nil, errorf(http.StatusConflict, "host_stopped", "no host is running: start one first")
		}
		id := req.Region
		if id == "" {
			id = hs.h.DefaultID()
		}
		r, err := hs.h.Get(id)
		if err != nil {
			return nil, err
		}
		return hostTarget{hs: hs, r: r}, nil
	case "client":
		if cs == nil {
			return nil, errorf(http.StatusConflict, "not_connected", "not connected to a host")
		}
		r, err := cs.region()
		if err != nil {
			return nil, err
		}
		return clientTarget{cs: cs, r: r}, nil
	}
	return nil, errorf(http.StatusBadRequest, "bad_request", "target %q: use host or client", req.Target)
}

// handleWrite writes under the region's lock, conditionally at the
// version the edit started from: text replacing a utf8 region's content,
// or hex bytes written in place at an offset of a raw region. Content
// over the region's maximum (or past a raw region's end) is refused
// whole, never truncated; a conflict replies with the current version
// and what the page shows of it (content, or the hex window) so the page
// can explain it.
func (s *Server) handleWrite(w http.ResponseWriter, r *http.Request) error {
	var req writeRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t, err := s.target(req)
	if err != nil {
		return err
	}
	layout, max, maxWrite := t.describe()
	raw := layout != "utf8"
	var p []byte
	if raw {
		p, err = rawBytes(req, max, maxWrite)
	} else {
		p, err = textBytes(req, max)
	}
	if err != nil {
		return err
	}
	if len(p) > maxShown {
		return errorf(http.StatusRequestEntityTooLarge, "too_large_gui", "the GUI writes at most %d bytes: use 'shmgr write --file'", maxShown)
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	var v uint64
	if raw {
		v, err = t.writeAt(ctx, req.Offset, p, req.IfVersion)
	} else {
		v, err = t.write(ctx, p, req.IfVersion)
	}
	if err != nil {
		ae := classify(err)
		if ae.Code == "conflict" {
			// What the page shows of the region now: its text, or the
			// bytes of the hex window that was edited.
			shown := map[string]any{}
			var b []byte
			var cur uint64
			var rerr error
			if raw {
				b, cur, rerr = t.readAt(ctx, req.Offset, min(hexPreview, max-req.Offset))
				shown["hex"], shown["hex_offset"] = hex.EncodeToString(b), req.Offset
			} else {
				b, cur, rerr = t.read(ctx)
				shown["content"] = string(b)
			}
			if rerr == nil {
				maps.Copy(ae.Extra, shown)
				ae.Message = fmt.Sprintf("changed by someone else at version %d: nothing was written", cur)
				ae.Extra["current"] = cur
			}
		}
		return ae
	}
	reply := map[string]any{"version": v, "size": len(p)}
	if raw {
		reply["offset"] = req.Offset
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

// textBytes is the content req writes to a utf8 region holding at most
// max bytes; content over it is refused whole, never truncated.
func textBytes(req writeRequest, max int64) ([]byte, error) {
	if req.Hex != "" {
		return nil, errorf(http.StatusBadRequest, "bad_request", "hex is for raw regions: write text to a utf8 region as content")
	}
	p := []byte(req.Content)
	if int64(len(p)) > max {
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("%d bytes is more than the region holds (%d bytes at most): nothing was written", len(p), max),
			Extra:   map[string]any{"size": len(p), "max": max}}
	}
	return p, nil
}

// rawBytes is the bytes req writes at req.Offset of a raw region of size
// bytes whose writes are at most maxWrite bytes (0: size); a range that
// passes the end, or is larger than the region's undo area holds, is
// refused whole.
func rawBytes(req writeRequest, size, maxWrite int64) ([]byte, error) {
	if req.Content != "" && req.Hex == "" {
		return nil, errorf(http.StatusBadRequest, "bad_request", "a raw region takes bytes: send them as hex (\"hex\": \"00ff...\"), not content")
	}
	p, err := decodeHex(req.Hex)
	if err != nil {
		return nil, err
	}
	if req.Offset < 0 || int64(len(p)) > size-req.Offset {
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "out_of_range",
			Message: fmt.Sprintf("%d bytes at offset %d pass the end of the region (%d bytes): nothing was written", len(p), req.Offset, size),
			Extra:   map[string]any{"size": len(p), "offset": req.Offset, "max": size}}
	}
	if maxWrite > 0 && int64(len(p)) > maxWrite {
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large_write",
			Message: fmt.Sprintf("%d bytes is more than the region's max write (%d bytes: its undo area holds no more): nothing was written; write a smaller range, or recreate the region with a larger max write", len(p), maxWrite),
			Extra:   map[string]any{"size": len(p), "max_write": maxWrite}}
	}
	return p, nil
}

// decodeHex decodes pairs of hex digits, ignoring whitespace between
// them.
func decodeHex(s string) ([]byte, error) {
	digits := strings.Join(strings.Fields(s), "")
	if digits == "" {
		return nil, errorf(http.StatusBadRequest, "bad_request", "no bytes to write: send them as pairs of hex digits")
	}
	p, err := hex.DecodeString(digits)
	if err == nil {
		return p, nil
	}
	var ie hex.InvalidByteError
	if errors.As(err, &ie) {
		return nil, errorf(http.StatusBadRequest, "bad_hex", "%q is not a hex digit: write bytes as pairs of 0-9 and a-f", rune(ie))
	}
	return nil, errorf(http.StatusBadRequest, "bad_hex", "%d hex digits: write every byte as two digits", len(digits))
}
