package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockName is the file that marks a data directory as in use by a host.
const LockName = "host.lock"

// DirLock is a data directory's lock: while it is held no other host
// uses the directory. The kernel drops it when the process dies.
type DirLock struct {
	f   *os.File
	dir string
}

// LockDir takes the lock of dir, which must exist, without waiting: it
// fails with ErrBusy (naming the holder's pid) if another host holds it.
// Two hosts on one directory would overwrite each other's registry and
// tokens and remove each other's regions, so a host takes the lock before
// it reads any file there to change it (tokens, TLS, registry, session).
func LockDir(dir string) (*DirLock, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("host: lock %s: %w", path, err)
	}
	busy, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("host: lock %s: %w", path, err)
	}
	if busy {
		b, _ := os.ReadFile(path)
		f.Close()
		who := "another host"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			who = fmt.Sprintf("another host (pid %d)", pid)
		}
		return nil, fmt.Errorf("%w: data directory %s is in use by %s: stop it, or give this one another --data-dir", ErrBusy, dir, who)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &DirLock{f: f, dir: dir}, nil
}

// Close releases the lock. It is safe to call more than once.
func (l *DirLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
