package region

// On arm64 Go's atomic.Store is STLR (a release: earlier accesses are
// ordered before it, later ones are not) and atomic.Load is LDAR (an
// acquire: later accesses are ordered after it, earlier ones are not).
// The seqlock needs the two orderings those leave out; see doc.go.

// storeFence orders the stores before it before the stores after it:
// DMB ISHST (fence_arm64.s).
//
//go:noescape
func storeFence()

// loadFence orders the loads before it before the loads and stores after
// it: DMB ISHLD (fence_arm64.s).
//
//go:noescape
func loadFence()
