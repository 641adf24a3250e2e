package webui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmgr/shmgr/client"
)

// Client session states, as the page shows them.
const (
	stateConnecting   = "connecting"
	stateConnected    = "connected"
	stateReconnecting = "reconnecting"
	stateFailed       = "failed"
	// stateUnreachable: the host does not answer, and the region is
	// mapped on this machine, so it stays readable and writable.
	stateUnreachable = "unreachable"
)

// Lock waits: a write of the page that has waited lockCheckAfter asks the
// host who holds the region's lock, and again every lockCheckEvery.
const (
	lockCheckAfter = 300 * time.Millisecond
	lockCheckEvery = 500 * time.Millisecond
)

// connectTimeout bounds connecting: dialling, the metadata line, opening
// the region and starting the watch.
const connectTimeout = 6 * time.Second

// connectRequest is the body of POST /api/client/connect.
type connectRequest struct {
	Host        string `json:"host"`
	Port        int    `json:"port"`
	ShmID       string `json:"shm_id"`
	Mode        string `json:"mode"`
	Token       string `json:"token"`
	TLS         bool   `json:"tls"`
	Fingerprint string `json:"fingerprint"`
}

// clientSession is Client mode: one region of a host, reached with the
// public client package, and a goroutine that follows its Watcher.
type clientSession struct {
	addr    string
	id      string // protected by mu
	opts    client.Options
	ctx     context.Context
	cancel  context.CancelFunc
	notify  func()         // signals the streams (content)
	changed func()         // Server.clientChanged: a change of the status
	rev     *atomic.Uint64 // the server's client revision, which changed counts
	done    chan struct{}  // closed when run returns
	latest  atomic.Pointer[client.Event]
	// lockOwner is who holds the region's lock while a write of the page
	// waits for it (nil otherwise).
	lockOwner atomic.Pointer[string]

	// mu protects the fields below.
	mu      sync.Mutex
	state   string
	err     *apiError // why the session failed
	r       *client.Region
	w       *client.Watcher
	running bool
	closed  bool
}

