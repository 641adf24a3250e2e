// Package shm creates, opens and removes named shared-memory objects and
// maps them into the process.
//
// On Linux a named object is a POSIX shared-memory object in /dev/shm; on
// Windows it is a named file mapping (which dies with its last handle, so
// the creator must keep its Mapping open); on macOS it is a file in the
// user's cache directory, mapped MAP_SHARED. Durable objects are ordinary
// files at a path the caller chooses, mapped the same way on every OS.
//
// # Caveats
//
// IMPORTANT: the slice returned by Mapping.Bytes aliases the mapping. It is
// valid only until Close; touching it afterwards faults the process.
package shm

import (
	"errors"
	"fmt"
	"strings"
)

// Kind names how an object is stored. It travels in the host's metadata so
// a client knows how to attach.
type Kind string

// Kinds of objects.
const (
	// KindPOSIX is a POSIX shared-memory object (Linux: /dev/shm).
	KindPOSIX Kind = "posix_shm"
	// KindWindows is a named file mapping backed by the page file.
	KindWindows Kind = "windows_mapping"
	// KindFile is a regular file mapped shared (durable regions, macOS).
	KindFile Kind = "file"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrExists is returned by Create when the object already exists.
	ErrExists = errors.New("shared-memory object already exists")
	// ErrNotFound is returned by Open and Remove when no such object exists.
	ErrNotFound = errors.New("shared-memory object not found")
	// ErrBadName is returned for names that are empty, too long or not
	// made of [A-Za-z0-9._-].
	ErrBadName = errors.New("invalid shared-memory object name")
)

// MaxNameLen is the longest object name accepted. macOS limits POSIX
// shared-memory names to 31 bytes including the leading slash; keeping
// every platform under it keeps names portable.
const MaxNameLen = 30

// CheckName reports whether name is a valid object name.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q: must be 1 to %d characters", ErrBadName, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: only letters, digits, '.', '_' and '-' are allowed", ErrBadName, name)
		}
	}
	if strings.HasPrefix(name, ".") {
		return fmt.Errorf("%w: %q: must not start with '.'", ErrBadName, name)
	}
	return nil
}

// Mapping is a mapped object. Its methods are not safe for concurrent use
// with Close.
type Mapping struct {
	name string
	path string // the file system path (Windows sections: the name)
	kind Kind
	b    []byte
	sys  sysMapping // platform state (handles)
}

// Bytes returns the mapped memory. It is valid only until Close.
func (m *Mapping) Bytes() []byte { return m.b }

// Name returns the object's name (or path, for files).
func (m *Mapping) Name() string { return m.name }

// Path returns the object's path in the file system, for taking file
// locks on it: /dev/shm/<name> on Linux, the file on macOS and for
// durable objects. A Windows page-file section has no file: Path returns
// its name.
func (m *Mapping) Path() string { return m.path }

// Kind returns how the object is stored.
func (m *Mapping) Kind() Kind { return m.kind }

// Sync flushes a file-backed mapping to its file. It is a no-op for
// memory-only objects.
func (m *Mapping) Sync() error {
	if m == nil || m.b == nil || m.kind != KindFile {
		return nil
	}
	return syncMapping(m)
}

// SetReadOnly makes the whole mapping read-only (PROT_READ; on Windows,
// PAGE_READONLY): a store into it afterwards faults the process instead of
// changing the object. The object itself stays writable for others. It
// cannot be undone for this Mapping: map the object again to write it.
func (m *Mapping) SetReadOnly() error {
	if m == nil || m.b == nil {
		return nil
	}
	if err := protectRead(m); err != nil {
		return fmt.Errorf("shm %q: make the mapping read-only: %w", m.name, err)
	}
	return nil
}

// Close unmaps the object. The object itself stays (see Remove).
func (m *Mapping) Close() error {
	if m == nil || m.b == nil {
		return nil
	}
	err := unmap(m)
	m.b = nil
	return err
}

// Create makes a new named object of size bytes, zero-filled, with the
// given permission bits, and maps it. It fails with ErrExists if the name
// is taken.
func Create(name string, size int64, perm uint32) (*Mapping, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, fmt.Errorf("shm %q: size %d: must be positive", name, size)
	}
	m, err := createNamed(name, size, perm)
	if err != nil {
		return nil, fmt.Errorf("shm create %q (%d bytes): %w", name, size, err)
	}
	return m, nil
}

// Open maps an existing named object. size is the size the caller expects
// (it is checked where the OS can tell).
func Open(name string, size int64) (*Mapping, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	m, err := openNamed(name, size)
	if err != nil {
		return nil, fmt.Errorf("shm open %q: %w", name, err)
	}
	return m, nil
}

// Remove deletes a named object. Mappings already made stay valid until
// closed.
func Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := removeNamed(name); err != nil {
		return fmt.Errorf("shm remove %q: %w", name, err)
	}
	return nil
}

// List returns the names of the named objects that start with prefix. On
// Windows, where named mappings cannot be enumerated, it returns nil.
func List(prefix string) ([]string, error) { return listNamed(prefix) }

// CreateFile makes a new file of size bytes at path (which must not exist)
// and maps it shared: a durable object.
func CreateFile(path string, size int64, perm uint32) (*Mapping, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shm file %q: size %d: must be positive", path, size)
	}
	m, err := mapFile(path, size, true, perm)
	if err != nil {
		return nil, fmt.Errorf("shm create file %q (%d bytes): %w", path, size, err)
	}
	return m, nil
}

// OpenFile maps an existing file at path shared. size is the expected
// size; a file of another size is an error.
func OpenFile(path string, size int64) (*Mapping, error) {
	m, err := mapFile(path, size, false, 0)
	if err != nil {
		return nil, fmt.Errorf("shm open file %q: %w", path, err)
	}
	return m, nil
}

// Path returns the file system path of the named object name, as
// Mapping.Path would (Windows: the name itself).
func Path(name string) string { return namedObjectPath(name) }

// Rename gives a named object another name, keeping its content: the
// host quarantines orphans this way rather than removing them. Windows
// returns errors.ErrUnsupported.
func Rename(oldName, newName string) error {
	if err := CheckName(oldName); err != nil {
		return err
	}
	if err := CheckName(newName); err != nil {
		return err
	}
	if err := renameNamed(oldName, newName); err != nil {
		return fmt.Errorf("shm rename %q to %q: %w", oldName, newName, err)
	}
	return nil
}

// Exists reports whether a named object exists, as an object (a
// directory squatting its name is not one). On Windows, where a section
// lives while the host holds it, it is always true.
func Exists(name string) (bool, error) {
	if err := CheckName(name); err != nil {
		return false, err
	}
	return existsNamed(name)
}
