package host

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/registry"
	"github.com/shmgr/shmgr/internal/shm"
)

// reconcile matches the registry with the objects the OS has: re-adopt
// what exists, recreate what vanished, remove orphans. h.mu need not be
// held: nothing else sees the host yet.
func (h *Host) reconcile() ([]string, error) {
	var report []string
	known := map[string]bool{}
	for _, e := range h.table.Entries() {
		known[e.OSName] = true
		known[e.CtlName] = true
		r, note, err := h.adopt(*e)
		if err != nil {
			return report, fmt.Errorf("host: region %q: %w", e.ID, err)
		}
		if note != "" {
			report = append(report, note)
		}
		h.regions[e.ID] = r
		h.table.Put(r.entry)
	}
	names, err := shm.List(h.table.Prefix())
	if err != nil {
		report = append(report, fmt.Sprintf("could not list shared-memory objects to find orphans: %v", err))
	}
	for _, n := range names {
		if !known[n] {
			report = append(report, quarantine(n))
		}
	}
	if kept, _ := shm.List(QuarantinePrefix + h.table.Instance + "-"); len(kept) > 0 {
		report = append(report, fmt.Sprintf("%d quarantined orphan objects of this data directory are kept in shared memory (%s...): remove them to free the memory once nothing in them is wanted", len(kept), kept[0]))
	}
	return report, nil
}

// QuarantinePrefix starts the name an orphan object is given instead of
// being removed: "orphan-<instance>-...", outside the prefix of every
// host, so no host adopts or touches it again.
const QuarantinePrefix = "orphan-"

// quarantine renames an orphan object (one that carries this host's
// prefix but no registry entry names: left by a crash between a save
// and an unlink, or by a registry restored from an older copy) out of
// the host's way, keeping its content, and says how to undo it.
func quarantine(name string) string {
	to := QuarantinePrefix + strings.TrimPrefix(name, "shmgr-")
	if err := shm.Rename(name, to); err != nil {
		return fmt.Sprintf("orphan object %s (no registry entry names it) left in place: quarantine failed: %v", name, err)
	}
	return fmt.Sprintf("quarantined orphan object %s as %s (no registry entry names it; content kept): rename it back to restore it, or remove it to free the memory", name, to)
}

// adopt maps an entry's existing objects, or recreates them.
func (h *Host) adopt(e registry.Entry) (*Region, string, error) {
	open := func(name string, size int64) (*shm.Mapping, error) {
		if e.Durable {
			return shm.OpenFile(name, size)
		}
		return shm.Open(name, size)
	}
	data, err := open(e.OSName, e.Size)
	if errors.Is(err, shm.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		// The object vanished (a reboot clears /dev/shm): recreate it empty,
		// with a version past the last one recorded so that versions never
		// go back.
		removeObject(e.Durable, e.CtlName)
		v := resumeVersion(e)
		r, err := h.makeObjects(e, v)
		if err != nil {
			return nil, "", err
		}
		return r, fmt.Sprintf("recreated region %q: its object %s had vanished (content lost; now at version %d)", e.ID, e.OSName, v), nil
	}
	if err != nil {
		return nil, "", err
	}
	ctl, err := open(e.CtlName, region.CtlSize(e.Size, e.MaxWrite))
	upgraded := ""
	if err == nil {
		// A control block of an older format is upgraded in place (under
		// its own lock), or, if an older writer still holds it, the host
		// refuses to start with what to do.
		if v1 := string(ctl.Bytes()[:8]) == region.MagicV1; v1 {
			rolled, uerr := region.Upgrade(data.Bytes(), ctl.Bytes())
			if uerr != nil {
				data.Close()
				ctl.Close()
				return nil, "", uerr
			}
			upgraded = fmt.Sprintf("region %q: upgraded its control block to format %d", e.ID, region.FormatVersion)
			if rolled {
				upgraded += " (an interrupted write was rolled back)"
			}
		}
	}
	if err == nil {
		if r, err := h.wrap(e, data, ctl); err == nil {
			if r.r.Nonce() != e.Nonce {
				r.unmap()
				return nil, "", fmt.Errorf("control block %s belongs to another region (nonce mismatch)", e.CtlName)
			}
			notes := []string{}
			if upgraded != "" {
				notes = append(notes, upgraded)
			}
			rebooted := r.r.Rebooted()
			if rec, _ := r.r.Recover(); rec {
				notes = append(notes, fmt.Sprintf("region %q: took back the lock from a dead writer (an interrupted write was rolled back)", e.ID))
			}
			if e.Durable && rebooted {
				notes = append(notes, restoreCheckpoint(e, r))
			}
			return r, strings.Join(notes, "; "), nil
		} else {
			// wrap closed both mappings.
			data, err = open(e.OSName, e.Size)
			if err != nil {
				return nil, "", err
			}
		}
	}
	// The data object survived but its control block did not (or is
	// corrupt): rebuild the control block around the content.
	ctl.Close()
	removeObject(e.Durable, e.CtlName)
	create := shm.Create
	if e.Durable {
		create = shm.CreateFile
	}
	ctl, err = create(e.CtlName, region.CtlSize(e.Size, e.MaxWrite), h.cfg.Perm)
	if err != nil {
		data.Close()
		return nil, "", err
	}
	l, _ := region.ParseLayout(e.Layout)
	v := resumeVersion(e)
	if err := region.Format(data.Bytes(), ctl.Bytes(), l, e.MaxWrite, e.Nonce, v); err != nil {
		data.Close()
		ctl.Close()
		return nil, "", err
	}
	r, err := h.wrap(e, data, ctl)
	if err != nil {
		return nil, "", err
	}
	return r, fmt.Sprintf("region %q: rebuilt its missing or damaged control block (content kept, now at version %d)", e.ID, v), nil
}

// restoreCheckpoint puts a durable region back to its last checkpoint
// after a reboot: a power loss may have left the data file torn.
func restoreCheckpoint(e registry.Entry, r *Region) string {
	was, now, err := r.r.RestoreCheckpoint(region.CheckpointPath(e.OSName))
	if err != nil {
		return fmt.Sprintf("region %q: the machine rebooted and the checkpoint could not be restored (%v): the content is what the data file holds, which a power loss may have torn", e.ID, err)
	}
	return fmt.Sprintf("region %q: the machine rebooted: restored the checkpoint of version %d (now version %d)", e.ID, was, now)
}

// maxWriteRate bounds how fast any region's version can grow: one commit
// per 100 ns, well beyond what a 4 KiB copy under a lock allows.
const maxWriteRate = 100 * time.Nanosecond

// resumeVersion is the version a region restarts at when its control
// block (and so its version counter) was lost. The registry's copy may be
// stale (it is saved every few seconds, and a crash loses the rest), so
// the region restarts past any version it could have reached since it
// was created: versions never go back, and a conditional write based on
// an older read cannot succeed.
func resumeVersion(e registry.Entry) uint64 {
	v := e.Version + 1
	if !e.Created.IsZero() {
		if bound := uint64(time.Since(e.Created)/maxWriteRate) + 1; bound > v {
			v = bound
		}
	}
	return v
}
