package webui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/daemon"
	"github.com/shmgr/shmgr/internal/region"
)

// hostSession is a host running inside the GUI process (Host mode): the
// same daemon "shmgr host" runs, with the settings the page chose.
type hostSession struct {
	// h is the running host; its narrow method set (Get, List, Create,
	// Delete, DefaultID, Clients) is all the GUI uses of it.
	h        *daemon.Daemon
	addr     *net.TCPAddr
	bind     string
	notice   string // what the user should know, such as a busy port
	from     int    // the port asked for, when it was busy and another was used
	settings hostSettings
	label    []byte // the lock owner label of the GUI's writes
	dataDir  string
	// reachable is Server.reachable at start (interfaces rarely change
	// while a host runs; the stream asks every second).
	reachable []string

	// mu protects stopped. Streams hold RLock while they subscribe, so
	// that no subscription starts while the host closes.
	mu      sync.RWMutex
	stopped bool
}

// hostSettings are the host's settings the page offers, as "shmgr host"
// offers them as flags. In a start request an absent field keeps the
// default; in a status they are the values in force (or, stopped, the
// defaults).
type hostSettings struct {
	TLS           bool  `json:"tls"`
	LockTimeoutMS int64 `json:"lock_timeout_ms"`
	// IdleTimeoutMS 0: never close an idle connection.
	IdleTimeoutMS int64 `json:"idle_timeout_ms"`
	MaxConns      int   `json:"max_connections"`
	MaxRequest    int64 `json:"max_request"`
	MaxRegions    int   `json:"max_regions"`
	MaxRegionSize int64 `json:"max_region_size"`
}

// settingsOf is cfg's settings, as the page shows them.
func settingsOf(cfg daemon.Config) hostSettings {
	return hostSettings{TLS: cfg.TLS, LockTimeoutMS: cfg.LockTimeout.Milliseconds(), IdleTimeoutMS: cfg.IdleTimeout.Milliseconds(),
		MaxConns: cfg.MaxConns, MaxRequest: cfg.MaxRequest, MaxRegions: cfg.MaxRegions, MaxRegionSize: cfg.MaxRegionSize}
}

// startRequest is the body of POST /api/host/start.
type startRequest struct {
	Bind string `json:"bind"`
	Port int    `json:"port"`
	// The settings; absent: the default of "shmgr host".
	TLS           *bool  `json:"tls"`
	LockTimeoutMS *int64 `json:"lock_timeout_ms"`
	IdleTimeoutMS *int64 `json:"idle_timeout_ms"`
	MaxConns      *int   `json:"max_connections"`
	MaxRequest    *int64 `json:"max_request"`
	MaxRegions    *int   `json:"max_regions"`
	MaxRegionSize *int64 `json:"max_region_size"`
}

// config is the daemon's Config for req: "shmgr host"'s defaults, with
// what the page set.
func (s *Server) config(req startRequest, bind string, port int) daemon.Config {
	cfg := daemon.DefaultConfig(s.cfg.DataDir)
	cfg.Listen = net.JoinHostPort(bind, strconv.Itoa(port))
	cfg.ServerName = "shmgr gui " + s.cfg.Version
	cfg.Logger = slog.New(logfHandler{logf: s.cfg.Logf})
	if req.TLS != nil {
		cfg.TLS = *req.TLS
	}
	if req.LockTimeoutMS != nil {
		cfg.LockTimeout = time.Duration(*req.LockTimeoutMS) * time.Millisecond
	}
	if req.IdleTimeoutMS != nil {
		cfg.IdleTimeout = time.Duration(*req.IdleTimeoutMS) * time.Millisecond
	}
	if req.MaxConns != nil {
		cfg.MaxConns = *req.MaxConns
	}
	if req.MaxRequest != nil {
		cfg.MaxRequest = *req.MaxRequest
	}
	if req.MaxRegions != nil {
		cfg.MaxRegions = *req.MaxRegions
	}
	if req.MaxRegionSize != nil {
		cfg.MaxRegionSize = *req.MaxRegionSize
	}
	return cfg
}

