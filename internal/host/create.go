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
	"syscall"
	"time"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/registry"
	"github.com/shmgr/shmgr/internal/shm"
)

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
	if h.deleting[id] {
		return nil, fmt.Errorf("%w: %q is still being deleted (a request on it waits for its lock); create it again once the delete has returned", ErrExists, id)
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

// makeObjects creates both objects for e and formats them at version.
func (h *Host) makeObjects(e registry.Entry, version uint64) (*Region, error) {
	l, err := region.ParseLayout(e.Layout)
	if err != nil {
		return nil, err
	}
	data, err := h.createObject(e.Durable, e.OSName, e.Size)
	if err != nil {
		return nil, err
	}
	ctl, err := h.createObject(e.Durable, e.CtlName, region.CtlSize(e.Size, e.MaxWrite))
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

// createObject makes one of a region's objects: a file in the data
// directory for a durable region, a shared-memory object otherwise.
func (h *Host) createObject(durable bool, name string, size int64) (*shm.Mapping, error) {
	if durable {
		return shm.CreateFile(name, size, h.cfg.Perm)
	}
	return shm.Create(name, size, h.cfg.Perm)
}
