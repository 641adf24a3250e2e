package proto

import "bytes"

// ReplyKind identifies a reply's form.
type ReplyKind uint8

// Reply kinds. ReplyNone is the zero value: no reply (incomplete input).
const (
	ReplyNone  ReplyKind = iota
	ReplyOK              // "OK\n" or "OK <text>\n"
	ReplyValue           // "VALUE <version> <len>\n<bytes>\n"
	ReplyJSON            // "JSON <len>\n<bytes>\n"
	ReplyEvent           // "EVENT <id> <version> <len>\n<bytes>\n", pushed
	ReplyDelta           // "DELTA <id> <version> <size> <off> <len>\n<bytes>\n", pushed
	ReplyPong            // "PONG\n"
	ReplyError           // "ERROR <code> <message>\n" or "ERROR <message>\n"

	numReplyKinds // must stay last
)

var replyKindNames = [numReplyKinds]string{
	ReplyNone:  "NONE",
	ReplyOK:    "OK",
	ReplyValue: "VALUE",
	ReplyJSON:  "JSON",
	ReplyEvent: "EVENT",
	ReplyDelta: "DELTA",
	ReplyPong:  "PONG",
	ReplyError: "ERROR",
}

// String returns the reply's first word, such as "VALUE", or "NONE".
func (k ReplyKind) String() string {
	if k >= numReplyKinds {
		return "UNKNOWN"
	}
	return replyKindNames[k]
}

// Reply is one parsed reply.
//
// IMPORTANT: its byte slices alias the buffer passed to ReplyParser.Next
// and are valid only until that buffer is modified.
type Reply struct {
	// Kind is the reply's form.
	Kind ReplyKind
	// Text is, for OK, the text after "OK " (nil for a bare "OK"); for
	// ERROR, the message (after the code word, if there is a known one).
	Text []byte
	// Code is the ERROR code: CodeUnknown when the first word of the
	// message is not a known code (the original "ERROR <message>" form).
	Code Code
	// Version is the VALUE, EVENT or DELTA version.
	Version uint64
	// ID is the EVENT or DELTA region id.
	ID []byte
	// Size and Offset are the DELTA content size and the offset of its
	// payload.
	Size, Offset int64
	// Payload is the VALUE, JSON or EVENT data (empty, not nil, for
	// length 0).
	Payload []byte
	// Conflict holds the fields of an ERROR conflict reply (see
	// AppendConflict); Conflict.HasCurrent is false for any other reply,
	// and for a conflict from a host too old to send them.
	Conflict ConflictFields
}

// ConflictFields are the fields of an ERROR conflict reply:
// "ERROR conflict <current> expected=<expected> <message>".
type ConflictFields struct {
	// Current is the region's version when the write was refused.
	Current uint64
	// Expected is the version the write asked for (HasExpected says
	// whether the host sent it).
	Expected uint64
	// HasCurrent and HasExpected say which fields the reply carried.
	HasCurrent, HasExpected bool
}

// ReplyParser parses replies (and pushed events) from a byte stream.
// Unlike Parser it is strict: replies come from a host, so anything
// malformed is a fatal error after which the connection is useless.
//
// A ReplyParser is not safe for concurrent use; a zero ReplyParser is not
// valid, use NewReplyParser.
type ReplyParser struct {
	maxLine    int
	maxPayload int64
	need       int64
}

// NewReplyParser returns a ReplyParser that accepts reply lines of at most
// maxLine bytes (newline included) and payloads of at most maxPayload
// bytes. Zero or negative values take the defaults of DefaultLimits. The
// READ reply carries the region's content on its line, so maxLine must
// exceed the largest utf8 region read with READ.
func NewReplyParser(maxLine int, maxPayload int64) *ReplyParser {
	l := Limits{MaxLine: maxLine, MaxPayload: maxPayload}.normalize()
	return &ReplyParser{maxLine: l.MaxLine, maxPayload: l.MaxPayload}
}

// Need reports, after Next returned "incomplete", how many bytes counted
// from the start of the buffer the pending reply needs in total, when that
// is known; else 0.
func (p *ReplyParser) Need() int64 { return p.need }

