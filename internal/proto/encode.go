package proto

import "strconv"

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
	dst = append(dst, "EVENT "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(p)), 10)
	dst = append(dst, '\n')
	dst = append(dst, p...)
	return append(dst, '\n')
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
		dst = append(dst, ' ')
		for i := 0; i < len(msg); i++ {
			b := msg[i]
			if b == '\r' || b == '\n' {
				b = ' '
			}
			dst = append(dst, b)
		}
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
}

// AppendCreate appends "CREATE <id> [size=<n>] [layout=<l>] [durable=1]\n".
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
	return append(dst, '\n')
}

// AppendDelete appends "DELETE <id>\n".
func AppendDelete(dst, id []byte) []byte { return appendVerbID(dst, "DELETE ", id) }

// AppendWatch appends "WATCH <id>\n", or "WATCH <id> from=<from>\n" when
// hasFrom is set.
func AppendWatch(dst, id []byte, hasFrom bool, from uint64) []byte {
	dst = append(dst, "WATCH "...)
	dst = append(dst, id...)
	if hasFrom {
		dst = append(dst, " from="...)
		dst = strconv.AppendUint(dst, from, 10)
	}
	return append(dst, '\n')
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

// appendVerbID appends verb (with its trailing space), id and '\n'.
func appendVerbID(dst []byte, verb string, id []byte) []byte {
	dst = append(dst, verb...)
	dst = append(dst, id...)
	return append(dst, '\n')
}
