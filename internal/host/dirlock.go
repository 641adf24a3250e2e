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

// lockDir makes sure only one host uses a data directory at a time: two
// would overwrite each other's registry and remove each other's regions as
// orphans. It returns the open lock file, to close when the host stops.
func lockDir(dir string) (*os.File, error) {
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
	return f, nil
}
