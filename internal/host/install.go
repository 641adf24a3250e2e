package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/shmgr/shmgr/internal/atomicfile"
	"github.com/shmgr/shmgr/internal/region"
)

// Install puts region id at exactly this content and version, replacing
// any region of that shm_id (the default region too): what a cluster node
// needs when it installs a snapshot, since a replica's version must equal
// the leader's and ordinary writes can only add one to it. The region is
// a new one (processes that mapped the old one see it retired), so
// watchers of the old one end as on Delete.
func (h *Host) Install(id string, o CreateOptions, content []byte, version uint64) (*Region, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if old, ok := h.regions[id]; ok {
		h.table.Delete(id)
		delete(h.regions, id)
		old.retire()
	}
	r, err := h.createLocked(id, o)
	if err == nil {
		err = r.reformat(content, version)
		if err != nil {
			delete(h.regions, id)
			h.table.Delete(id)
			r.gone = true
			r.unmap()
			removeObjects(r.entry)
		}
	}
	if serr := h.table.Save(h.cfg.DataDir); serr != nil && !errors.Is(serr, atomicfile.ErrNotDurable) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return nil, fmt.Errorf("install region %q at version %d: %w", id, version, err)
	}
	return r, nil
}

// reformat writes content into a region nobody else maps yet and formats
// its control block at version; the caller holds h.mu.
func (r *Region) reformat(content []byte, version uint64) error {
	l, err := region.ParseLayout(r.entry.Layout)
	if err != nil {
		return err
	}
	data := r.data.Bytes()
	switch {
	case l == region.UTF8 && int64(len(content)) <= int64(len(data))-region.DataOffset:
		binary.LittleEndian.PutUint32(data[region.LenOffset:], uint32(len(content)))
		copy(data[region.DataOffset:], content)
	case l == region.Raw && len(content) <= len(data):
		copy(data, content)
	default:
		return fmt.Errorf("%w: %d bytes of content for a %d-byte region", region.ErrTooLarge, len(content), len(data))
	}
	if err := r.r.Close(); err != nil {
		return err
	}
	if err := region.Format(data, r.ctl.Bytes(), l, r.entry.MaxWrite, r.entry.Nonce, version); err != nil {
		return err
	}
	rr, err := region.Attach(data, r.ctl.Bytes(), r.ctl.Path())
	if err != nil {
		return err
	}
	rr.SetLabel(fmt.Sprintf("shmgr host pid %d", os.Getpid()))
	r.r = rr
	return nil
}
