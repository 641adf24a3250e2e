package region

import "sync/atomic"

// wake is called after every commit with the watch word. Watchers in this
// process and others wait for the word to change; cross-process wake-up
// by futex is added with the watch work (see docs/ARCHITECTURE.md).
func wake(w *atomic.Uint32) {}