// newClientSession checks the request and prepares a session; dial
// connects it.
func newClientSession(req connectRequest, rev *atomic.Uint64, changed, notify func()) (*clientSession, error) {
	h := strings.TrimSpace(req.Host)
	if h == "" {
		h = "127.0.0.1"
	}
	port := req.Port
	if hh, p, err := net.SplitHostPort(h); err == nil {
		h = hh
		if port == 0 {
			port, _ = strconv.Atoi(p)
		}
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if port == 0 {
		port = client.DefaultPort
	}
	if port < 1 || port > 65535 {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "bad_port", Message: fmt.Sprintf("port %d: use 1 to 65535", port), Extra: map[string]any{"port": port}}
	}
	o := client.DefaultOptions()
	o.DialTimeout = connectTimeout
	var err error
	if o.Mode, err = client.ParseMode(req.Mode); err != nil {
		return nil, errorf(http.StatusBadRequest, "bad_mode", "%v", err)
	}
	o.Token = strings.TrimSpace(req.Token)
	switch fp := strings.TrimSpace(req.Fingerprint); {
	case fp != "":
		if o.TLS, err = client.PinnedTLS(fp); err != nil {
			return nil, errorf(http.StatusBadRequest, "bad_fingerprint", "TLS fingerprint: %v", err)
		}
	case req.TLS:
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cs := &clientSession{addr: net.JoinHostPort(h, strconv.Itoa(port)), id: strings.TrimSpace(req.ShmID), notify: notify,
		changed: changed, rev: rev, done: make(chan struct{}), state: stateConnecting}
	// The conn and the watcher report their states here; the status is
	// computed when a stream asks.
	o.OnState = func(client.State) { changed() }
	cs.opts = o
	cs.ctx, cs.cancel = context.WithCancel(context.Background())
	return cs, nil
}

// dial connects, opens the region and starts watching it; start runs
// the session's goroutine (see Server.goroutine). On failure the session
// records why.
func (cs *clientSession) dial(start func(func()) bool) error {
	ctx, cancel := context.WithTimeout(cs.ctx, connectTimeout)
	defer cancel()
	r, err := client.Dial(ctx, cs.addr, cs.id, cs.opts)
	var w *client.Watcher
	if err == nil {
		if w, err = r.Watch(ctx, client.WatchOptions{}); err != nil {
			r.Close()
		}
	}
	if err != nil {
		if cs.ctx.Err() != nil {
			return errorf(http.StatusConflict, "cancelled", "connecting was cancelled")
		}
		ae := dialError(err, cs.addr, cs.id)
		cs.mu.Lock()
		cs.state, cs.err = stateFailed, ae
		cs.mu.Unlock()
		cs.changed()
		return ae
	}
	cs.mu.Lock()
	if !cs.closed {
		cs.id, cs.r, cs.w, cs.state = r.ID(), r, w, stateConnected
		cs.running = start(cs.run)
	}
	ok := cs.running
	cs.mu.Unlock()
	if !ok {
		w.Close()
		r.Close()
		return errorf(http.StatusConflict, "cancelled", "connecting was cancelled")
	}
	cs.changed()
	return nil
}

// run delivers the watcher's events until the session closes or the
// watch ends.
func (cs *clientSession) run() {
	defer close(cs.done)
	for {
		ev, err := cs.w.Next(cs.ctx)
		if err != nil {
			if cs.ctx.Err() == nil {
				ae := errorf(http.StatusBadGateway, "watch_ended", "the watch ended: %v", err)
				if errors.Is(err, client.ErrNotFound) {
					ae = &apiError{Status: http.StatusNotFound, Code: "region_gone", Message: fmt.Sprintf("region %q was deleted on the host", cs.id), Extra: map[string]any{"id": cs.id}}
				}
				cs.mu.Lock()
				cs.state, cs.err = stateFailed, ae
				cs.mu.Unlock()
				cs.changed()
			}
			return
		}
		cs.latest.Store(&ev)
		cs.notify()
	}
}

// close ends the session: it cancels a dial in progress, stops the
// goroutine and closes the watcher and the region.
func (cs *clientSession) close() {
	cs.cancel()
	cs.mu.Lock()
	cs.closed = true
	running, r, w := cs.running, cs.r, cs.w
	cs.mu.Unlock()
	if running {
		<-cs.done
	}
	if w != nil {
		w.Close()
	}
	if r != nil {
		r.Close()
	}
}

// clientStatus is what the page shows of Client mode.
type clientStatus struct {
	// Rev orders statuses: the page drops one older than what it shows.
	Rev         uint64 `json:"rev"`
	State       string `json:"state"` // "", connecting, connected, reconnecting, failed
	Code        string `json:"code,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Addr        string `json:"addr,omitempty"`
	ShmID       string `json:"shm_id,omitempty"`
	Mode        string `json:"mode,omitempty"`
	WhyNotLocal string `json:"why_not_local,omitempty"`
	Layout      string `json:"layout,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Max         int64  `json:"max,omitempty"`
	OSName      string `json:"os_name,omitempty"`
	// MaxWrite is the region's max write and Footprint what it costs on
	// the host's machine (0 from a host older than the fields).
	MaxWrite  int64 `json:"max_write,omitempty"`
	Footprint int64 `json:"footprint,omitempty"`
	// LockOwner is who holds the region's lock while a write of the page
	// waits for it.
	LockOwner string `json:"lock_owner,omitempty"`
}

func (cs *clientSession) status() clientStatus {
	// The revision first: a status then shows every change counted up to
	// it (each change is made before it is counted).
	rev := cs.rev.Load()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	st := clientStatus{Rev: rev, State: cs.state, Addr: cs.addr, ShmID: cs.id}
	if cs.err != nil {
		st.Code, st.Reason = cs.err.Code, cs.err.Message
	}
	if cs.r != nil && cs.state == stateConnected {
		switch cs.w.State() {
		case client.StateReconnecting:
			st.State, st.Code, st.Reason = stateReconnecting, "reconnecting", "the connection to the host was lost: reconnecting"
		case client.StateUnreachable:
			st.State, st.Code, st.Reason = stateUnreachable, "host_unreachable",
				"the host does not answer (stopped?): the region is mapped on this machine and stays readable and writable; reconnecting in the background"
		}
		if o := cs.lockOwner.Load(); o != nil {
			st.LockOwner = *o
		}
		in := cs.r.Info()
		st.Mode, st.WhyNotLocal = cs.r.Mode().String(), cs.r.WhyNotLocal()
		st.Layout, st.Size, st.Max, st.OSName = in.Layout, in.Size, in.MaxDataSize, in.OSName
		st.MaxWrite, st.Footprint = in.MaxWrite, in.Footprint
	}
	return st
}

// region returns the connected region, or an error saying why there is
// none.
func (cs *clientSession) region() (*client.Region, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.r == nil || cs.state != stateConnected {
		return nil, errorf(http.StatusConflict, "not_connected", "not connected to a host")
	}
	return cs.r, nil
}

// shmID returns the region's shm_id (the host's default region's once
// connected, if none was given).
func (cs *clientSession) shmID() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.id
}

