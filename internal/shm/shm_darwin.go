package shm

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// NamedKind is how named objects are stored on this OS: x/sys offers no
// shm_open on macOS, so a named object is a file in the user's cache
// directory, mapped MAP_SHARED.
const NamedKind = KindFile

func namedDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	d := filepath.Join(base, "shmgr", "shm")
	return d, os.MkdirAll(d, 0o700)
}

func namedPath(name string) (string, error) {
	d, err := namedDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, name), nil
}

func createNamed(name string, size int64, perm uint32) (*Mapping, error) {
	p, err := namedPath(name)
	if err != nil {
		return nil, err
	}
	return createAt(p, name, KindFile, size, perm)
}

func openNamed(name string, size int64) (*Mapping, error) {
	p, err := namedPath(name)
	if err != nil {
		return nil, err
	}
	return openAt(p, name, KindFile, size)
}

func removeNamed(name string) error {
	p, err := namedPath(name)
	if err != nil {
		return err
	}
	return removeAt(p)
}

func listNamed(prefix string) ([]string, error) {
	d, err := namedDir()
	if err != nil {
		return nil, err
	}
	return listDir(d, prefix)
}

// reserve is a no-op on macOS: it has no fallocate on arbitrary files.
func reserve(fd int, size int64) error { return nil }

// FreeSpace reports the bytes available for new named objects.
func FreeSpace() (int64, error) {
	d, err := namedDir()
	if err != nil {
		return 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d, &st); err != nil {
		return 0, os.NewSyscallError("statfs", err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Chown gives a named object to group gid.
func Chown(name string, gid int) error {
	p, err := namedPath(name)
	if err != nil {
		return err
	}
	return os.Chown(p, -1, gid)
}

func namedObjectPath(name string) string {
	p, err := namedPath(name)
	if err != nil {
		return name
	}
	return p
}

func renameNamed(oldName, newName string) error {
	d, err := namedDir()
	if err != nil {
		return err
	}
	return os.Rename(filepath.Join(d, oldName), filepath.Join(d, newName))
}

func existsNamed(name string) (bool, error) {
	p, err := namedPath(name)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil && fi.Mode().IsRegular(), err
}
