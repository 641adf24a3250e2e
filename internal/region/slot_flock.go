//go:build (unix && !linux) || (linux && shmgr_flock)

package region

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// This is the macOS (and other Unix) implementation; on Linux the tag
// shmgr_flock selects it too, so that its tests run where CI runs.

// slotFile holds the per-slot lock files this Region opened. macOS has no
// open-file-description byte-range locks, and its POSIX record locks
// (fcntl F_SETLK) belong to the process, not to a description: another
// Region of the same process would not see them (F_GETLK ignores the
// caller's own locks) and closing any descriptor of the file, as mapping
// it again does, drops them all. flock(2) locks belong to the open file
// description, as Linux's OFD locks do: they conflict between two
// descriptions in one process, the kernel drops them when the process
// dies, and an exec'd program does not inherit them (close-on-exec). They
// lock whole files, so each slot is its own file, in a directory beside
// the control object: <control>.slots/<N>. (A directory, not files beside
// it: the host removes regular files with its prefix that no region
// names, and removing a held slot's file would hide its lock.)
type slotFile struct {
	path string
	fd   int // the claimed slot's file, -1 before a claim
}

func openSlots(path string) (*slotFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	// Everyone who may map the region must be able to lock its slots:
	// the directory gets the control object's permissions, with x where r.
	perm := st.Mode().Perm()
	perm |= (perm & 0o444) >> 2
	if err := os.Mkdir(slotDir(path), perm); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return &slotFile{path: path, fd: -1}, nil
}

func slotDir(path string) string { return path + ".slots" }

func (f *slotFile) slotPath(s int) string { return filepath.Join(slotDir(f.path), fmt.Sprint(s)) }

// lock takes slot s's lock if no one holds it, and reports whether it did.
func (f *slotFile) lock(s int) (bool, error) {
	mode := uint32(0o600)
	if st, err := os.Stat(f.path); err == nil {
		mode = uint32(st.Mode().Perm())
	}
	fd, err := unix.Open(f.slotPath(s), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode)
	if err != nil {
		return false, os.NewSyscallError("open", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		return false, os.NewSyscallError("flock", err)
	}
	f.fd = fd
	return true, nil
}

// held reports whether another open file description holds slot s: a
// probe that takes a shared lock without waiting and gives it back.
func (f *slotFile) held(s int) (bool, error) {
	fd, err := unix.Open(f.slotPath(s), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil // never claimed
	}
	if err != nil {
		return false, os.NewSyscallError("open", err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return true, nil
		}
		return false, os.NewSyscallError("flock", err)
	}
	return false, nil
}

// close releases the slot.
func (f *slotFile) close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return err
}

// RemoveLocks removes the slot lock files of the control object at path
// (the host calls it when it deletes the region).
func RemoveLocks(path string) error { return os.RemoveAll(slotDir(path)) }
