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
// deleted. It waits, holding the host's lock, for every Region.Do and
// DoWrite on the region to return, including their waits for the
// region's lock (see Do).
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