// startHost runs a host on bind:port (the default port falls back to a
// free one when busy) in the data directory.
func (s *Server) startHost(req startRequest) (*hostSession, error) {
	if s.cfg.DataDir == "" {
		return nil, errorf(http.StatusConflict, "no_data_dir", "no data directory: start the GUI with --data-dir")
	}
	bind := req.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	if req.Port < 0 || req.Port > 65535 {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "bad_port", Message: fmt.Sprintf("port %d: use 1 to 65535, or 0 for a free port", req.Port), Extra: map[string]any{"port": req.Port}}
	}
	cfg := s.config(req, bind, req.Port)
	if err := cfg.Check(); err != nil {
		return nil, errorf(http.StatusBadRequest, "bad_setting", "%v", err)
	}
	// The GUI's host stops when the GUI does, not with a request's
	// context: Start gets none to abandon.
	d, err := daemon.Start(context.Background(), cfg)
	notice, from := "", 0
	if err != nil && req.Port == client.DefaultPort && errors.Is(err, syscall.EADDRINUSE) {
		cfg.Listen = net.JoinHostPort(bind, "0")
		if d, err = daemon.Start(context.Background(), cfg); err == nil {
			notice, from = fmt.Sprintf("port %d is busy: using %d", req.Port, d.Addr().Port), req.Port
		}
	}
	var oe *net.OpError
	switch {
	case err == nil:
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, &apiError{Status: http.StatusConflict, Code: "port_busy", Message: fmt.Sprintf("port %d is in use: choose another, or 0 for a free port", req.Port), Extra: map[string]any{"port": req.Port}}
	case errors.As(err, &oe) && oe.Op == "listen":
		return nil, errorf(http.StatusBadRequest, "listen", "listen on %s: %v", net.JoinHostPort(bind, strconv.Itoa(req.Port)), oe)
	case errors.Is(err, daemon.ErrBusy):
		// Most often "shmgr host" runs on this data directory already:
		// Client mode reaches it.
		return nil, &apiError{Status: http.StatusConflict, Code: "data_dir_busy",
			Message: fmt.Sprintf("another host uses %s: connect to it in Client mode, or start the GUI with another --data-dir", s.cfg.DataDir),
			Extra:   map[string]any{"dir": s.cfg.DataDir}}
	default:
		return nil, errorf(http.StatusInternalServerError, "host", "%v", err)
	}
	hs := &hostSession{h: d, addr: d.Addr(), bind: bind, notice: notice, from: from, settings: settingsOf(cfg),
		label: []byte(fmt.Sprintf("shmgr gui pid %d", os.Getpid())), dataDir: s.cfg.DataDir, reachable: s.reachable()}
	s.cfg.Logf("host mode: serving %s on %s", s.cfg.DataDir, hs.addr)
	return hs, nil
}

// stop shuts the host down (finishing requests in flight, for as long as
// ctx allows) and waits for it to close; the regions stay in place.
func (hs *hostSession) stop(ctx context.Context) error {
	hs.mu.Lock()
	if hs.stopped {
		hs.mu.Unlock()
		return nil
	}
	hs.stopped = true
	hs.mu.Unlock()
	err := hs.h.Shutdown(ctx)
	if cerr := hs.h.Close(); cerr != nil {
		err = cerr
	}
	return err
}

// logfHandler passes the daemon's log lines, info and up, to the GUI's
// Logf, marked as Host mode's.
type logfHandler struct {
	logf  func(format string, args ...any)
	attrs []slog.Attr
}

func (h logfHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h logfHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.logf("host mode: %s", b.String())
	return nil
}