// Next parses the reply at the front of buf.
//
//   - Complete reply: r is set, n is the number of bytes consumed, err is
//     nil.
//   - Incomplete: n == 0 and err == nil; the caller reads more and calls
//     again with the longer buffer. Need says how long it must be, if
//     known.
//   - Malformed: n == 0 and err is a *Error (ErrMalformed, ErrLineTooLong
//     or ErrTooLarge). The error is fatal: drop the connection.
//
// Reply lines end in "\n" alone; a '\r' before it is part of the line.
// Next never allocates, except to build a returned error.
func (p *ReplyParser) Next(buf []byte) (r Reply, n int, err error) {
	p.need = 0
	i := bytes.IndexByte(buf[:min(len(buf), p.maxLine)], '\n')
	if i < 0 {
		if len(buf) < p.maxLine {
			return Reply{}, 0, nil
		}
		return Reply{}, 0, newError(CodeLineTooLong, "reply line too long", buf, 0, p.maxLine)
	}
	line := buf[:i:i] // capped: slices of it cannot be appended over the buffer
	verb, rest, _ := bytes.Cut(line, []byte{' '})
	switch string(verb) {
	case "OK":
		r.Kind = ReplyOK
		if len(verb) < len(line) {
			r.Text = rest
		}
		return r, i + 1, nil
	case "PONG":
		if len(line) != len(verb) {
			return Reply{}, 0, malformedReply(buf, len(verb), i)
		}
		r.Kind = ReplyPong
		return r, i + 1, nil
	case "ERROR":
		r.Kind = ReplyError
		if len(verb) == len(line) {
			return r, i + 1, nil
		}
		word, msg, found := bytes.Cut(rest, []byte{' '})
		if r.Code = parseCode(word); r.Code == CodeUnknown {
			r.Text = rest
		} else if found {
			r.Text = msg
		}
		if r.Code == CodeConflict {
			r.Conflict = parseConflict(r.Text)
		}
		return r, i + 1, nil
	}

	// The rest have a header of numbers (and an id) and a payload.
	var toks [6]span
	nt := splitSpaces(line, toks[:])
	var plen int64
	var ok bool
	switch string(verb) {
	case "VALUE":
		if nt != 3 {
			return Reply{}, 0, malformedReply(buf, 0, i)
		}
		r.Kind = ReplyValue
		if r.Version, ok = parseUint64(line[toks[1].lo:toks[1].hi]); !ok {
			return Reply{}, 0, newError(CodeBadRequest, "malformed version", buf, toks[1].lo, toks[1].hi)
		}
	case "JSON":
		if nt != 2 {
			return Reply{}, 0, malformedReply(buf, 0, i)
		}
		r.Kind = ReplyJSON
	case "EVENT", "DELTA":
		r.Kind = ReplyEvent
		if string(verb) == "DELTA" {
			r.Kind = ReplyDelta
		}
		if r.Kind == ReplyEvent && nt != 4 || r.Kind == ReplyDelta && nt != 6 {
			return Reply{}, 0, malformedReply(buf, 0, i)
		}
		if r.ID = line[toks[1].lo:toks[1].hi:toks[1].hi]; !ValidID(r.ID) {
			return Reply{}, 0, newError(CodeBadID, "invalid region id", buf, toks[1].lo, toks[1].hi)
		}
		if r.Version, ok = parseUint64(line[toks[2].lo:toks[2].hi]); !ok {
			return Reply{}, 0, newError(CodeBadRequest, "malformed version", buf, toks[2].lo, toks[2].hi)
		}
		if r.Kind == ReplyDelta {
			if r.Size, ok = parseInt64(line[toks[3].lo:toks[3].hi]); !ok {
				return Reply{}, 0, newError(CodeBadRequest, "malformed size", buf, toks[3].lo, toks[3].hi)
			}
			if r.Offset, ok = parseInt64(line[toks[4].lo:toks[4].hi]); !ok || r.Offset > r.Size {
				return Reply{}, 0, newError(CodeBadRequest, "malformed offset", buf, toks[4].lo, toks[4].hi)
			}
		}
	default:
		return Reply{}, 0, newError(CodeBadRequest, "unknown reply", buf, 0, len(verb))
	}
	lt := toks[nt-1]
	if plen, ok = parseInt64(line[lt.lo:lt.hi]); !ok {
		return Reply{}, 0, newError(CodeBadRequest, "malformed length", buf, lt.lo, lt.hi)
	}
	if plen > p.maxPayload {
		return Reply{}, 0, newError(CodeTooLarge, "payload too large", buf, lt.lo, lt.hi)
	}
	if r.Kind == ReplyDelta && plen > r.Size-r.Offset {
		return Reply{}, 0, newError(CodeBadRequest, "delta past its size", buf, lt.lo, lt.hi)
	}
	start := int64(i + 1)
	end := start + plen
	if int64(len(buf)) < end+1 {
		p.need = end + 1
		return Reply{}, 0, nil
	}
	if buf[end] != '\n' {
		return Reply{}, 0, newError(CodeBadRequest, "payload not followed by newline", buf, int(end), int(end)+1)
	}
	r.Payload = buf[start:end:end]
	return r, int(end) + 1, nil
}

// malformedReply reports a reply line with the wrong shape.
func malformedReply(buf []byte, lo, eol int) error {
	return newError(CodeBadRequest, "malformed reply", buf, lo, eol)
}

// splitSpaces records the tokens of line (separated by runs of spaces) in
// toks and returns how many there are, which may exceed len(toks).
func splitSpaces(line []byte, toks []span) int {
	nt := 0
	for j := 0; j < len(line); {
		if line[j] == ' ' {
			j++
			continue
		}
		k := j + 1
		for k < len(line) && line[k] != ' ' {
			k++
		}
		if nt < len(toks) {
			toks[nt] = span{j, k}
		}
		nt++
		j = k
	}
	return nt
}

// parseConflict reads the fields at the start of a conflict message
// ("<current> expected=<expected> ..."). Fields that are missing or
// malformed are left unset: the message is still the host's explanation,
// so a reply without them is not an error.
func parseConflict(msg []byte) ConflictFields {
	var f ConflictFields
	word, rest, _ := bytes.Cut(msg, []byte{' '})
	v, ok := parseUint64(word)
	if !ok {
		return f
	}
	f.Current, f.HasCurrent = v, true
	word, _, _ = bytes.Cut(rest, []byte{' '})
	if num, found := bytes.CutPrefix(word, []byte("expected=")); found {
		if v, ok := parseUint64(num); ok {
			f.Expected, f.HasExpected = v, true
		}
	}
	return f
}
