//go:build unix

package region

import (
	"errors"

	"golang.org/x/sys/unix"
)

// alive reports whether a process with this pid exists.
func alive(pid uint32) bool {
	err := unix.Kill(int(pid), 0)
	return err == nil || !errors.Is(err, unix.ESRCH)
}
