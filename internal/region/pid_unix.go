//go:build unix

package region

import (
	"errors"

	"golang.org/x/sys/unix"
)

// pidAlive reports whether a process with this pid exists in this pid
// namespace. Only Upgrade uses it: format 1 named owners by pid, and a pid
// is all a format-1 block has to go on.
func pidAlive(pid uint32) bool {
	err := unix.Kill(int(pid), 0)
	return err == nil || !errors.Is(err, unix.ESRCH)
}
