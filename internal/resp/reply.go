package resp

import (
	"fmt"
	"strconv"
)

// Reply is one parsed reply, for tests and tools; Parser is the host's
// hot path, ParseReply is not (it allocates the elements of aggregates).
type Reply struct {
	// Type is the RESP type byte: '+', '-', ':', '$', '*', '_', '%', '~',
	// '>', '=', '#', ',', '(' or '|'. A RESP2 null bulk or null array is
	// '_' too, with Null set.
	Type byte
	// Null marks "$-1", "*-1" and "_".
	Null bool
	// Str holds simple, error, bulk, verbatim (with its "txt:" prefix),
	// double and big number texts; it aliases the parsed buffer.
	Str []byte
	// Int holds an integer, or a boolean as 0 or 1.
	Int int64
	// Elems holds an aggregate's elements (a map's keys and values in
	// turn; an attribute's pairs, then the reply it annotates).
	Elems []Reply
}

// maxReplyDepth bounds how deeply aggregates may nest.
const maxReplyDepth = 64

// ParseReply parses one reply from buf. n == 0 with a nil error: buf
// holds no complete reply yet.
func ParseReply(buf []byte) (r Reply, n int, err error) {
	return parseReply(buf, 0, 0)
}

func parseReply(buf []byte, off, depth int) (Reply, int, error) {
	if off >= len(buf) {
		return Reply{}, 0, nil
	}
	if depth > maxReplyDepth {
		return Reply{}, 0, &Error{Msg: "replies nest too deeply", Offset: off, Snippet: snippet(buf, off)}
	}
	end := line(buf, off+1)
	if end == -1 {
		return Reply{}, 0, nil
	}
	if end == -2 {
		return Reply{}, 0, &Error{Msg: "line not ended by CRLF", Offset: off, Snippet: snippet(buf, off)}
	}
	t := buf[off]
	text := buf[off+1 : end]
	next := end + 2
	bad := func(what string) (Reply, int, error) {
		return Reply{}, 0, &Error{Msg: what, Offset: off, Snippet: snippet(buf, off)}
	}
	switch t {
	case '+', '-', ',', '(':
		return Reply{Type: t, Str: text}, next, nil
	case ':':
		v, ok := number(text)
		if !ok {
			return bad("invalid integer")
		}
		return Reply{Type: t, Int: v}, next, nil
	case '#':
		switch string(text) {
		case "t":
			return Reply{Type: t, Int: 1}, next, nil
		case "f":
			return Reply{Type: t}, next, nil
		}
		return bad("invalid boolean")
	case '_':
		if len(text) != 0 {
			return bad("invalid null")
		}
		return Reply{Type: '_', Null: true}, next, nil
	case '$', '=', '!':
		l, ok := number(text)
		if !ok || l < -1 || l > DefaultMaxBulk {
			return bad("invalid bulk length")
		}
		if l == -1 && t == '$' {
			return Reply{Type: '_', Null: true}, next, nil
		}
		if l < 0 {
			return bad("invalid bulk length")
		}
		if int64(len(buf)-next) < l+2 {
			return Reply{}, 0, nil
		}
		stop := next + int(l)
		if buf[stop] != '\r' || buf[stop+1] != '\n' {
			return bad("bulk string not followed by CRLF")
		}
		return Reply{Type: t, Str: buf[next:stop:stop]}, stop + 2, nil
	case '*', '%', '~', '>', '|':
		l, ok := number(text)
		if !ok || l < -1 || l > DefaultMaxArgs {
			return bad("invalid aggregate length")
		}
		if l == -1 && t == '*' {
			return Reply{Type: '_', Null: true}, next, nil
		}
		if l < 0 {
			return bad("invalid aggregate length")
		}
		count := l
		if t == '%' || t == '|' {
			count *= 2
		}
		r := Reply{Type: t}
		if count > 0 {
			r.Elems = make([]Reply, 0, min(count, 1024))
		}
		for i := int64(0); i < count; i++ {
			e, n, err := parseReply(buf, next, depth+1)
			if err != nil || n == 0 {
				return Reply{}, 0, err
			}
			r.Elems = append(r.Elems, e)
			next = n
		}
		if t == '|' {
			// An attribute annotates the reply that follows it.
			e, n, err := parseReply(buf, next, depth+1)
			if err != nil || n == 0 {
				return Reply{}, 0, err
			}
			r.Elems = append(r.Elems, e)
			next = n
		}
		return r, next, nil
	}
	return bad(fmt.Sprintf("unknown reply type %q", t))
}

// AppendReply re-encodes r as it was parsed (a null in the form of its
// Type: '_' as RESP3's null unless proto is RESP2).
func AppendReply(dst []byte, proto int, r Reply) []byte {
	switch r.Type {
	case '+', '-', ',', '(':
		dst = append(dst, r.Type)
		dst = append(dst, r.Str...)
		return append(dst, '\r', '\n')
	case ':':
		return AppendInt(dst, r.Int)
	case '#':
		if r.Int != 0 {
			return append(dst, "#t\r\n"...)
		}
		return append(dst, "#f\r\n"...)
	case '_':
		return AppendNull(dst, proto)
	case '$', '=', '!':
		dst = appendLen(dst, r.Type, int64(len(r.Str)))
		dst = append(dst, r.Str...)
		return append(dst, '\r', '\n')
	case '*', '%', '~', '>', '|':
		n := len(r.Elems)
		if r.Type == '%' {
			n /= 2
		} else if r.Type == '|' {
			n = (n - 1) / 2
		}
		dst = appendLen(dst, r.Type, int64(n))
		for _, e := range r.Elems {
			dst = AppendReply(dst, proto, e)
		}
	}
	return dst
}

// String renders r compactly for test failures and transcripts:
// simple strings bare, bulk strings quoted, errors as (error ...),
// aggregates in brackets.
func (r Reply) String() string {
	switch r.Type {
	case '+':
		return string(r.Str)
	case '-':
		return "(error " + string(r.Str) + ")"
	case ':':
		return "(integer " + strconv.FormatInt(r.Int, 10) + ")"
	case '#':
		return "(boolean " + strconv.FormatBool(r.Int != 0) + ")"
	case '_':
		return "(nil)"
	case '$', '!':
		return strconv.Quote(string(r.Str))
	case '=':
		return "(verbatim " + strconv.Quote(string(r.Str)) + ")"
	case ',', '(':
		return "(" + string(r.Type) + string(r.Str) + ")"
	}
	s := string(r.Type) + "["
	for i, e := range r.Elems {
		if i > 0 {
			s += " "
		}
		s += e.String()
	}
	return s + "]"
}
