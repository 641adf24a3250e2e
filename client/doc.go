// Package client is the Go client of shmgr, the cross-network shared
// memory manager.
//
// Dial connects to a host, reads its metadata line and returns a Region.
// When the host runs on this machine and its shared-memory object can be
// opened, the Region maps it directly (zero copy: reads and writes are
// memory copies under the same lock and version protocol the host uses);
// otherwise it speaks the shmgr protocol over TCP. Options.Mode forces
// either; Region.Mode tells which one is in use.
//
//	r, err := client.Dial(ctx, "127.0.0.1:9410", "default", client.DefaultOptions())
//	if err != nil { ... }
//	defer r.Close()
//	v, err := r.Write(ctx, []byte("hello"))
//	b, err := r.Read(ctx)
//
// Connect gives a Conn for the host-wide operations: List, Create,
// Delete, HostInfo.
//
// Errors from the host and from local regions match the same sentinels
// with errors.Is: ErrNotFound, ErrTooLarge, ErrInvalidUTF8, ErrLockTimeout,
// ErrConflict and the others below.
//
// # Caveats
//
// A Conn carries one request at a time; a Region (and Conn) is safe for
// concurrent use, and concurrent calls take turns. A request cancelled by
// its context mid-flight leaves the connection unusable (ErrBroken):
// dial again.
package client
