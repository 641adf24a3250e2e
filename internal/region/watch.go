package region

import "time"

// WatchSeq returns the watch word: a counter bumped by every commit (and
// every recovery). Pass it to WaitChange to sleep until the next one.
func (r *Region) WatchSeq() uint32 { return r.watch.Load() }

// WaitChange blocks until the watch word differs from seen, or until
// timeout passes, and returns the word's current value. Waiters in any
// process are woken by a commit in any process: on Linux by a futex on the
// word in shared memory (no polling), elsewhere by polling with a bounded
// interval.
func (r *Region) WaitChange(seen uint32, timeout time.Duration) uint32 {
	if v := r.watch.Load(); v != seen {
		return v
	}
	r.waiters.Add(1)
	defer r.waiters.Add(^uint32(0))
	return waitWord(r.watch, seen, timeout)
}

// notify wakes the watch word's waiters, if there are any: a commit with
// nobody watching costs no system call.
func (r *Region) notify() {
	r.watch.Add(1)
	if r.waiters.Load() != 0 {
		wakeWord(r.watch)
	}
}

// Kick wakes every waiter without committing anything (they find the
// version unchanged). The host uses it to stop its watchers promptly.
func (r *Region) Kick() { r.notify() }
