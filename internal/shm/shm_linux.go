package shm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// dir is where Linux keeps POSIX shared-memory objects: shm_open(3) is
// open(2) on this tmpfs.
const dir = "/dev/shm/"

// NamedKind is how named objects are stored on this OS.
const NamedKind = KindPOSIX

func createNamed(name string, size int64, perm uint32) (*Mapping, error) {
	return createAt(dir+name, name, KindPOSIX, size, perm)
}

func openNamed(name string, size int64) (*Mapping, error) {
	return openAt(dir+name, name, KindPOSIX, size)
}

func removeNamed(name string) error { return removeAt(dir + name) }

func listNamed(prefix string) ([]string, error) { return listDir(dir, prefix) }

// reserve allocates the object's pages now, so that running out of room
// in /dev/shm is an error at create time rather than a SIGBUS on first
// write.
func reserve(fd int, size int64) error {
	err := unix.Fallocate(fd, 0, 0, size)
	if err == nil || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("not enough space for %d bytes (shared memory is full; free some or raise the tmpfs size): %w", size, os.NewSyscallError("fallocate", err))
	}
	return os.NewSyscallError("fallocate", err)
}

// FreeSpace reports the bytes available for new named objects.
func FreeSpace() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, os.NewSyscallError("statfs", err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Chown gives a named object to group gid.
func Chown(name string, gid int) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return os.Chown(dir+name, -1, gid)
}

func namedObjectPath(name string) string { return dir + name }

func renameNamed(oldName, newName string) error { return os.Rename(dir+oldName, dir+newName) }

func existsNamed(name string) (bool, error) {
	fi, err := os.Lstat(dir + name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil && fi.Mode().IsRegular(), err
}
