package region

// On amd64 (total store order) stores are not reordered with stores, nor
// loads with loads, and Go's atomic stores are XCHG (full barriers): the
// seqlock needs no fence beyond its atomics. These compile to nothing.

// storeFence orders the stores before it before the stores after it.
func storeFence() {}

// loadFence orders the loads before it before the loads after it.
func loadFence() {}
