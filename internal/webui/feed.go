package webui

import "sync"

// feed tells every stream that something it shows may have changed. A
// slow stream never blocks the sender: each subscriber has room for one
// signal, and signals coalesce.
type feed struct {
	// mu protects subs.
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// subscribe returns a channel that gets a signal at each change, and the
// function that ends the subscription.
func (f *feed) subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan struct{}]struct{}{}
	}
	f.subs[c] = struct{}{}
	f.mu.Unlock()
	return c, func() {
		f.mu.Lock()
		delete(f.subs, c)
		f.mu.Unlock()
	}
}

// notify signals every subscriber without blocking.
func (f *feed) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.subs {
		signal(c)
	}
}

func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
