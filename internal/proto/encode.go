package proto

import (
	"fmt"
	"strconv"
)

// The encoders below are described in the package doc, under Encoding.

// AppendOK appends "OK\n".
func AppendOK(dst []byte) []byte { return append(dst, "OK\n"...) }

// AppendOKText appends "OK <text>\n", the compatible READ reply. The text
// is written as is.
//
// IMPORTANT: a text holding '\n' breaks the framing; the READ reply of the
// original protocol cannot carry one.
func AppendOKText(dst, text []byte) []byte {
	dst = append(dst, "OK "...)
	dst = append(dst, text...)
	return append(dst, '\n')
}

// AppendOKVersion appends "OK <v>\n", the reply to SET and WATCH (a
// version) and to LOCK (a fencing token).
func AppendOKVersion(dst []byte, v uint64) []byte {
	dst = append(dst, "OK "...)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\n')
}

// AppendValue appends "VALUE <version> <len>\n<p>\n".
func AppendValue(dst []byte, version uint64, p []byte) []byte {
	dst = AppendValueHeader(dst, version, len(p))
	dst = append(dst, p...)
	return append(dst, '\n')
}

// AppendValueHeader appends "VALUE <version> <n>\n". The caller then sends
// the n bytes and a '\n' itself, which avoids copying large payloads.
func AppendValueHeader(dst []byte, version uint64, n int) []byte {
	dst = append(dst, "VALUE "...)
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\n')
}

// AppendJSON appends "JSON <len>\n<js>\n".
func AppendJSON(dst, js []byte) []byte {
	dst = append(dst, "JSON "...)
	dst = strconv.AppendInt(dst, int64(len(js)), 10)
	dst = append(dst, '\n')
	dst = append(dst, js...)
	return append(dst, '\n')
}

// AppendEvent appends "EVENT <id> <version> <len>\n<p>\n", a frame the
// host pushes to a watcher.
func AppendEvent(dst, id []byte, version uint64, p []byte) []byte {
	return appendLenPayload(appendPushHead(dst, "EVENT ", id, version), p)
}

// appendPushHead appends "<verb><id> <version>", the start of a pushed
// frame.
func appendPushHead(dst []byte, verb string, id []byte, version uint64) []byte {
	dst = append(dst, verb...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	return strconv.AppendUint(dst, version, 10)
}

// appendLenPayload appends " <len>\n<p>\n", the end of a frame with data.
func appendLenPayload(dst, p []byte) []byte {
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(p)), 10)
	dst = append(dst, '\n')
	dst = append(dst, p...)
	return append(dst, '\n')
}

// AppendDelta appends "DELTA <id> <version> <size> <off> <len>\n<p>\n": the
// content at version is size bytes long and equals the content of the
// previous event on this watch except for p at off (see DELTA in
// docs/PROTOCOL.md).
func AppendDelta(dst, id []byte, version uint64, size, off int64, p []byte) []byte {
	dst = appendPushHead(dst, "DELTA ", id, version)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, size, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, off, 10)
	return appendLenPayload(dst, p)
}

// ApplyDelta returns the content a DELTA frame describes: prev (the
// content of the previous event) cut or extended to size bytes, with p
// at off. prev is not modified. It fails if the frame does not fit prev:
// p must lie within size, start within prev, and, if size exceeds prev,
// reach the end.
func ApplyDelta(prev []byte, size, off int64, p []byte) ([]byte, error) {
	if err := checkDelta(int64(len(prev)), size, off, p); err != nil {
		return nil, err
	}
	b := make([]byte, size)
	copy(b, prev)
	copy(b[off:], p)
	return b, nil
}

// ApplyDeltaTo is ApplyDelta in place: it turns buf, which holds the
// previous content, into the new content, reusing buf's storage when it
// can. On error buf is unchanged.
func ApplyDeltaTo(buf []byte, size, off int64, p []byte) ([]byte, error) {
	if err := checkDelta(int64(len(buf)), size, off, p); err != nil {
		return buf, err
	}
	if size > int64(cap(buf)) {
		buf = append(buf[:cap(buf)], make([]byte, size-int64(cap(buf)))...)
	}
	buf = buf[:size]
	copy(buf[off:], p)
	return buf, nil
}

