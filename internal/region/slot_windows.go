package region

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// slotFile holds this Region's own handle on the lock file. LockFileEx
// locks belong to the handle: the kernel releases them when the handle is
// closed, which it does when the process exits however it exits, and a
// second handle (of this process or another) conflicts with them. A
// durable region's lock file is its control file; a page-file section
// has no file, so its slots live in a lock file named after it under
// %ProgramData%\shmgr\locks (one directory for every user, as the
// sections' Local\ namespace is per session, not per user).
type slotFile struct{ h windows.Handle }

// lockFilePath returns the file the slots of the control object at path
// (or of the section of that name) are locked on.
func lockFilePath(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	dir := os.Getenv("ProgramData")
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "shmgr", "locks", strings.NewReplacer(`\`, "_", "/", "_", ":", "_").Replace(path)+".lock")
}

func openSlots(path string) (*slotFile, error) {
	p := lockFilePath(path)
	if !filepath.IsAbs(path) {
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			return nil, err
		}
	}
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, os.NewSyscallError("CreateFile", err)
	}
	return &slotFile{h: h}, nil
}

func slotOverlapped(s int) *windows.Overlapped {
	off := uint64(slotLockBase + s)
	return &windows.Overlapped{Offset: uint32(off), OffsetHigh: uint32(off >> 32)}
}

func (f *slotFile) try(s int, flags uint32) (bool, error) {
	err := windows.LockFileEx(f.h, flags|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, slotOverlapped(s))
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return false, nil
	}
	if err != nil {
		return false, os.NewSyscallError("LockFileEx", err)
	}
	return true, nil
}

// lock takes slot s's lock if no one holds it, and reports whether it did.
func (f *slotFile) lock(s int) (bool, error) { return f.try(s, windows.LOCKFILE_EXCLUSIVE_LOCK) }

// held reports whether another handle holds slot s: a probe that takes a
// shared lock without waiting and gives it back.
func (f *slotFile) held(s int) (bool, error) {
	ok, err := f.try(s, 0)
	if err != nil || !ok {
		return !ok, err
	}
	windows.UnlockFileEx(f.h, 0, 1, 0, slotOverlapped(s))
	return false, nil
}

// close releases the slot.
func (f *slotFile) close() error { return windows.CloseHandle(f.h) }

// RemoveLocks removes the lock file of a section's slots (the host calls
// it when it deletes the region; a durable region's is its control file).
func RemoveLocks(path string) error {
	if filepath.IsAbs(path) {
		return nil
	}
	err := os.Remove(lockFilePath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
