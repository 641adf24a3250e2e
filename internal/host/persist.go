package host

import "github.com/shmgr/shmgr/internal/region"

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