// checkDelta checks a DELTA frame against the length of the previous
// content.
func checkDelta(prev, size, off int64, p []byte) error {
	n := int64(len(p))
	if size < 0 || off < 0 || off > size || n > size-off || off > prev || size > prev && off+n != size {
		return fmt.Errorf("%w: a delta of %d bytes at %d, to %d bytes, does not fit the previous %d bytes", ErrMalformed, n, off, size, prev)
	}
	return nil
}

// AppendPong appends "PONG\n".
func AppendPong(dst []byte) []byte { return append(dst, "PONG\n"...) }

// AppendError appends "ERROR <code> <msg>\n", with every '\r' and '\n' of
// msg replaced by a space so the reply stays one line ("ERROR <code>\n"
// when msg is empty). CodeUnknown, and a value outside the enum, is sent
// as the original protocol's "ERROR <msg>\n", without a code word.
func AppendError(dst []byte, c Code, msg string) []byte {
	dst = append(dst, "ERROR"...)
	if c != CodeUnknown && c < numCodes {
		dst = append(dst, ' ')
		dst = append(dst, codeNames[c]...)
	}
	if msg != "" {
		dst = appendLine(append(dst, ' '), msg)
	}
	return append(dst, '\n')
}

// appendLine appends msg with every '\r' and '\n' replaced by a space, so
// that it stays on one line.
func appendLine(dst []byte, msg string) []byte {
	for i := 0; i < len(msg); i++ {
		b := msg[i]
		if b == '\r' || b == '\n' {
			b = ' '
		}
		dst = append(dst, b)
	}
	return dst
}

// AppendConflict appends the refusal of a conditional write:
// "ERROR conflict <current> expected=<expected> <msg>\n". The fields come
// first so that ReplyParser fills Reply.Conflict; clients older than the
// expected= field read the current version as the message's first word
// and still find "expected version N" in msg, which they parsed before.
func AppendConflict(dst []byte, current, expected uint64, msg string) []byte {
	dst = append(dst, "ERROR conflict "...)
	dst = strconv.AppendUint(dst, current, 10)
	dst = append(dst, " expected="...)
	dst = strconv.AppendUint(dst, expected, 10)
	if msg != "" {
		dst = appendLine(append(dst, ' '), msg)
	}
	return append(dst, '\n')
}

// AppendRead appends "READ\n".
func AppendRead(dst []byte) []byte { return append(dst, "READ\n"...) }

// AppendWrite appends "WRITE <len>\n<p>\n".
func AppendWrite(dst, p []byte) []byte {
	dst = append(dst, "WRITE "...)
	dst = strconv.AppendInt(dst, int64(len(p)), 10)
	dst = append(dst, '\n')
	dst = append(dst, p...)
	return append(dst, '\n')
}

// AppendPing appends "PING\n".
func AppendPing(dst []byte) []byte { return append(dst, "PING\n"...) }

// AppendQuit appends "QUIT\n".
func AppendQuit(dst []byte) []byte { return append(dst, "QUIT\n"...) }

// AppendUse appends "USE <id>\n".
func AppendUse(dst, id []byte) []byte { return appendVerbID(dst, "USE ", id) }

// AppendGet appends "GET <id>\n".
func AppendGet(dst, id []byte) []byte { return appendVerbID(dst, "GET ", id) }

// AppendGetRange appends "GET <id> <off> <n>\n".
func AppendGetRange(dst, id []byte, off, n int64) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, off, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\n')
}

// GetOptions are the options of a GET request. The zero value reads the
// whole content from the host's local copy.
type GetOptions struct {
	// HasRange reads Length bytes from Offset instead of the whole content.
	HasRange bool
	// Offset and Length are the range read with HasRange.
	Offset, Length int64
	// Consistent makes the read linearizable: a cluster node confirms
	// with the leader and applies at least as far as it has before it
	// reads (the trailing word "consistent"). A single host reads as
	// always.
	Consistent bool
}

// AppendGetWith appends "GET <id> [<off> <n>] [consistent]\n".
func AppendGetWith(dst, id []byte, o GetOptions) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, id...)
	if o.HasRange {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, o.Offset, 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, o.Length, 10)
	}
	if o.Consistent {
		dst = append(dst, " consistent"...)
	}
	return append(dst, '\n')
}

