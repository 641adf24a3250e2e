// Package host owns a machine's shared-memory regions: it creates them,
// re-adopts them after a restart or crash, recreates those whose objects
// vanished, removes orphans, deletes them on request and keeps the
// registry (shm_id -> region) persisted in the data directory.
//
// The host package does no networking; internal/server puts it on TCP.
package host

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/shmgr/shmgr/internal/atomicfile"
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

	// mu protects table, regions and closed. It is never held while a
	// region's content is copied.
	mu      sync.RWMutex
	table   *registry.Table
	regions map[string]*Region
	closed  bool

	stop chan struct{}
	wg   sync.WaitGroup
	lock *DirLock // held while the host owns the data directory
}

// Region is the host's handle on one region. Its methods are safe for
// concurrent use; after the region is deleted they fail with ErrNotFound.
type Region struct {
	// mu: readers and writers hold RLock while they touch the mapping;
	// Delete and Close take Lock to unmap it.
	mu     sync.RWMutex
	gone   bool
	lost   error // set while a vanished object could not be restored
	entry  registry.Entry
	r      *region.Region
	data   *shm.Mapping
	ctl    *shm.Mapping
	kind   shm.Kind
	hostID string
	owner  *Host
	hub    *hub
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
	h := &Host{cfg: cfg, hostID: shm.HostID(), table: tab, regions: map[string]*Region{}, stop: make(chan struct{}), lock: lock}
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
	h.wg.Add(2)
	go h.persistLoop()
	go h.objectsLoop()
	return h, report, nil
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

// CreateOptions describe a new region.
type CreateOptions struct {
	// Size in bytes (default 4096).
	Size int64
	// Layout (default utf8).
	Layout region.Layout
	// Durable regions are backed by files in the data directory and
	// survive a reboot.
	Durable bool
	// MaxWrite is the largest write the region takes (raw only; 0: the
	// whole size). Its undo area holds that many bytes, so a region
	// costs Size + MaxWrite + 4 KiB instead of about twice Size.
	MaxWrite int64
}

// Create makes a new region.
func (h *Host) Create(id string, o CreateOptions) (*Region, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if _, ok := h.regions[id]; ok {
		return nil, fmt.Errorf("%w: %q", ErrExists, id)
	}
	if len(h.regions) >= h.cfg.MaxRegions {
		return nil, fmt.Errorf("%w: the host has %d regions, the most it allows (shmgr host --max-regions)", ErrLimit, len(h.regions))
	}
	if o.Size > h.cfg.MaxRegionSize {
		return nil, fmt.Errorf("%w: %d bytes is larger than the host's maximum region size of %d bytes (shmgr host --max-region-size)", ErrLimit, o.Size, h.cfg.MaxRegionSize)
	}
	r, err := h.createLocked(id, o)
	if err != nil {
		return nil, err
	}
	// The region exists once the registry names it: until the save
	// succeeds it is undone, so a refused create leaves nothing (and a
	// crash before the save leaves an orphan, which the next start
	// quarantines).
	if err := h.table.Save(h.cfg.DataDir); errors.Is(err, atomicfile.ErrNotDurable) {
		h.cfg.Logf("created region %q, but the registry: %v", id, err)
	} else if err != nil {
		delete(h.regions, id)
		h.table.Delete(id)
		r.mu.Lock()
		r.gone = true
		r.unmap()
		r.mu.Unlock()
		removeObjects(r.entry)
		return nil, fmt.Errorf("region %q not created (nothing changed): %w", id, err)
	}
	h.cfg.Logf("created region %q (%d bytes, %s, durable=%v; %d bytes of shared memory with its control block and undo area)", id, r.entry.Size, r.entry.Layout, r.entry.Durable, region.Footprint(r.entry.Size, r.entry.MaxWrite))
	return r, nil
}

// Delete unmaps and removes a region. The default region cannot be
// deleted.
func (h *Host) Delete(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	r, ok := h.regions[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if id == h.table.Default {
		return fmt.Errorf("%w: %q is the host's default region and cannot be deleted", ErrForbidden, id)
	}
	// The registry forgets the region first and its objects go after: a
	// refused save leaves the region as it was, and a crash between the
	// two leaves an orphan, never a registered region without content.
	e, _ := h.table.Get(id)
	saved := *e
	h.table.Delete(id)
	if err := h.table.Save(h.cfg.DataDir); errors.Is(err, atomicfile.ErrNotDurable) {
		h.cfg.Logf("deleting region %q, but the registry: %v", id, err)
	} else if err != nil {
		h.table.Put(saved)
		return fmt.Errorf("region %q not deleted (nothing changed): %w", id, err)
	}
	delete(h.regions, id)
	r.hub.shutdown(true)
	r.mu.Lock()
	r.r.Retire()
	r.gone = true
	r.unmap()
	r.mu.Unlock()
	removeObjects(r.entry)
	h.cfg.Logf("deleted region %q", id)
	return nil
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

func (h *Host) persistLoop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.PersistEvery)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.mu.Lock()
			if err := h.persistLocked(); err != nil {
				h.cfg.Logf("persist: %v", err)
			}
			h.mu.Unlock()
		}
	}
}

