//go:build !linux

package region

import (
	"sync/atomic"
	"time"
)

// pollEvery bounds how long a watcher sleeps between looks at the watch
// word where there is no futex.
const pollEvery = time.Millisecond

// waitWord polls *w until it differs from seen, at most timeout.
func waitWord(w *atomic.Uint32, seen uint32, timeout time.Duration) uint32 {
	deadline := time.Now().Add(timeout)
	for {
		v := w.Load()
		if v != seen || !time.Now().Before(deadline) {
			return v
		}
		time.Sleep(min(pollEvery, time.Until(deadline)))
	}
}

// wakeWord does nothing: pollers notice by themselves.
func wakeWord(w *atomic.Uint32) {}