// AppendReadConsistent appends "READ consistent\n": READ of the current
// region, linearizable (see GetOptions.Consistent).
func AppendReadConsistent(dst []byte) []byte { return append(dst, "READ consistent\n"...) }

// SetOptions are the options of a SET request. The zero value is a plain
// whole-region write.
type SetOptions struct {
	// HasAt makes the write a byte-range write at offset At (at=).
	HasAt bool
	// At is the offset of a byte-range write.
	At int64
	// HasIfVer makes the write conditional on the region's version being
	// IfVersion (ifver=).
	HasIfVer bool
	// IfVersion is the version a conditional write expects.
	IfVersion uint64
	// ClientID, when not empty, sends the idempotency key cid=ClientID
	// seq=Seq. It follows the region id grammar.
	ClientID []byte
	// Seq is the idempotency key's sequence number, sent with ClientID.
	Seq uint64
	// HasFence makes the write one made under the region's lock, which
	// this connection holds with fencing token Fence (fence=). The host
	// refuses it with CodeFenced if that lease has ended.
	HasFence bool
	// Fence is the fencing token that LOCK returned.
	Fence uint64
}

// AppendSet appends
// "SET <id> <len> [at=<n>] [ifver=<v>] [cid=<c> seq=<n>] [fence=<t>]\n<p>\n".
func AppendSet(dst, id, p []byte, o SetOptions) []byte {
	dst = append(dst, "SET "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(p)), 10)
	if o.HasAt {
		dst = append(dst, " at="...)
		dst = strconv.AppendInt(dst, o.At, 10)
	}
	if o.HasIfVer {
		dst = append(dst, " ifver="...)
		dst = strconv.AppendUint(dst, o.IfVersion, 10)
	}
	if len(o.ClientID) > 0 {
		dst = append(dst, " cid="...)
		dst = append(dst, o.ClientID...)
		dst = append(dst, " seq="...)
		dst = strconv.AppendUint(dst, o.Seq, 10)
	}
	if o.HasFence {
		dst = append(dst, " fence="...)
		dst = strconv.AppendUint(dst, o.Fence, 10)
	}
	dst = append(dst, '\n')
	dst = append(dst, p...)
	return append(dst, '\n')
}

// AppendInfo appends "INFO <id>\n", or "INFO\n" (host info) when id is
// empty.
func AppendInfo(dst, id []byte) []byte {
	if len(id) == 0 {
		return append(dst, "INFO\n"...)
	}
	return appendVerbID(dst, "INFO ", id)
}

// AppendList appends "LIST\n".
func AppendList(dst []byte) []byte { return append(dst, "LIST\n"...) }

// CreateOptions are the options of a CREATE request. Zero fields are not
// sent, and the host picks its defaults for them.
type CreateOptions struct {
	// Size is the data object's size in bytes (size=), if not 0.
	Size int64
	// Layout is "utf8" or "raw" (layout=), if not empty.
	Layout string
	// Durable asks for a file-backed region that survives reboots
	// (durable=1).
	Durable bool
	// MaxWrite is the largest write the region takes (max_write=; raw
	// only), if not 0: its undo area holds that much instead of the whole
	// size.
	MaxWrite int64
}

// AppendCreate appends "CREATE <id> [size=<n>] [layout=<l>] [durable=1]
// [max_write=<n>]\n".
func AppendCreate(dst, id []byte, o CreateOptions) []byte {
	dst = append(dst, "CREATE "...)
	dst = append(dst, id...)
	if o.Size != 0 {
		dst = append(dst, " size="...)
		dst = strconv.AppendInt(dst, o.Size, 10)
	}
	if o.Layout != "" {
		dst = append(dst, " layout="...)
		dst = append(dst, o.Layout...)
	}
	if o.Durable {
		dst = append(dst, " durable=1"...)
	}
	if o.MaxWrite != 0 {
		dst = append(dst, " max_write="...)
		dst = strconv.AppendInt(dst, o.MaxWrite, 10)
	}
	return append(dst, '\n')
}

// AppendDelete appends "DELETE <id>\n".
func AppendDelete(dst, id []byte) []byte { return appendVerbID(dst, "DELETE ", id) }

