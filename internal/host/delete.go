package host

import (
	"errors"
	"fmt"
	"os"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/registry"
	"github.com/shmgr/shmgr/internal/shm"
)

// Delete unmaps and removes a region. The default region cannot be
// deleted. The region is forgotten at once (Get and List no longer see it,
// and its id may be created again), then Delete waits for every
// Region.Do and DoWrite on it to return, including their waits for the
// region's lock (see Do), before it unmaps and removes its objects. It
// does not hold the host's lock while it waits: the rest of the host goes
// on serving.
func (h *Host) Delete(id string) error {
	r, err := h.forget(id)
	if err != nil {
		return err
	}
	r.retire()
	h.mu.Lock()
	delete(h.deleting, id)
	h.mu.Unlock()
	h.cfg.Logf("deleted region %q", id)
	return nil
}

// forget removes the region from the registry, saved, and from the host's
// table, under the host's lock, and returns it.
func (h *Host) forget(id string) (*Region, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	r, ok := h.regions[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if id == h.table.Default {
		return nil, fmt.Errorf("%w: %q is the host's default region and cannot be deleted", ErrForbidden, id)
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
		return nil, fmt.Errorf("region %q not deleted (nothing changed): %w", id, err)
	}
	delete(h.regions, id)
	h.deleting[id] = true
	return r, nil
}

// retire ends a region the host has forgotten: its watchers are told it
// is gone, processes that mapped it see it retired, and once every
// Region.Do on it has returned it is unmapped and its objects removed.
func (r *Region) retire() {
	r.hub.shutdown(true)
	r.mu.Lock()
	r.r.Retire()
	r.gone = true
	r.unmap()
	r.mu.Unlock()
	removeObjects(r.entry)
}

func removeObjects(e registry.Entry) {
	removeObject(e.Durable, e.OSName)
	removeObject(e.Durable, e.CtlName)
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
