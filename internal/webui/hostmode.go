package webui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/client"
	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/server"
)

// hostSession is a host running inside the GUI process (Host mode): the
// same pieces "shmgr host" wires, a host.Host served by a server.Server.
type hostSession struct {
	h       *host.Host
	srv     *server.Server
	addr    *net.TCPAddr
	bind    string
	notice  string // what the user should know, such as a busy port
	from    int    // the port asked for, when it was busy and another was used
	token   string // the admin token clients need; "" when the host is open
	served  chan error
	label   []byte // the lock owner label of the GUI's writes
	dataDir string
	// reachable is Server.reachable at start (interfaces rarely change
	// while a host runs; the stream asks every second).
	reachable []string

	// mu protects stopped. Streams hold RLock while they subscribe, so
	// that no subscription starts while the host closes.
	mu      sync.RWMutex
	stopped bool
}

// startRequest is the body of POST /api/host/start.
type startRequest struct {
	Bind string `json:"bind"`
	Port int    `json:"port"`
}

// startHost listens on bind:port (the default port falls back to a free
// one when busy), opens the host in the data directory and serves it.
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
	listen := func(port int) (net.Listener, error) {
		return server.Listen(net.JoinHostPort(bind, strconv.Itoa(port)))
	}
	ln, err := listen(req.Port)
	notice, from := "", 0
	if err != nil && req.Port == client.DefaultPort && errors.Is(err, syscall.EADDRINUSE) {
		if ln, err = listen(0); err == nil {
			notice, from = fmt.Sprintf("port %d is busy: using %d", req.Port, ln.Addr().(*net.TCPAddr).Port), req.Port
		}
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &apiError{Status: http.StatusConflict, Code: "port_busy", Message: fmt.Sprintf("port %d is in use: choose another, or 0 for a free port", req.Port), Extra: map[string]any{"port": req.Port}}
		}
		return nil, errorf(http.StatusBadRequest, "listen", "listen on %s: %v", net.JoinHostPort(bind, strconv.Itoa(req.Port)), err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	cfg := host.DefaultConfig(s.cfg.DataDir)
	cfg.Logf = s.cfg.Logf
	h, report, err := host.Open(cfg)
	if err != nil {
		ln.Close()
		if errors.Is(err, host.ErrBusy) {
			// Most often "shmgr host" runs on this data directory already:
			// Client mode reaches it.
			return nil, &apiError{Status: http.StatusConflict, Code: "data_dir_busy",
				Message: fmt.Sprintf("another host uses %s: connect to it in Client mode, or start the GUI with another --data-dir", s.cfg.DataDir),
				Extra:   map[string]any{"dir": s.cfg.DataDir}}
		}
		return nil, errorf(http.StatusInternalServerError, "host", "%v", err)
	}
	for _, line := range report {
		s.cfg.Logf("host: %s", line)
	}
	hs := &hostSession{h: h, addr: addr, bind: bind, notice: notice, from: from, served: make(chan error, 1),
		label: []byte(fmt.Sprintf("shmgr gui pid %d", os.Getpid())), dataDir: s.cfg.DataDir, reachable: s.reachable()}
	// As "shmgr host" does: a host reachable from other machines requires
	// the admin token of its data directory.
	var store *auth.Store
	if !addr.IP.IsLoopback() {
		if store, err = auth.Open(s.cfg.DataDir); err == nil {
			_, err = store.EnsureAdmin() // a token file without one gives a host nobody can use
		}
		if err != nil {
			ln.Close()
			h.Close()
			return nil, errorf(http.StatusInternalServerError, "host", "tokens: %v", err)
		}
		hs.token = store.Admin()
	}
	hs.srv = server.New(h, server.Config{
		ServerName:  "shmgr gui " + s.cfg.Version,
		IdleTimeout: 10 * time.Minute,
		BusyPoll:    server.DefaultBusyPoll,
		Auth:        store,
		Logf:        s.cfg.Logf,
	})
	// As "shmgr host" does: take over the session a host stopped
	// gracefully left, and leave ours at stop.
	if st, found, err := hs.srv.ResumeFrom(s.cfg.DataDir); err != nil {
		s.cfg.Logf("host mode: not resuming the previous session: %v", err)
	} else if found {
		s.cfg.Logf("host mode: resumed session %s (%d clients' recent writes)", st.Session, len(st.Clients))
	}
	if !s.goroutine(func() { hs.served <- hs.srv.Serve(ln) }) {
		ln.Close()
		h.Close()
		return nil, errClosing
	}
	s.cfg.Logf("host mode: serving %s on %s", s.cfg.DataDir, addr)
	return hs, nil
}

// stop shuts the server down (finishing requests in flight) and closes
// the host; the regions stay in place.
func (hs *hostSession) stop(ctx context.Context) error {
	hs.mu.Lock()
	if hs.stopped {
		hs.mu.Unlock()
		return nil
	}
	hs.stopped = true
	hs.mu.Unlock()
	err := hs.srv.Shutdown(ctx)
	<-hs.served
	if serr := hs.srv.SaveTo(hs.dataDir); serr != nil && err == nil {
		err = fmt.Errorf("saving the session for the next start: %w", serr)
	}
	if cerr := hs.h.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// subscribe follows region id, unless the host is stopping.
func (hs *hostSession) subscribe(id string, notify chan<- struct{}) (*host.Region, *host.Sub, error) {
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	if hs.stopped {
		return nil, nil, host.ErrClosed
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
	Notice    string   `json:"notice,omitempty"`
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
	Clients     []server.ClientInfo `json:"clients"`
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

func viewOf(in host.Info) regionView {
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
	return hostStatus{DataDir: s.cfg.DataDir, Reachable: s.reachable(), CtlOverhead: region.CtlSize(0, 0), ShmDir: shmDir(), Regions: []regionView{}, Clients: []server.ClientInfo{}}
}

// reachable lists this machine's addresses that other machines can use.
func (s *Server) reachable() []string {
	out := []string{}
	for _, a := range server.Addresses(net.IPv4zero) {
		if ip := net.ParseIP(a); ip != nil && !ip.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

func (hs *hostSession) status() hostStatus {
	st := hostStatus{Running: true, Listen: hs.addr.String(), Bind: hs.bind, Port: hs.addr.Port, Addresses: server.Addresses(hs.addr.IP),
		Default: hs.h.DefaultID(), DataDir: hs.dataDir, Token: hs.token, Notice: hs.notice, FallbackFrom: hs.from, Reachable: hs.reachable,
		Label: string(hs.label), CtlOverhead: region.CtlSize(0, 0), ShmDir: shmDir(), Regions: []regionView{}, Clients: hs.srv.Clients()}
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
	r, err := hs.h.Create(req.ID, host.CreateOptions{Size: req.Size, Layout: l, Durable: req.Durable, MaxWrite: req.MaxWrite})
	if err != nil {
		return regionView{}, err
	}
	return viewOf(r.Info()), nil
}

// hostTarget is a region of the GUI's own host.
type hostTarget struct {
	hs *hostSession
	r  *host.Region
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
