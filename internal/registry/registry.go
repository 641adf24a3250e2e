// Package registry holds the host's table of regions, shm_id -> entry, and
// persists it crash-safely as JSON in the data directory (see
// internal/atomicfile): a crash at any instant leaves either the old or
// the new table.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/shmgr/shmgr/internal/atomicfile"
)

// FileName is the registry's file in the data directory.
const FileName = "registry.json"

// ErrInvalid: the registry file exists but cannot be used as it is (not
// JSON, or incomplete). The host refuses to start rather than guess.
var ErrInvalid = errors.New("registry file invalid")

// formatVersion is the version of the file format.
const formatVersion = 1

// Entry describes one region. The host maps shm_id to it; nothing in it
// but the shm_id is chosen by a client.
type Entry struct {
	// ID is the region's shm_id.
	ID string `json:"id"`
	// OSName is the OS name of the data object (a path for durable regions).
	OSName string `json:"os_name"`
	// CtlName is the OS name (or path) of the control block.
	CtlName string `json:"ctl_name"`
	// Size is the data object's size in bytes.
	Size int64 `json:"size"`
	// Layout is "utf8" or "raw".
	Layout string `json:"layout"`
	// Durable regions live in files in the data directory.
	Durable bool `json:"durable,omitempty"`
	// Nonce identifies this incarnation of the region; it is stored in the
	// control block too.
	Nonce uint64 `json:"nonce"`
	// Created is when the region was first created.
	Created time.Time `json:"created"`
	// Version is the last version the host saw (updated when it persists).
	Version uint64 `json:"version"`
	// MaxWrite is the largest write the region takes (raw only): its
	// control block's undo area holds that many bytes, so the host must
	// re-open the control block at region.CtlSize(Size, MaxWrite). 0 (and
	// absent, in registries written before it existed): the whole size.
	MaxWrite int64 `json:"max_write,omitempty"`
}

// file is the on-disk form.
type file struct {
	Format   int     `json:"format"`
	Instance string  `json:"instance"`
	Default  string  `json:"default"`
	Entries  []Entry `json:"regions"`
}

// Table is the in-memory registry. It does no locking: the host owns it
// and serialises access.
type Table struct {
	// Instance is 8 hex digits made once per data directory; OS names start
	// with "shmgr-<Instance>-".
	Instance string
	// Default is the shm_id of the default region.
	Default string
	entries map[string]*Entry
}

// New returns an empty table with a fresh instance id.
func New() *Table {
	var b [4]byte
	rand.Read(b[:])
	return &Table{Instance: hex.EncodeToString(b[:]), entries: map[string]*Entry{}}
}

// Get returns the entry for id.
func (t *Table) Get(id string) (*Entry, bool) {
	e, ok := t.entries[id]
	return e, ok
}

// Put adds or replaces an entry.
func (t *Table) Put(e Entry) { t.entries[e.ID] = &e }

// Delete removes an entry.
func (t *Table) Delete(id string) { delete(t.entries, id) }

// Len returns the number of entries.
func (t *Table) Len() int { return len(t.entries) }

// Entries returns the entries sorted by id.
func (t *Table) Entries() []*Entry {
	out := make([]*Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Prefix returns the prefix of every OS name this table hands out.
func (t *Table) Prefix() string { return "shmgr-" + t.Instance + "-" }

// Load reads the registry from dir. A missing file gives an empty table
// with a fresh instance id (and ok == false). Stale temporary files left by
// a crash during Save are removed.
func Load(dir string) (t *Table, ok bool, err error) {
	atomicfile.RemoveTemps(dir, FileName)
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return New(), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("registry: %w", err)
	}
	// A registry is valid only if it is complete: one that does not name
	// its regions would have the host treat every region as an orphan.
	var f struct {
		Format   int      `json:"format"`
		Instance string   `json:"instance"`
		Default  string   `json:"default"`
		Entries  *[]Entry `json:"regions"`
	}
	refuse := func(format string, args ...any) (*Table, bool, error) {
		return nil, false, fmt.Errorf("registry %s: %s: %w; the file and every region's objects are kept as they are: restore the file from a backup, or move it aside to start afresh (the old regions are then left alone)",
			path, fmt.Sprintf(format, args...), ErrInvalid)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return refuse("not valid JSON (%v)", err)
	}
	if f.Format != formatVersion {
		return refuse("format %d, this build reads %d", f.Format, formatVersion)
	}
	if len(f.Instance) != 8 {
		return refuse("bad instance %q", f.Instance)
	}
	if _, err := hex.DecodeString(f.Instance); err != nil {
		return refuse("bad instance %q: want 8 hex digits", f.Instance)
	}
	if f.Entries == nil {
		return refuse(`"regions" is missing or null`)
	}
	if f.Default == "" {
		return refuse(`"default" is missing or empty`)
	}
	t = &Table{Instance: f.Instance, Default: f.Default, entries: make(map[string]*Entry, len(*f.Entries))}
	for i, e := range *f.Entries {
		if err := e.check(); err != nil {
			return refuse("region %d (%q): %v", i, e.ID, err)
		}
		if _, dup := t.entries[e.ID]; dup {
			return refuse("region %q is listed twice", e.ID)
		}
		t.entries[e.ID] = &e
	}
	if _, ok := t.entries[f.Default]; !ok {
		return refuse("the default region %q is not listed (a registry always lists it)", f.Default)
	}
	return t, true, nil
}

// check reports what an entry read from a file lacks.
func (e *Entry) check() error {
	switch {
	case e.ID == "":
		return errors.New(`"id" is missing`)
	case e.OSName == "" || e.CtlName == "":
		return errors.New(`"os_name" or "ctl_name" is missing`)
	case e.Size <= 0:
		return fmt.Errorf(`"size" %d: must be positive`, e.Size)
	case e.Layout != "utf8" && e.Layout != "raw":
		return fmt.Errorf(`"layout" %q: want "utf8" or "raw"`, e.Layout)
	case e.Nonce == 0:
		return errors.New(`"nonce" is missing`)
	}
	return nil
}

// Save writes the table to dir atomically.
func (t *Table) Save(dir string) error {
	f := file{Format: formatVersion, Instance: t.Instance, Default: t.Default, Entries: []Entry{}}
	for _, e := range t.Entries() {
		f.Entries = append(f.Entries, *e)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	b = append(b, '\n')
	if err := atomicfile.Write(dir, FileName, b, 0o600); err != nil {
		return fmt.Errorf("registry: save: %w", err)
	}
	return nil
}