// persistLocked records current versions and flushes durable regions.
func (h *Host) persistLocked() error {
	changed := false
	var firstErr error
	for id, r := range h.regions {
		e, ok := h.table.Get(id)
		if !ok {
			continue
		}
		if v := r.r.Version(); v != e.Version {
			e.Version = v
			changed = true
			if r.entry.Durable {
				if err := r.data.Sync(); err != nil && firstErr == nil {
					firstErr = err
				}
				if err := r.ctl.Sync(); err != nil && firstErr == nil {
					firstErr = err
				}
				// The data file may be torn on disk after a power loss
				// (the kernel flushes its pages in any order): the
				// checkpoint is a whole committed version beside it.
				if _, _, err := r.r.WriteCheckpoint(region.CheckpointPath(r.entry.OSName), nil); err != nil && firstErr == nil {
					firstErr = err
				}
			}
		}
	}
	if changed {
		if err := h.table.Save(h.cfg.DataDir); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// osName derives the OS name of a region's data object from its id: the
// host's prefix and a hash, short enough for every OS (macOS allows 31
// characters) and never chosen by a client.
func (h *Host) osName(id string) string {
	sum := sha256.Sum256([]byte(h.table.Instance + "\x00" + id))
	return h.table.Prefix() + hex.EncodeToString(sum[:5])
}

func (h *Host) durablePaths(name string) (string, string) {
	dir := filepath.Join(h.cfg.DataDir, "regions")
	return filepath.Join(dir, name+".data"), filepath.Join(dir, name+".ctl")
}

// pageRound rounds n up to whole pages: what an object of n bytes takes.
func pageRound(n int64) int64 {
	p := int64(os.Getpagesize())
	return (n + p - 1) / p * p
}

func newNonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// createLocked creates the objects, formats the control block and records
// the entry. h.mu is held.
func (h *Host) createLocked(id string, o CreateOptions) (*Region, error) {
	if o.Size == 0 {
		o.Size = region.DefaultSize
	}
	if o.Layout == 0 {
		o.Layout = region.UTF8
	}
	if err := region.CheckSize(o.Layout, o.Size); err != nil {
		return nil, err
	}
	if err := region.CheckMaxWrite(o.Layout, o.Size, o.MaxWrite); err != nil {
		return nil, err
	}
	if o.MaxWrite == o.Size {
		o.MaxWrite = 0 // the whole size: the default, recorded as such
	}
	if o.Durable && o.MaxWrite != 0 {
		// After a reboot the host restores a durable region's checkpoint
		// as one write of the whole content, which a smaller undo area
		// could not hold crash-safely.
		return nil, fmt.Errorf("%w: max write %d: a durable region keeps an undo area of its whole size (a checkpoint is restored as one write); leave max write out", region.ErrBadSize, o.MaxWrite)
	}
	name := h.osName(id)
	for _, e := range h.table.Entries() {
		if e.OSName == name || filepath.Base(e.OSName) == name+".data" {
			return nil, fmt.Errorf("region %q: its OS name collides with region %q; choose another shm_id", id, e.ID)
		}
	}
	e := registry.Entry{ID: id, Size: o.Size, Layout: o.Layout.String(), Durable: o.Durable, MaxWrite: o.MaxWrite, Nonce: newNonce(), Created: time.Now().UTC().Truncate(time.Second)}
	if o.Durable {
		e.OSName, e.CtlName = h.durablePaths(name)
	} else {
		e.OSName, e.CtlName = name, name+"-c"
		// Both objects take whole pages.
		need := pageRound(o.Size) + pageRound(region.CtlSize(o.Size, o.MaxWrite))
		if free, err := shm.FreeSpace(); err == nil && free < need {
			return nil, fmt.Errorf("%w: region %q needs %d bytes (data and control block, in whole pages), %d are free", ErrNoSpace, id, need, free)
		}
	}
	r, err := h.makeObjects(e, 0)
	if errors.Is(err, syscall.ENOSPC) {
		// The free-space check raced another process, or the file
		// system counts differently: still a limit, not a fault.
		return nil, fmt.Errorf("%w: region %q: %w", ErrNoSpace, id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("region %q: %w", id, err)
	}
	h.table.Put(e)
	h.regions[id] = r
	return r, nil
}

// makeObjects creates both objects for e and formats them at version.
func (h *Host) makeObjects(e registry.Entry, version uint64) (*Region, error) {
	l, err := region.ParseLayout(e.Layout)
	if err != nil {
		return nil, err
	}
	create := func(name string, size int64) (*shm.Mapping, error) {
		if e.Durable {
			return shm.CreateFile(name, size, h.cfg.Perm)
		}
		return shm.Create(name, size, h.cfg.Perm)
	}
	data, err := create(e.OSName, e.Size)
	if err != nil {
		return nil, err
	}
	ctl, err := create(e.CtlName, region.CtlSize(e.Size, e.MaxWrite))
	if err != nil {
		data.Close()
		removeObject(e.Durable, e.OSName)
		return nil, err
	}
	if h.cfg.ShareGroup {
		if err := h.chgrp(e); err != nil {
			data.Close()
			ctl.Close()
			removeObjects(e)
			return nil, err
		}
	}
	if err := region.Format(data.Bytes(), ctl.Bytes(), l, e.MaxWrite, e.Nonce, version); err != nil {
		data.Close()
		ctl.Close()
		removeObjects(e)
		return nil, err
	}
	return h.wrap(e, data, ctl)
}

func (h *Host) wrap(e registry.Entry, data, ctl *shm.Mapping) (*Region, error) {
	rr, err := region.Attach(data.Bytes(), ctl.Bytes(), ctl.Path())
	if err != nil {
		data.Close()
		ctl.Close()
		return nil, err
	}
	rr.SetLabel(fmt.Sprintf("shmgr host pid %d", os.Getpid()))
	r := &Region{entry: e, r: rr, data: data, ctl: ctl, kind: data.Kind(), hostID: h.hostID, owner: h}
	r.hub = &hub{r: r, subs: map[*Sub]struct{}{}}
	return r, nil
}

// chgrp gives a region's objects to the configured group.
func (h *Host) chgrp(e registry.Entry) error {
	for _, n := range []string{e.OSName, e.CtlName} {
		var err error
		if e.Durable {
			err = os.Chown(n, -1, h.cfg.GID)
		} else {
			err = shm.Chown(n, h.cfg.GID)
		}
		if err != nil {
			return fmt.Errorf("give %s to group %d: %w", n, h.cfg.GID, err)
		}
	}
	return nil
}

func removeObject(durable bool, name string) {
	if durable {
		os.Remove(name)
		os.Remove(region.CheckpointPath(name))
		region.RemoveLocks(name)
		return
	}
	shm.Remove(name)
	region.RemoveLocks(shm.Path(name))
}

func removeObjects(e registry.Entry) {
	removeObject(e.Durable, e.OSName)
	removeObject(e.Durable, e.CtlName)
}

func (r *Region) unmap() {
	r.r.Close() // the host's owner slot, before the mapping goes
	r.data.Close()
	r.ctl.Close()
}

// CheckID reports whether id is a valid shm_id: 1 to 64 characters from
// [A-Za-z0-9._-], starting with a letter or digit.
func CheckID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("%w: %q: must be 1 to 64 characters", ErrBadID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("%w: %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", ErrBadID, id)
		}
	}
	return nil
}
