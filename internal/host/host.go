// Package host owns a machine's shared-memory regions: it creates them,
// re-adopts them after a restart or crash, recreates those whose objects
// vanished, removes orphans, deletes them on request and keeps the
// registry (shm_id -> region) persisted in the data directory.
//
// The host package does no networking; internal/server puts it on TCP.
package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/registry"
	"github.com/shmgr/shmgr/internal/shm"
	"github.com/shmgr/shmgr/internal/shmerr"
)

// Errors returned by the host, matched with errors.Is. Each is a kind of
// package shmerr, or an error of such a kind.
var (
	// ErrNotFound: no region has this shm_id.
	ErrNotFound = shmerr.ErrNotFound
	// ErrExists: a region with this shm_id exists already.
	ErrExists = shmerr.ErrExists
	// ErrBadID: the shm_id is not valid.
	ErrBadID = shmerr.ErrBadID
	// ErrForbidden: the operation is not allowed on this region.
	ErrForbidden = shmerr.ErrForbidden
	// ErrClosed: the host has been closed.
	ErrClosed = shmerr.New(shmerr.ErrUnavailable, "host closed")
	// ErrNoSpace: not enough shared memory left for the region.
	ErrNoSpace = shmerr.New(shmerr.ErrLimit, "not enough shared memory")
	// ErrBusy: another host uses the data directory.
	ErrBusy = errors.New("data directory in use")
	// ErrLimit: a host limit (regions, region size) refuses the request.
	ErrLimit = shmerr.New(shmerr.ErrLimit, "host limit reached")
	// ErrVanished: the region's object was removed behind the host's back
	// and could not be restored yet; writes are refused, since nothing
	// written now would survive a restart.
	ErrVanished = shmerr.New(shmerr.ErrUnavailable, "region object removed and not restored")
)

// Config configures a Host. DefaultConfig fills in every default.
type Config struct {
	// DataDir holds the registry and durable regions. Required.
	DataDir string
	// DefaultID is the shm_id of the default region, created on first
	// start. Default "default".
	DefaultID string
	// DefaultSize is the default region's size. Default 4096 (the
	// documented layout).
	DefaultSize int64
	// Perm is the permission of created objects and files. Default 0600.
	Perm uint32
	// PersistEvery is how often changed versions are persisted and durable
	// regions flushed. Default 2s.
	PersistEvery time.Duration
	// Logf logs host events. Default: discard.
	Logf func(format string, args ...any)
	// MaxRegions bounds how many regions the host keeps (default 1024).
	MaxRegions int
	// MaxRegionSize bounds one region's size in bytes (default 4 GiB).
	MaxRegionSize int64
	// ShareGroup gives created objects and files to group GID (with Perm
	// letting the group in, such as 0660).
	ShareGroup bool
	// GID is the group of ShareGroup.
	GID int
	// CheckEvery is how often the host looks for region objects removed
	// behind its back, and restores them from its mappings. Default
	// DefaultCheckEvery.
	CheckEvery time.Duration
	// Lock, if set, is the lock on DataDir taken with LockDir (the caller
	// took it before touching other files in the directory); Open takes it
	// otherwise. Either way the host owns it from Open on: Close, or a
	// failed Open, releases it.
	Lock *DirLock
}

// DefaultConfig returns the defaults for a host in dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, DefaultID: "default", DefaultSize: region.DefaultSize, Perm: 0o600, PersistEvery: 2 * time.Second,
		MaxRegions: 1024, MaxRegionSize: 4 << 30, CheckEvery: DefaultCheckEvery}
}

// Host owns the regions of one data directory. It is safe for concurrent
// use.
type Host struct {
	cfg    Config
	hostID string

	// mu protects table, regions, deleting and closed. It is never held
	// while a region's content is copied, nor while Delete waits for a
	// region's users.
	mu      sync.RWMutex
	table   *registry.Table
	regions map[string]*Region
	// deleting holds the ids Delete has forgotten but whose objects it
	// has not removed yet: their OS names are still taken (they derive
	// from the id), so Create must not make them again until then.
	deleting map[string]bool
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
	lock *DirLock // held while the host owns the data directory
}

