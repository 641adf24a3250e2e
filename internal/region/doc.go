// Package region implements shmgr's in-memory protocol on a mapped region:
// the documented byte layout, the compare-and-swap lock that lives in
// shared memory, the seqlock that lets readers copy without blocking
// writers, and the undo log that makes a write killed at any instant leave
// either the old or the new content.
//
// A region is two mappings: the data object, holding the user's bytes
// exactly as the documented layout says (for the utf8 layout: lock flag at
// offset 0, uint32 little-endian length at 1-4, UTF-8 data from 5), and
// the control block beside it (format 2: version counter, lock word, lease
// word, owner slots, undo log). See docs/ARCHITECTURE.md for the byte map;
// a test keeps it and the constants here in step.
//
// Every process that maps a region — the host and local clients alike —
// uses this package, so they all speak the same lock and version protocol.
//
// # Owners
//
// A lock owner is an owner slot of the control block, never a pid. Attach
// claims a free slot and holds a kernel lock on it until Close: on Linux
// an open-file-description lock (fcntl F_OFD_SETLK) on one byte of the
// control object; on macOS, which has no such locks, flock(2) on a file
// of the slot's own beside the control object (flock locks also belong to
// the open file description; POSIX record locks would not do: they
// belong to the process, are invisible to its other mappings and vanish
// when it closes any descriptor of the file); on Windows LockFileEx on
// the control file, or on a lock file under %ProgramData%\shmgr\locks for
// page-file sections. Each holds: the kernel releases the lock when the
// process dies, whatever kills it; no other process inherits it (the
// descriptors are close-on-exec); and every process sees every lock,
// whatever pid namespace it lives in. Claiming a slot bumps its epoch,
// and the lock word names slot and epoch, so the next holder of a dead
// process's slot is never taken for it. A waiter asks the kernel whether
// the owner's slot is still held (one system call, at most once a
// millisecond, only while waiting); the write path makes none.
//
// Slots are finite (128). When every slot is held by a live process,
// Attach fails with ErrNoSlot; a dead process's slot is free again at
// once.
//
// Every change of ownership is one compare-and-swap on the word the
// caller validated: taking a free lock, breaking an expired lease,
// taking a dead owner's lock, releasing (which first freezes the
// validated word with the commit bit), renewing and setting the lease
// word. A lost CAS is ErrFenced (or another wait round); nothing is ever
// stored over a word someone else may have changed. The lease word is
// tagged with the generation of its lock word, so a renewal that loses
// the race against a break leaves a word the new holder ignores.
//
// After a reboot no slot lock survives, so every recorded owner is dead
// and every lease void; the control block records the boot id it was last
// adopted in, and Rebooted reports a change (the host then restores a
// durable region from its checkpoint: see WriteCheckpoint).
//
// # Fences
//
// The seqlock is: a writer stores seq odd, writes the data, stores seq
// even; a reader loads seq, copies, loads seq again and accepts the copy
// if both loads are equal and even. Go's atomics give the ordering of the
// seq accesses themselves; the data accesses are plain. Two orderings
// between plain and atomic accesses are needed, the two places where the
// Linux kernel's seqcount uses smp_wmb and smp_rmb:
//
//  1. Writer: the odd seq store must be visible before any data store
//     (else a reader could copy new bytes, then see the old even seq on
//     both loads). storeFence after the odd store. On arm64 atomic.Store
//     is STLR, a release: it orders what comes before it, not what comes
//     after, so a DMB ISHST is needed. The even store needs nothing: as a
//     release it already follows every data store.
//  2. Reader: every data load must be done before the second seq load
//     (else the copy could read bytes of a write that begins after the
//     check). loadFence before the re-check. atomic.Load is LDAR on
//     arm64, an acquire: it orders what comes after it, not what comes
//     before, so a DMB ISHLD is needed. The first load needs nothing: as
//     an acquire it precedes every data load.
//
// On amd64 neither is needed: stores are not reordered with older stores
// nor loads with older loads (TSO), and the fences compile to nothing.
// Both fences are function calls, so the compiler moves no memory access
// across them either. Emulation (qemu-user, as the tests run arm64 here)
// uses the host's ordering and cannot show a missing fence: this argument
// is what covers arm64.
//
// The undo log needs no fence of its own: the undo bytes and fields are
// stored before the undo state's atomic store (a release), which precedes
// the odd seq store; they are read only by a process that found the
// writer dead, through a system call, after the writer's last store.
//
// # Programs outside shmgr
//
// A program that knows only the documented layout takes the flag at
// offset 0 (0 free, 1 held; a 32-bit CAS on bytes 0-3 keeping bytes 1-3
// is the safe way), writes length and data, and clears the flag. What it
// can expect: shmgr writers wait for its flag and never write while it
// holds it; shmgr readers retry while its flag is set and shmgr's lock is
// free, so they never return its half-written bytes, provided it sets
// the flag before its first data store and clears it after its last
// (with the fences its own architecture needs for that: on arm64 a
// release store or DMB ISH before clearing); a dead shmgr writer's
// recovery never clears a flag it holds. What it cannot expect: its
// writes do not move the version counter, so watchers and conditional
// writers do not see them as changes; nothing recovers its own crash (a
// flag it leaves set stays set, and shmgr writers time out naming "a
// program outside shmgr"); and it has no undo log, so its crash mid-write
// leaves a torn value. A reader outside shmgr sees the flag set for the
// whole of every shmgr write to a utf8 region (and for a whole lease), but
// a clear flag before and after its copy does not prove the copy whole: a
// shmgr write may begin and end in between. Taking the flag for the copy
// does; so does comparing seq (control block offset 64) before and after,
// for a reader that maps the control block too.
//
// # Caveats
//
// IMPORTANT: a Region aliases memory it does not own. The mappings passed
// to Attach must stay mapped until Close.
//
// A shmgr process killed between taking shmgr's lock and finding the
// offset-0 flag held by a program outside shmgr (a few instructions) has
// its lock recovered as if it had held the flag: only then, and only with
// such a program holding the flag at that instant, can the two overlap.
// Every other kill leaves the flag to whoever holds it.
//
// A lock timeout names the owner's pid as the owner recorded it: in its
// own pid namespace, so in another container it may be another process's
// number here. It is for messages only.
//
// A format-1 control block (pids as owners) is converted by Upgrade,
// which the host runs when it adopts one. A format-1 process still
// mapping the region keeps speaking format 1 to it: stop those first.
package region
