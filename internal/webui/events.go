package webui

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shmgr/shmgr/internal/daemon"
)

// Stream timing.
const (
	// statusEvery is how often a stream refreshes what nothing pushes: the
	// host's connected clients and its regions' lock states. Content is
	// pushed the moment it commits.
	statusEvery = time.Second
	// keepAliveEvery is how often an idle stream sends a comment, so that
	// a page that went away is noticed.
	keepAliveEvery = 15 * time.Second
	// hexPreview is how many bytes of raw or binary content the page
	// shows.
	hexPreview = 1024
)

// contentEvent is a region's content as the page shows it.
type contentEvent struct {
	Region  string `json:"region"`
	Version uint64 `json:"version"`
	Content string `json:"content"`
	Size    int    `json:"size"`
	Layout  string `json:"layout"`
	Max     int64  `json:"max"`
	// ReadOnly says why the page must not edit the content: "binary" (a
	// utf8 region holding bytes that are not UTF-8) or "large" (over
	// maxShown; Content is its beginning).
	ReadOnly string `json:"read_only,omitempty"`
	// Hex is a window of raw or binary content: hexPreview bytes from
	// HexOffset. A raw region is edited in it (POST /api/write with hex).
	Hex       string `json:"hex,omitempty"`
	HexOffset int64  `json:"hex_offset,omitempty"`
	// Gone: the region does not exist (any more).
	Gone bool `json:"gone,omitempty"`
}

// makeContent is the event for content b at version v. off is where the
// hex window of raw content begins (moved back to fit the content).
func makeContent(id string, v uint64, b []byte, layout string, max, off int64) contentEvent {
	ev := contentEvent{Region: id, Version: v, Size: len(b), Layout: layout, Max: max}
	switch {
	case layout != "utf8":
		off = min(off, int64(len(b)))
		ev.Hex, ev.HexOffset = hex.EncodeToString(b[off:min(int64(len(b)), off+hexPreview)]), off
	case !utf8.Valid(b):
		ev.ReadOnly, ev.Hex = "binary", hex.EncodeToString(b[:min(len(b), hexPreview)])
	case len(b) > maxShown:
		n := maxShown
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		ev.ReadOnly, ev.Content = "large", string(b[:n])
	default:
		ev.Content = string(b)
	}
	return ev
}

// offsetParam reads the byte offset query parameter name (default 0).
func offsetParam(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	off, err := strconv.ParseInt(s, 10, 64)
	if err != nil || off < 0 {
		return 0, errorf(http.StatusBadRequest, "bad_request", "%s=%q: want a byte offset (0 or more)", name, s)
	}
	return off, nil
}

// handleEvents is the page's one EventSource: it sends the state of both
// modes, and the content of the region the page shows in each, whenever
// they change. Events: "host" (hostStatus), "hostContent" (contentEvent
// of the region named by ?region=, default the default region), "client"
// (clientStatus) and "clientContent". The hex windows of raw content
// begin at ?host_offset= and ?client_offset=.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	hostOff, err := offsetParam(r, "host_offset")
	if err != nil {
		return err
	}
	clientOff, err := offsetParam(r, "client_offset")
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut the stream.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	changes, unsubscribe := s.changes.subscribe()
	defer unsubscribe()
	st := &stream{s: s, w: w, region: r.URL.Query().Get("region"), hostOff: hostOff, clientOff: clientOff, notify: make(chan struct{}, 1)}
	defer st.close()
	fmt.Fprint(w, "retry: 1000\n\n")
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		n, err := st.update()
		if err == nil && n == 0 && time.Since(lastWrite) >= keepAliveEvery {
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
			n = 1
		}
		if err == nil && n > 0 {
			lastWrite = time.Now()
			err = rc.Flush()
		}
		if err != nil {
			return nil // the page went away; the reply has begun
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		case <-changes:
		case <-st.notify:
		case <-tick.C:
		}
	}
}

// stream is one page's event stream: what it last sent, and its
// subscription to the host region it shows.
type stream struct {
	s      *Server
	w      http.ResponseWriter
	region string // the Host mode region the page shows ("": default)
	// hostOff and clientOff begin the hex windows of raw content.
	hostOff, clientOff int64
	notify             chan struct{} // host subscription signals

	lastHost, lastClient []byte

	hs        *hostSession
	hr        *daemon.Region
	sub       *daemon.Sub
	hostVer   uint64
	hostSent  bool
	goneSent  bool
	cs        *clientSession
	clientVer uint64
	clientSnt bool
}

func (st *stream) close() {
	if st.sub != nil {
		st.sub.Close()
		st.sub, st.hr = nil, nil
	}
}

// update sends whatever changed since the last call and returns how many
// events it wrote.
func (st *stream) update() (int, error) {
	hs, cs := st.s.sessions()
	n := 0
	hst := st.s.stoppedStatus()
	if hs != nil {
		hst = hs.status()
	}
	if err := st.send("host", hst, &st.lastHost, &n); err != nil {
		return n, err
	}
	if err := st.hostContent(hs, &n); err != nil {
		return n, err
	}
	cst := st.s.clientStatus(cs)
	if err := st.send("client", cst, &st.lastClient, &n); err != nil {
		return n, err
	}
	return n, st.clientContent(cs, &n)
}

// send writes one event; with last, only if it differs from the last one.
func (st *stream) send(event string, v any, last *[]byte, n *int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if last != nil {
		if bytes.Equal(b, *last) {
			return nil
		}
		*last = b
	}
	*n++
	_, err = fmt.Fprintf(st.w, "event: %s\ndata: %s\n\n", event, b)
	return err
}

func (st *stream) hostContent(hs *hostSession, n *int) error {
	if hs != st.hs {
		st.close()
		st.hs, st.hostSent, st.goneSent = hs, false, false
	}
	if hs == nil {
		return nil
	}
	id := st.region
	if id == "" {
		id = hs.h.DefaultID()
	}
	if st.sub != nil && st.sub.Gone() {
		st.close()
	}
	if st.sub == nil {
		r, sub, err := hs.subscribe(id, st.notify)
		if err != nil {
			if errors.Is(err, daemon.ErrNotFound) && !st.goneSent {
				st.goneSent = true
				return st.send("hostContent", contentEvent{Region: id, Gone: true}, nil, n)
			}
			return nil
		}
		st.hr, st.sub, st.hostSent, st.goneSent = r, sub, false, false
	}
	snap := st.sub.Latest()
	if snap == nil || st.hostSent && snap.Version == st.hostVer {
		return nil
	}
	st.hostVer, st.hostSent = snap.Version, true
	in := st.hr.Info()
	return st.send("hostContent", makeContent(id, snap.Version, snap.Content, in.Layout, in.MaxDataSize, st.hostOff), nil, n)
}

func (st *stream) clientContent(cs *clientSession, n *int) error {
	if cs != st.cs {
		st.cs, st.clientSnt = cs, false
	}
	if cs == nil {
		return nil
	}
	ev := cs.latest.Load()
	if ev == nil || st.clientSnt && ev.Version == st.clientVer {
		return nil
	}
	r, err := cs.region()
	if err != nil {
		return nil
	}
	st.clientVer, st.clientSnt = ev.Version, true
	in := r.Info()
	return st.send("clientContent", makeContent(cs.shmID(), ev.Version, ev.Content, in.Layout, in.MaxDataSize, st.clientOff), nil, n)
}