// AppendWatch appends "WATCH <id> [from=<from>] [delta=1]\n".
func AppendWatch(dst, id []byte, o WatchOptions) []byte {
	dst = append(dst, "WATCH "...)
	dst = append(dst, id...)
	if o.HasFrom {
		dst = append(dst, " from="...)
		dst = strconv.AppendUint(dst, o.From, 10)
	}
	if o.Delta {
		dst = append(dst, " delta=1"...)
	}
	return append(dst, '\n')
}

// WatchOptions are WATCH's options.
type WatchOptions struct {
	// HasFrom and From: the watcher has seen the region at version From.
	HasFrom bool
	From    uint64
	// Delta asks for DELTA frames where they are shorter.
	Delta bool
}

// AppendUnwatch appends "UNWATCH <id>\n".
func AppendUnwatch(dst, id []byte) []byte { return appendVerbID(dst, "UNWATCH ", id) }

// AppendAuth appends "AUTH <token>\n". The token must be printable ASCII
// without spaces.
func AppendAuth(dst, token []byte) []byte { return appendVerbID(dst, "AUTH ", token) }

// LockOptions are the options of a LOCK request. The zero value asks for
// the host's default lease and lock timeout.
type LockOptions struct {
	// Lease is the lease length in milliseconds (lease=), sent when
	// HasLease is set; it must be > 0. The host's default is 10000.
	// Wait is how long to wait for the lock in milliseconds (wait=), sent
	// when HasWait is set; 0 tries once. The host's default is its lock
	// timeout.
	Lease, Wait int64
	// HasLease sends lease=Lease; HasWait sends wait=Wait.
	HasLease, HasWait bool
}

// AppendLock appends "LOCK <id> [lease=<ms>] [wait=<ms>]\n". The host
// replies "OK <token>\n" with the lease's fencing token.
func AppendLock(dst, id []byte, o LockOptions) []byte {
	dst = append(dst, "LOCK "...)
	dst = append(dst, id...)
	if o.HasLease {
		dst = append(dst, " lease="...)
		dst = strconv.AppendInt(dst, o.Lease, 10)
	}
	if o.HasWait {
		dst = append(dst, " wait="...)
		dst = strconv.AppendInt(dst, o.Wait, 10)
	}
	return append(dst, '\n')
}

// AppendRenew appends "RENEW <id> <token> [lease=<ms>]\n", with lease=
// only when leaseMS > 0 (otherwise the host's default lease applies).
func AppendRenew(dst, id []byte, token uint64, leaseMS int64) []byte {
	dst = append(dst, "RENEW "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, token, 10)
	if leaseMS > 0 {
		dst = append(dst, " lease="...)
		dst = strconv.AppendInt(dst, leaseMS, 10)
	}
	return append(dst, '\n')
}

// AppendUnlock appends "UNLOCK <id> <token>\n".
func AppendUnlock(dst, id []byte, token uint64) []byte {
	dst = append(dst, "UNLOCK "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, token, 10)
	return append(dst, '\n')
}

// AppendClusterStatus appends "CLUSTER STATUS\n". The host replies with
// JSON: its node's status and every member's.
func AppendClusterStatus(dst []byte) []byte { return append(dst, "CLUSTER STATUS\n"...) }

// AppendClusterAdd appends "CLUSTER ADD <name> <addr> [<fingerprint>]\n":
// add node name, reached at Raft address addr, with its certificate's
// fingerprint if fp is not empty.
func AppendClusterAdd(dst, name, addr, fp []byte) []byte {
	dst = append(dst, "CLUSTER ADD "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, addr...)
	if len(fp) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, fp...)
	}
	return append(dst, '\n')
}

// AppendClusterRemove appends "CLUSTER REMOVE <name>\n".
func AppendClusterRemove(dst, name []byte) []byte { return appendVerbID(dst, "CLUSTER REMOVE ", name) }

// AppendClusterLeader appends "CLUSTER LEADER <name>\n".
func AppendClusterLeader(dst, name []byte) []byte { return appendVerbID(dst, "CLUSTER LEADER ", name) }

// appendVerbID appends verb (with its trailing space), id and '\n'.
func appendVerbID(dst []byte, verb string, id []byte) []byte {
	dst = append(dst, verb...)
	dst = append(dst, id...)
	return append(dst, '\n')
}
