// Package region implements shmgr's in-memory protocol on a mapped region:
// the documented byte layout, the compare-and-swap lock that lives in
// shared memory, the seqlock that lets readers copy without blocking
// writers, and the undo log that makes a write killed at any instant leave
// either the old or the new content.
//
// A region is two mappings: the data object, holding the user's bytes
// exactly as the documented layout says (for the utf8 layout: lock flag at
// offset 0, uint32 little-endian length at 1-4, UTF-8 data from 5), and
// the control block beside it (version counter, lock owner, undo log).
// See docs/ARCHITECTURE.md for the byte map.
//
// Every process that maps a region — the host and local clients alike —
// uses this package, so they all speak the same lock and version protocol.
//
// # Caveats
//
// IMPORTANT: a Region aliases memory it does not own. The mappings passed
// to Attach must stay mapped for as long as the Region is used.
//
// The lock owner is recorded as a process id; a lock whose owner process
// has died is taken back by the next process that waits for it. Processes
// in different pid namespaces that share one /dev/shm would see each
// other's owners as dead: do not share regions across pid namespaces.
//
// The seqlock relies on the ordering of Go's atomic operations around
// plain copies, which holds on amd64 and arm64 (Go's atomics there are
// full barriers for loads and stores respectively used here).
//
// Programs outside shmgr that follow only the documented layout take the
// flag at offset 0. shmgr honours it: a writer waits for it, and a reader
// retries while it is set. Such a program's write does not bump the
// version counter, so shmgr cannot see it as a change unless it compares
// content.
package region