// watchLock asks the host, once a write has waited lockCheckAfter and
// then every lockCheckEvery, who holds the region's lock, for the page to
// show; stop ends it and waits for it. It asks on a connection of its
// own: the write may hold the session's.
func (cs *clientSession) watchLock(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(lockCheckAfter)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if owner, ok := cs.lockHolder(ctx); ok {
				cs.lockOwner.Store(&owner)
				cs.changed()
			}
			t.Reset(lockCheckEvery)
		}
	}()
	return func() {
		cancel()
		<-done
		if cs.lockOwner.Swap(nil) != nil {
			cs.changed()
		}
	}
}

// lockHolder names who holds the region's lock ("" if nobody does).
func (cs *clientSession) lockHolder(ctx context.Context) (string, bool) {
	o := cs.opts
	o.OnState, o.Mode = nil, client.ModeTCP
	ctx, cancel := context.WithTimeout(ctx, lockCheckEvery)
	defer cancel()
	c, err := client.Connect(ctx, cs.addr, o)
	if err != nil {
		return "", false
	}
	defer c.Close()
	in, err := c.Info(ctx, cs.shmID())
	switch {
	case err != nil:
		return "", false
	case !in.Locked:
		return "", true
	case in.LockOwner != "":
		return in.LockOwner, true
	case in.LockPID != 0:
		return fmt.Sprintf("pid %d", in.LockPID), true
	}
	return "a program outside shmgr (the flag at offset 0)", true
}

// clientTarget is the Client mode region.
type clientTarget struct {
	cs *clientSession
	r  *client.Region
}

func (t clientTarget) describe() (layout string, max, maxWrite int64) {
	in := t.r.Info()
	return in.Layout, in.MaxDataSize, in.MaxWrite
}

func (t clientTarget) write(ctx context.Context, p []byte, ifVersion *uint64) (uint64, error) {
	defer t.cs.watchLock(ctx)()
	if ifVersion != nil {
		return t.r.WriteIf(ctx, p, *ifVersion)
	}
	return t.r.Write(ctx, p)
}

func (t clientTarget) writeAt(ctx context.Context, off int64, p []byte, ifVersion *uint64) (uint64, error) {
	defer t.cs.watchLock(ctx)()
	if ifVersion != nil {
		return t.r.WriteAtIf(ctx, off, p, *ifVersion)
	}
	return t.r.WriteAt(ctx, off, p)
}

func (t clientTarget) readAt(ctx context.Context, off, n int64) ([]byte, uint64, error) {
	return t.r.ReadAt(ctx, off, n)
}

func (t clientTarget) read(ctx context.Context) ([]byte, uint64, error) {
	return t.r.ReadVersion(ctx)
}
