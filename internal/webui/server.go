package webui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// errClosing refuses work once Shutdown has begun.
var errClosing = errorf(http.StatusServiceUnavailable, "closing", "the GUI is shutting down")

// Config configures a Server. Assets is required.
type Config struct {
	// Assets holds index.html (an html/template given {{.CSRF}} and
	// {{.Version}}) and the files it loads; see internal/webui/dist.
	Assets fs.FS
	// DataDir is the data directory of the host Host mode runs (as
	// "shmgr host --data-dir"). Without it Host mode is unavailable.
	DataDir string
	// Version is shmgr's version, shown by the page and part of the
	// host's server name.
	Version string
	// AllowRemote also accepts requests whose Host header names the
	// address they came in on, for a GUI bound to a non-loopback address.
	AllowRemote bool
	// Token is the per-launch token of the URL (default: 128 random bits,
	// hex).
	Token string
	// Logf logs sessions starting and stopping (default: discard). It is
	// never called with a lock held.
	Logf func(format string, args ...any)
}

// Server is the GUI's HTTP server and the state behind it: at most one
// host (Host mode) and one client session (Client mode). It is safe for
// concurrent use.
type Server struct {
	cfg     Config
	token   string // in the URL, exchanged for the cookie
	session string // the cookie's value
	csrf    string // the header every POST carries
	index   *template.Template
	mux     *http.ServeMux
	changes feed // signalled when a session's visible state changes
	// clientRev counts the changes of what Client mode shows (see
	// clientChanged).
	clientRev atomic.Uint64
	done      chan struct{} // closed by Shutdown: ends every stream

	// hostOps serialises starting and stopping the host.
	hostOps sync.Mutex

	// mu protects the fields below.
	mu      sync.Mutex
	host    *hostSession
	client  *clientSession
	closing bool
	httpSrv *http.Server
	wg      sync.WaitGroup // every goroutine the sessions start
}

// New returns a GUI server. It fails if the assets lack a valid
// index.html.
func New(cfg Config) (*Server, error) {
	if cfg.Assets == nil {
		return nil, errors.New("webui: no assets")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Token == "" {
		cfg.Token = randomHex()
	}
	idx, err := template.ParseFS(cfg.Assets, "index.html")
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	s := &Server{cfg: cfg, token: cfg.Token, session: randomHex(), csrf: randomHex(), index: idx, done: make(chan struct{})}
	s.mux = s.routes()
	return s, nil
}

func randomHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// URL returns the address to open in a browser for a GUI listening on
// addr: loopback (127.0.0.1 when bound to all interfaces) with the
// per-launch token.
func (s *Server) URL(addr net.Addr) string {
	ta, _ := addr.(*net.TCPAddr)
	h := "127.0.0.1"
	port := 0
	if ta != nil {
		port = ta.Port
		if !ta.IP.IsUnspecified() && ta.IP != nil {
			h = ta.IP.String()
		}
	}
	return "http://" + net.JoinHostPort(h, strconv.Itoa(port)) + "/?token=" + s.token
}

// Handler returns the GUI's HTTP handler, with every check applied.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Serve serves the GUI on ln until Shutdown; it then returns
// http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	if s.httpSrv == nil {
		// WriteTimeout bounds ordinary replies; event streams clear it.
		s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	}
	hs := s.httpSrv
	s.mu.Unlock()
	return hs.Serve(ln)
}

// Shutdown ends every event stream, stops serving (waiting for requests
// in flight), closes the client session and stops the host, and waits for
// every goroutine. If ctx ends first it returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	hs, cs, hsrv := s.host, s.client, s.httpSrv
	s.host, s.client = nil, nil
	s.mu.Unlock()
	var err error
	if hsrv != nil {
		err = hsrv.Shutdown(ctx)
	}
	if cs != nil {
		cs.close()
	}
	if hs != nil {
		if herr := hs.stop(ctx); herr != nil && err == nil {
			err = herr
		}
	}
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// goroutine runs fn as a goroutine Shutdown waits for, unless shutdown
// has begun.
func (s *Server) goroutine(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// sessions returns the current host and client sessions (either may be
// nil).
func (s *Server) sessions() (*hostSession, *clientSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host, s.client
}

// clientChanged records a change of Client mode's state, reason or lock
// holder, and signals the streams. Every client status carries the
// revision it was computed at, so that the page can drop one older than
// what it shows: the connect request's answer can reach the page after a
// newer status the stream sent (the host went away in between), and the
// stream would not send that status again.
func (s *Server) clientChanged() {
	s.clientRev.Add(1)
	s.changes.notify()
}

// clientStatus is what Client mode shows: cs's status, or with no session
// (nil) the idle one, at the current revision.
func (s *Server) clientStatus(cs *clientSession) clientStatus {
	if cs == nil {
		return clientStatus{Rev: s.clientRev.Load()}
	}
	return cs.status()
}
