package resp

import "strconv"

// Protocol versions, as HELLO names them.
const (
	RESP2 = 2
	RESP3 = 3
)

func appendLen(dst []byte, prefix byte, n int64) []byte {
	dst = append(dst, prefix)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// AppendOK appends "+OK".
func AppendOK(dst []byte) []byte { return append(dst, "+OK\r\n"...) }

// AppendSimple appends a simple string. s must not hold '\r' or '\n'.
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendError appends an error reply. msg starts with its prefix (ERR,
// WRONGTYPE, NOAUTH, ...); '\r' and '\n' in it are replaced by spaces, so
// a message never breaks the frame.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// AppendInt appends an integer reply.
func AppendInt(dst []byte, v int64) []byte { return appendLen(dst, ':', v) }

// AppendBulk appends a bulk string.
func AppendBulk(dst, b []byte) []byte {
	dst = appendLen(dst, '$', int64(len(b)))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = appendLen(dst, '$', int64(len(s)))
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendBulkHeader appends the header of a bulk string of n bytes: the
// caller appends the n bytes, then AppendCRLF. It lets a server copy a
// value straight from where it lives into the reply.
func AppendBulkHeader(dst []byte, n int) []byte { return appendLen(dst, '$', int64(n)) }

// AppendCRLF appends the "\r\n" that ends a bulk string.
func AppendCRLF(dst []byte) []byte { return append(dst, '\r', '\n') }

// AppendNull appends a null: "$-1" in RESP2, "_" in RESP3.
func AppendNull(dst []byte, proto int) []byte {
	if proto >= RESP3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendNullArray appends a null array: "*-1" in RESP2, "_" in RESP3
// (the reply of an EXEC a WATCH aborted).
func AppendNullArray(dst []byte, proto int) []byte {
	if proto >= RESP3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "*-1\r\n"...)
}

// AppendArray appends the header of an array of n elements.
func AppendArray(dst []byte, n int) []byte { return appendLen(dst, '*', int64(n)) }

// AppendMap appends the header of a map of n pairs: "%n" in RESP3, an
// array of 2n elements in RESP2.
func AppendMap(dst []byte, proto, n int) []byte {
	if proto >= RESP3 {
		return appendLen(dst, '%', int64(n))
	}
	return appendLen(dst, '*', 2*int64(n))
}

// AppendSet appends the header of a set of n elements: "~n" in RESP3, an
// array in RESP2.
func AppendSet(dst []byte, proto, n int) []byte {
	if proto >= RESP3 {
		return appendLen(dst, '~', int64(n))
	}
	return appendLen(dst, '*', int64(n))
}

// AppendPush appends the header of an out-of-band push of n elements
// (pub/sub messages): ">n" in RESP3, an array in RESP2.
func AppendPush(dst []byte, proto, n int) []byte {
	if proto >= RESP3 {
		return appendLen(dst, '>', int64(n))
	}
	return appendLen(dst, '*', int64(n))
}

// AppendVerbatim appends a verbatim text string ("=n\r\ntxt:..." in
// RESP3), or a bulk string in RESP2: the form of INFO's reply.
func AppendVerbatim(dst []byte, proto int, s string) []byte {
	if proto < RESP3 {
		return AppendBulkString(dst, s)
	}
	dst = appendLen(dst, '=', int64(len(s)+4))
	dst = append(dst, "txt:"...)
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendCommand appends a command as a multibulk array, as clients send
// it.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}
