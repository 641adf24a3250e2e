package host

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
)

// DefaultCheckEvery is how often a host looks for region objects removed
// behind its back (Config.CheckEvery).
const DefaultCheckEvery = time.Second

// checkObjects restores every region whose data object or control block
// was removed behind the host's back (rm /dev/shm/shmgr-..., a cleanup
// script): the host still maps it, so its content is copied into a new
// object of the same name. Without this the host went on serving from a
// mapping no name led to, and every write acknowledged since was lost at
// the next start. It returns what it found and did, one line each.
func (h *Host) checkObjects() []string {
	// Looking takes the read lock only, so that requests are not held up
	// once a second; restoring takes the write lock, as Delete does.
	h.mu.RLock()
	var missing []string
	var report []string
	for _, id := range h.sortedIDs() {
		e := h.regions[id].entry
		dataOK, err1 := objectExists(e.Durable, e.OSName)
		ctlOK, err2 := objectExists(e.Durable, e.CtlName)
		if err := errors.Join(err1, err2); err != nil {
			report = append(report, fmt.Sprintf("region %q: cannot check its objects: %v", id, err))
		} else if !dataOK || !ctlOK {
			missing = append(missing, id)
		}
	}
	h.mu.RUnlock()
	if len(missing) == 0 {
		return report
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return report
	}
	for _, id := range missing {
		r, ok := h.regions[id]
		if !ok {
			continue // deleted meanwhile
		}
		e := r.entry
		dataOK, _ := objectExists(e.Durable, e.OSName)
		ctlOK, _ := objectExists(e.Durable, e.CtlName)
		if dataOK && ctlOK {
			continue
		}
		what := e.OSName
		if dataOK {
			what = e.CtlName
		} else if !ctlOK {
			what += " and " + e.CtlName
		}
		if err := h.restore(r); err != nil {
			r.mu.Lock()
			r.lost = fmt.Errorf("%s was removed and restoring it failed: %w", what, err)
			r.mu.Unlock()
			report = append(report, fmt.Sprintf("region %q: %s removed behind the host's back; restoring it failed, writes are refused until it succeeds (retried every %v): %v", id, what, h.cfg.CheckEvery, err))
			continue
		}
		report = append(report, fmt.Sprintf("region %q: %s removed behind the host's back: restored from the host's mapping (content and version kept)", id, what))
	}
	return report
}

// sortedIDs returns the regions' ids in registry order. h.mu is held
// (read or write).
func (h *Host) sortedIDs() []string {
	ids := make([]string, 0, len(h.regions))
	for _, e := range h.table.Entries() {
		if _, ok := h.regions[e.ID]; ok {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// restore makes both of r's objects anew under their names, with the
// content of the host's mappings, and moves r onto them. The old control
// block is retired, so that local clients still mapping the vanished
// object ask the host again and map the new one. h.mu is held.
//
// Writes through the host are held off while the content is copied; a
// local client writing straight into the vanished object at that instant
// may lose that one write, as it would if the object were removed a
// moment later.
func (h *Host) restore(r *Region) error {
	r.hub.wake() // a hub waiting on the region gives way at once
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return nil
	}
	e := r.entry
	// What survived is unlinked too: both objects are made anew, so that
	// retiring the old control block cannot retire the new one.
	removeObjects(e)
	data, err := h.createObject(e.Durable, e.OSName, e.Size)
	if err != nil {
		return err
	}
	ctl, err := h.createObject(e.Durable, e.CtlName, region.CtlSize(e.Size, e.MaxWrite))
	if err != nil {
		data.Close()
		removeObject(e.Durable, e.OSName)
		return err
	}
	fail := func(err error) error {
		data.Close()
		ctl.Close()
		removeObjects(e)
		return err
	}
	if h.cfg.ShareGroup {
		if err := h.chgrp(e); err != nil {
			return fail(err)
		}
	}
	copy(data.Bytes(), r.data.Bytes())
	copy(ctl.Bytes(), r.ctl.Bytes())
	if e.Durable {
		if err := errors.Join(data.Sync(), ctl.Sync()); err != nil {
			return fail(err)
		}
	}
	rr, err := region.Attach(data.Bytes(), ctl.Bytes(), ctl.Path())
	if err != nil {
		return fail(err)
	}
	rr.SetLabel(fmt.Sprintf("shmgr host pid %d", os.Getpid()))
	r.r.Retire()
	r.unmap()
	r.r, r.data, r.ctl, r.lost = rr, data, ctl, nil
	return nil
}

// objectExists reports whether a region's object is still there.
func objectExists(durable bool, name string) (bool, error) {
	if !durable {
		return shm.Exists(name)
	}
	fi, err := os.Lstat(name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil && fi.Mode().IsRegular(), err
}
