//go:build !shmgr_flock

package region

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// slotFile holds this Region's own open file description of the control
// object. Its open-file-description lock on one byte is the slot: the
// kernel releases it when the description is closed, which happens when
// the process dies however it dies, and it is never shared with another
// process (the descriptor is close-on-exec; shmgr never forks without
// exec). F_OFD_GETLK answers for locks of every process, whatever pid
// namespace it lives in, and for this process's other descriptions too.
type slotFile struct{ fd int }

func openSlots(path string) (*slotFile, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, os.NewSyscallError("open", err)
	}
	return &slotFile{fd: fd}, nil
}

func slotRange(s int, typ int16) *unix.Flock_t {
	return &unix.Flock_t{Type: typ, Whence: 0, Start: slotLockBase + int64(s), Len: 1}
}

// lock takes slot s's lock if no one holds it, and reports whether it did.
func (f *slotFile) lock(s int) (bool, error) {
	err := unix.FcntlFlock(uintptr(f.fd), unix.F_OFD_SETLK, slotRange(s, unix.F_WRLCK))
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return false, nil
	}
	if err != nil {
		return false, os.NewSyscallError("fcntl(F_OFD_SETLK)", err)
	}
	return true, nil
}

// held reports whether another open file description holds slot s.
func (f *slotFile) held(s int) (bool, error) {
	lk := slotRange(s, unix.F_WRLCK)
	if err := unix.FcntlFlock(uintptr(f.fd), unix.F_OFD_GETLK, lk); err != nil {
		return false, os.NewSyscallError("fcntl(F_OFD_GETLK)", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// close releases the slot.
func (f *slotFile) close() error { return unix.Close(f.fd) }

// RemoveLocks removes what the slot locks of the control object at path
// left in the file system: nothing on Linux.
func RemoveLocks(path string) error { return nil }
