// Package shmerr holds the kinds of error every layer of shmgr shares: the
// region, the host, the protocol, the server, the client and the GUI all
// return (or wrap) these sentinels, so that errors.Is(err, ErrNotFound)
// means the same thing whether the error was made in this process, by a
// mapped region, or by a host on the other end of a connection.
//
// A layer that needs a more specific error wraps one of these (a host that
// is closing is ErrClosed in package host, and it wraps ErrUnavailable),
// so that the kind survives and the specific error stays matchable. The
// mapping between kinds and the protocol's error words is in package proto
// (proto.CodeOf and Code.Err): one table each way.
//
// The package has no dependencies beyond the standard library's errors, so
// that the lowest layer (internal/region) can use it.
package shmerr

import "errors"

// The kinds of error. Their messages are what a user sees first, so they
// say what is wrong in a few words; wrapping adds the context.
var (
	// ErrNotFound: no region has this shm_id.
	ErrNotFound = errors.New("region not found")
	// ErrExists: a region with this shm_id exists already.
	ErrExists = errors.New("region already exists")
	// ErrBadID: the shm_id does not follow the grammar
	// [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
	ErrBadID = errors.New("invalid shm_id")
	// ErrTooLarge: the content does not fit the region, or a request or
	// reply is over a size limit.
	ErrTooLarge = errors.New("content too large")
	// ErrInvalidUTF8: content for a utf8 region is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("content is not valid UTF-8")
	// ErrLockTimeout: the region's lock was not acquired in time.
	ErrLockTimeout = errors.New("lock timeout")
	// ErrConflict: a conditional write found another version.
	ErrConflict = errors.New("version conflict")
	// ErrOutOfRange: a byte range lies outside the data.
	ErrOutOfRange = errors.New("range out of bounds")
	// ErrForbidden: the operation is not allowed (to this connection, or
	// on this region).
	ErrForbidden = errors.New("operation not allowed")
	// ErrUnauthorized: the host requires authentication first.
	ErrUnauthorized = errors.New("authentication required")
	// ErrLimit: a limit (regions, connections, watches, shared memory)
	// refuses the request.
	ErrLimit = errors.New("limit reached")
	// ErrUnavailable: the host cannot serve now (it is shutting down, or
	// the region's object is gone and not yet restored).
	ErrUnavailable = errors.New("host unavailable")
	// ErrProtocol: a request or reply is malformed, or names a command the
	// peer does not know.
	ErrProtocol = errors.New("protocol error")
	// ErrUnknownOutcome: a write (or CREATE, DELETE) may or may not have
	// taken effect: its answer was lost and a retry could not settle it.
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrFenced: the lease a write relied on has expired or been released,
	// or its fencing token is stale; nothing was written.
	ErrFenced = errors.New("lease lost")
	// ErrInternal: the host failed in a way the caller cannot fix.
	ErrInternal = errors.New("host error")
)

// New returns an error with message msg that is of the given kind:
// errors.Is matches it, and kind, so a layer can name its own case (a host
// that is closing) while callers that only know the kinds still match it.
// Each call returns a distinct error, to be kept in a package variable.
func New(kind error, msg string) error { return &kindError{msg: msg, kind: kind} }

type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }
