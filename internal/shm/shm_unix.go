//go:build linux || darwin

package shm

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// sysMapping holds nothing on Unix: the mapping outlives its descriptor.
type sysMapping struct{}

// createAt creates the file at path exclusively, sizes it and maps it.
func createAt(path, name string, kind Kind, size int64, perm uint32) (*Mapping, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, perm)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, ErrExists
		}
		return nil, os.NewSyscallError("open", err)
	}
	defer unix.Close(fd)
	fail := func(err error) (*Mapping, error) {
		_ = unix.Unlink(path)
		return nil, err
	}
	// The umask may have narrowed perm; the caller asked for exactly perm.
	if err := unix.Fchmod(fd, perm); err != nil {
		return fail(os.NewSyscallError("fchmod", err))
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		return fail(os.NewSyscallError("ftruncate", err))
	}
	if err := reserve(fd, size); err != nil {
		return fail(err)
	}
	b, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(os.NewSyscallError("mmap", err))
	}
	return &Mapping{name: name, path: path, kind: kind, b: b}, nil
}

// openAt maps an existing file at path, checking its size.
func openAt(path, name string, kind Kind, size int64) (*Mapping, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, ErrNotFound
		}
		return nil, os.NewSyscallError("open", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, os.NewSyscallError("fstat", err)
	}
	if size <= 0 {
		size = st.Size
	}
	if st.Size != size {
		return nil, fmt.Errorf("object is %d bytes, expected %d", st.Size, size)
	}
	if size == 0 {
		return nil, fmt.Errorf("object is empty")
	}
	b, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Mapping{name: name, path: path, kind: kind, b: b}, nil
}

func mapFile(path string, size int64, create bool, perm uint32) (*Mapping, error) {
	if create {
		return createAt(path, path, KindFile, size, perm)
	}
	return openAt(path, path, KindFile, size)
}

func unmap(m *Mapping) error {
	if err := unix.Munmap(m.b); err != nil {
		return os.NewSyscallError("munmap", err)
	}
	return nil
}

func syncMapping(m *Mapping) error {
	if err := unix.Msync(m.b, unix.MS_SYNC); err != nil {
		return os.NewSyscallError("msync", err)
	}
	return nil
}

func removeAt(path string) error {
	if err := unix.Unlink(path); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return ErrNotFound
		}
		return os.NewSyscallError("unlink", err)
	}
	return nil
}

func listDir(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func protectRead(m *Mapping) error {
	if err := unix.Mprotect(m.b, unix.PROT_READ); err != nil {
		return os.NewSyscallError("mprotect", err)
	}
	return nil
}