func (h logfHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logfHandler{logf: h.logf, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h logfHandler) WithGroup(string) slog.Handler { return h }

// subscribe follows region id, unless the host is stopping.
func (hs *hostSession) subscribe(id string, notify chan<- struct{}) (*daemon.Region, *daemon.Sub, error) {
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	if hs.stopped {
		return nil, nil, daemon.ErrClosed
	}
	r, err := hs.h.Get(id)
	if err != nil {
		return nil, nil, err
	}
	sub, err := r.Subscribe(notify)
	return r, sub, err
}

// hostStatus is what the page shows of Host mode.
type hostStatus struct {
	Running   bool     `json:"running"`
	Listen    string   `json:"listen,omitempty"`
	Bind      string   `json:"bind,omitempty"`
	Port      int      `json:"port,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Default   string   `json:"default,omitempty"`
	DataDir   string   `json:"data_dir"`
	Token     string   `json:"token,omitempty"`
	// TLSFingerprint is the SHA-256 fingerprint of the host's TLS
	// certificate, which clients pin (--tls-fingerprint); empty without
	// TLS.
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	// Settings are the host's settings in force, or the defaults while
	// it is stopped (the page's form starts from them).
	Settings hostSettings `json:"settings"`
	Notice   string       `json:"notice,omitempty"`
	// FallbackFrom is the port asked for when it was busy (Port is the
	// one used instead).
	FallbackFrom int `json:"fallback_from,omitempty"`
	// Reachable lists the addresses other machines use to reach this
	// one (non-loopback), whatever the host binds: the page says to bind
	// 0.0.0.0 to serve them.
	Reachable []string `json:"reachable"`
	// Label is the lock owner label of the GUI's own writes, so that the
	// page can tell a lock it waits for from its own.
	Label string `json:"label,omitempty"`
	// CtlOverhead is what a region's control block costs beyond its undo
	// area (region.CtlSize(0, 0)), and ShmDir where shared memory lives
	// ("/dev/shm" on Linux, empty elsewhere): the create form shows what a
	// region will cost as the user types its size.
	CtlOverhead int64               `json:"ctl_overhead"`
	ShmDir      string              `json:"shm_dir,omitempty"`
	Regions     []regionView        `json:"regions"`
	Clients     []daemon.ClientInfo `json:"clients"`
}

// regionView is one region in the list.
type regionView struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	Layout    string `json:"layout"`
	Max       int64  `json:"max"`
	Version   uint64 `json:"version"`
	OSName    string `json:"os_name"`
	OSKind    string `json:"os_kind"`
	Durable   bool   `json:"durable"`
	Locked    bool   `json:"locked"`
	LockPID   uint32 `json:"lock_pid,omitempty"`
	LockOwner string `json:"lock_owner,omitempty"`
	// MaxWrite is the largest write the region takes, Footprint what it
	// costs in shared memory (or on disk, durable).
	MaxWrite  int64 `json:"max_write"`
	Footprint int64 `json:"footprint"`
}

func viewOf(in daemon.Info) regionView {
	return regionView{ID: in.ShmID, Size: in.Size, Layout: in.Layout, Max: in.MaxDataSize, Version: in.Version, OSName: in.OSName,
		OSKind: in.OSKind, Durable: in.Durable, Locked: in.Locked, LockPID: in.LockPID, LockOwner: in.LockOwner,
		MaxWrite: in.MaxWrite, Footprint: in.Footprint}
}

// shmDir is where shared memory objects live, for the page to name.
func shmDir() string {
	if runtime.GOOS == "linux" {
		return "/dev/shm"
	}
	return ""
}

// stoppedStatus is Host mode with no host running.
func (s *Server) stoppedStatus() hostStatus {
	return hostStatus{DataDir: s.cfg.DataDir, Reachable: s.reachable(), Settings: settingsOf(daemon.DefaultConfig(s.cfg.DataDir)),
		CtlOverhead: region.CtlSize(0, 0), ShmDir: shmDir(), Regions: []regionView{}, Clients: []daemon.ClientInfo{}}
}

// reachable lists this machine's addresses that other machines can use.
func (s *Server) reachable() []string {
	out := []string{}
	for _, a := range daemon.Addresses(net.IPv4zero) {
		if ip := net.ParseIP(a); ip != nil && !ip.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

func (hs *hostSession) status() hostStatus {
	st := hostStatus{Running: true, Listen: hs.addr.String(), Bind: hs.bind, Port: hs.addr.Port, Addresses: daemon.Addresses(hs.addr.IP),
		Default: hs.h.DefaultID(), DataDir: hs.dataDir, Token: hs.h.Token(), TLSFingerprint: hs.h.Fingerprint(), Settings: hs.settings,
		Notice: hs.notice, FallbackFrom: hs.from, Reachable: hs.reachable,
		Label: string(hs.label), CtlOverhead: region.CtlSize(0, 0), ShmDir: shmDir(), Regions: []regionView{}, Clients: hs.h.Clients()}
	for _, in := range hs.h.List() {
		st.Regions = append(st.Regions, viewOf(in))
	}
	return st
}

// createRequest is the body of POST /api/host/create.
type createRequest struct {
	ID      string `json:"id"`
	Size    int64  `json:"size"`
	Layout  string `json:"layout"`
	Durable bool   `json:"durable"`
	// MaxWrite is the largest write (raw only; 0 or absent: the whole
	// size).
	MaxWrite int64 `json:"max_write"`
}

func (hs *hostSession) create(req createRequest) (regionView, error) {
	l := region.UTF8
	if req.Layout != "" {
		var err error
		if l, err = region.ParseLayout(req.Layout); err != nil {
			return regionView{}, errorf(http.StatusBadRequest, "bad_layout", "%v", err)
		}
	}
	if req.Size < 0 {
		return regionView{}, errorf(http.StatusBadRequest, "bad_size", "size %d: must be positive", req.Size)
	}
	if req.MaxWrite != 0 {
		size := req.Size
		if size == 0 {
			size = region.DefaultSize
		}
		if err := region.CheckMaxWrite(l, size, req.MaxWrite); err != nil {
			return regionView{}, errorf(http.StatusBadRequest, "bad_max_write", "%v", err)
		}
		if req.Durable && req.MaxWrite != size {
			return regionView{}, errorf(http.StatusBadRequest, "bad_max_write", "max write %d: a durable region's undo area is its whole size (its checkpoint is restored as one write)", req.MaxWrite)
		}
	}
	r, err := hs.h.Create(req.ID, daemon.CreateOptions{Size: req.Size, Layout: l, Durable: req.Durable, MaxWrite: req.MaxWrite})
	if err != nil {
		return regionView{}, err
	}
	return viewOf(r.Info()), nil
}

// hostTarget is a region of the GUI's own host.
type hostTarget struct {
	hs *hostSession
	r  *daemon.Region
}

func (t hostTarget) describe() (layout string, max, maxWrite int64) {
	in := t.r.Info()
	return in.Layout, in.MaxDataSize, in.MaxWrite
}

func (t hostTarget) write(ctx context.Context, p []byte, ifVersion *uint64) (uint64, error) {
	var v uint64
	err := t.r.Do(func(rr *region.Region) (err error) {
		v, err = rr.Write(p, t.options(ctx, ifVersion))
		return err
	})
	return v, err
}

func (t hostTarget) writeAt(ctx context.Context, off int64, p []byte, ifVersion *uint64) (uint64, error) {
	var v uint64
	err := t.r.Do(func(rr *region.Region) (err error) {
		v, err = rr.WriteAt(off, p, t.options(ctx, ifVersion))
		return err
	})
	return v, err
}

// options are the page's writes' options: the session's label, the
// request's deadline, and the version the edit started from.
func (t hostTarget) options(ctx context.Context, ifVersion *uint64) region.WriteOptions {
	o := region.WriteOptions{Label: t.hs.label}
	if dl, ok := ctx.Deadline(); ok {
		o.Timeout = max(time.Until(dl), time.Millisecond)
	}
	if ifVersion != nil {
		o.Conditional, o.IfVersion = true, *ifVersion
	}
	return o
}

func (t hostTarget) readAt(ctx context.Context, off, n int64) ([]byte, uint64, error) {
	var b []byte
	var v uint64
	err := t.r.Do(func(rr *region.Region) error {
		var err error
		b, v, err = rr.AppendRange(nil, off, n)
		return err
	})
	return b, v, err
}

func (t hostTarget) read(ctx context.Context) ([]byte, uint64, error) {
	var b []byte
	var v uint64
	err := t.r.Do(func(rr *region.Region) error {
		var err error
		b, v, err = rr.AppendContent(nil)
		return err
	})
	return b, v, err
}
