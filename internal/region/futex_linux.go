package region

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG: the word is shared between
// processes.
const (
	futexWait = 0
	futexWake = 1
)

// waitWord sleeps in the kernel while *w == seen, at most timeout.
func waitWord(w *atomic.Uint32, seen uint32, timeout time.Duration) uint32 {
	deadline := time.Now().Add(timeout)
	for {
		v := w.Load()
		if v != seen {
			return v
		}
		left := time.Until(deadline)
		if left <= 0 {
			return v
		}
		ts := unix.NsecToTimespec(int64(left))
		// EAGAIN (the word changed), EINTR and ETIMEDOUT all end up in the
		// check above.
		unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWait, uintptr(seen), uintptr(unsafe.Pointer(&ts)), 0, 0)
	}
}

// wakeWord wakes every process sleeping on w.
func wakeWord(w *atomic.Uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, uintptr(1<<31-1), 0, 0, 0)
}
