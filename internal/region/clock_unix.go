//go:build unix

package region

import "golang.org/x/sys/unix"

// monotonic returns the system-wide monotonic clock in nanoseconds: the
// same in every process, never stepped by time changes.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