// Open opens the data directory, loads the registry, reconciles it with
// the OS and makes sure the default region exists. It returns the host and
// the problems reconciliation found and repaired, one line each (regions
// recreated, control blocks rebuilt, locks taken back, orphans removed).
func Open(cfg Config) (*Host, []string, error) {
	d := DefaultConfig(cfg.DataDir)
	if cfg.DefaultID == "" {
		cfg.DefaultID = d.DefaultID
	}
	if cfg.DefaultSize == 0 {
		cfg.DefaultSize = d.DefaultSize
	}
	if cfg.Perm == 0 {
		cfg.Perm = d.Perm
	}
	if cfg.PersistEvery == 0 {
		cfg.PersistEvery = d.PersistEvery
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = d.CheckEvery
	}
	if cfg.MaxRegions == 0 {
		cfg.MaxRegions = d.MaxRegions
	}
	if cfg.MaxRegionSize == 0 {
		cfg.MaxRegionSize = d.MaxRegionSize
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.DataDir == "" {
		cfg.Lock.Close()
		return nil, nil, errors.New("host: no data directory given")
	}
	lock := cfg.Lock
	if lock == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("host: data directory: %w", err)
		}
		var err error
		if lock, err = LockDir(cfg.DataDir); err != nil {
			return nil, nil, err
		}
	} else if lock.dir != cfg.DataDir {
		lock.Close()
		return nil, nil, fmt.Errorf("host: the lock given is on %s, not on the data directory %s", lock.dir, cfg.DataDir)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "regions"), 0o700); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("host: data directory: %w", err)
	}
	tab, _, err := registry.Load(cfg.DataDir)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("host: %w", err)
	}
	h := &Host{cfg: cfg, hostID: shm.HostID(), table: tab, regions: map[string]*Region{}, deleting: map[string]bool{}, stop: make(chan struct{}), lock: lock}
	report, err := h.reconcile()
	if err != nil {
		h.unmapAll()
		lock.Close()
		return nil, report, err
	}
	if tab.Default == "" {
		tab.Default = cfg.DefaultID
	}
	if _, ok := h.regions[tab.Default]; !ok {
		if _, err := h.createLocked(tab.Default, CreateOptions{Size: cfg.DefaultSize, Layout: region.UTF8}); err != nil {
			h.unmapAll()
			lock.Close()
			return nil, report, fmt.Errorf("host: default region: %w", err)
		}
		cfg.Logf("created the default region %q (%d bytes, utf8)", tab.Default, cfg.DefaultSize)
	}
	if err := tab.Save(cfg.DataDir); err != nil {
		h.unmapAll()
		lock.Close()
		return nil, report, err
	}
	h.every(h.cfg.PersistEvery, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := h.persistLocked(); err != nil {
			h.cfg.Logf("persist: %v", err)
		}
	})
	h.every(h.cfg.CheckEvery, func() {
		for _, line := range h.checkObjects() {
			h.cfg.Logf("%s", line)
		}
	})
	return h, report, nil
}

// every runs fn every d, on a goroutine of the host's, until it closes.
func (h *Host) every(d time.Duration, fn func()) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// HostID identifies this machine (see shm.HostID).
func (h *Host) HostID() string { return h.hostID }

// DefaultID returns the shm_id of the default region.
func (h *Host) DefaultID() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.table.Default
}

// DataDir returns the data directory.
func (h *Host) DataDir() string { return h.cfg.DataDir }

// Get returns the region with this shm_id.
func (h *Host) Get(id string) (*Region, error) {
	h.mu.RLock()
	r, ok := h.regions[id]
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return r, nil
}

// GetBytes is Get for an id held in a byte slice; it does not allocate.
func (h *Host) GetBytes(id []byte) (*Region, error) {
	h.mu.RLock()
	r, ok := h.regions[string(id)]
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return r, nil
}

// Default returns the default region.
func (h *Host) Default() (*Region, error) { return h.Get(h.DefaultID()) }

// List returns every region's info, sorted by shm_id.
func (h *Host) List() []Info {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Info, 0, len(h.regions))
	for _, e := range h.table.Entries() {
		if r, ok := h.regions[e.ID]; ok {
			out = append(out, r.Info())
		}
	}
	return out
}

// Close persists the registry and unmaps every region, leaving the
// regions themselves in place: they outlive the host by design.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	close(h.stop)
	h.mu.RLock()
	for _, r := range h.regions {
		r.hub.shutdown(false)
	}
	h.mu.RUnlock()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.persistLocked()
	h.unmapAll()
	h.lock.Close()
	return err
}

func (h *Host) unmapAll() {
	for _, r := range h.regions {
		r.mu.Lock()
		r.gone = true
		r.unmap()
		r.mu.Unlock()
	}
}
