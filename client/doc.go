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
// concurrent use, and concurrent calls take turns.
//
// A dropped connection is re-dialled by the next request, with
// exponential backoff and jitter, and the request is retried when that is
// safe. Reads are simply repeated. Every write carries the Conn's client
// id and a sequence number; the host remembers the answers to each
// client's last 64 writes (for its 4096 most recent clients) and replays
// the answer to a repeated write instead of applying it again. So a write
// whose reply was lost is applied exactly once, as long as the same host
// session answers the retry (a host stopped gracefully hands its session
// to its next start). If the host crashed meanwhile, the retries run out
// of time, or more than 4096 other clients have written since (the host
// then keeps only this client's highest sequence number), the write fails
// with ErrUnknownOutcome: it may or may not have been applied, and it is
// never applied twice. CREATE and DELETE are not retried once
// sent; a lost reply is ErrUnknownOutcome too.
//
// A region mapped locally keeps working while the host is down. If the
// host deletes it, the next call notices (a flag in the control block) and
// asks the host again: it maps the region that now has that shm_id, or
// fails with ErrNotFound.
package client
