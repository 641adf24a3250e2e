//go:build !amd64 && !arm64

package region

import "sync/atomic"

// On other architectures (not shmgr targets) a sequentially consistent
// read-modify-write stands in for the fences: Go's atomics are full
// barriers for the accesses around them on every port that has them as
// one instruction sequence with a leading and trailing fence. Unverified:
// run shmgr on amd64 or arm64.

// storeFence orders the stores before it before the stores after it.
func storeFence() { var x atomic.Uint32; x.Add(1) }

// loadFence orders the loads before it before the loads after it.
func loadFence() { var x atomic.Uint32; x.Add(1) }
