package proto

// This file frames requests: it finds the command line, hands it to the
// commands table (commands.go), reads the payload the line announces, and
// discards the rest of a bad request so that parsing resumes at the next.

import "bytes"

// Parser parses requests from a byte stream. It holds only the state needed
// to discard the rest of a bad request across calls, and the size of the
// pending request.
//
// A Parser is not safe for concurrent use; a zero Parser is not valid, use
// NewParser.
type Parser struct {
	lim Limits
	// skipPayload counts payload bytes still to discard.
	skipPayload int64
	// skipLine: after skipPayload, discard through the next '\n'.
	skipLine bool
	// need is what Need reports.
	need int64
}

// NewParser returns a Parser with the limits l. Fields of l that are zero
// or negative take their defaults.
func NewParser(l Limits) *Parser {
	return &Parser{lim: l.normalize()}
}

// Need reports how many bytes, counted from the start of the buffer, the
// pending request needs in total after Next returned "incomplete", when
// that is known (the command line is complete and announces a payload:
// line + payload + 1). It is 0 when unknown, and after any other result.
func (p *Parser) Need() int64 { return p.need }

// Next parses the request at the front of buf.
//
//   - Complete request: req is set, n is the number of bytes consumed and
//     err is nil.
//   - Incomplete: n == 0 and err == nil. The caller reads more and calls
//     again with the longer buffer (which must start with the same bytes);
//     Need then says how long the buffer must be, if known. A buffer must
//     be able to hold Limits.MaxLine bytes for a line to be judged.
//   - Malformed: err is a *Error, and n > 0 bytes are consumed so that
//     parsing can go on at the next request. The caller replies with the
//     error and continues. A bad command line is consumed through its
//     '\n'; if it announced a payload length that could be read, the
//     payload and its newline are discarded too. An over-long line is
//     discarded through the next '\n'; a payload over the limit is
//     discarded with its newline. What is not yet in buf is discarded by
//     the next calls, which return req.Cmd == CmdNone, n > 0 and err == nil
//     while they discard.
//
// An empty line (only spaces) is consumed with req.Cmd == CmdNone and no
// error: it gets no reply.
//
// Next never allocates, except to build a returned error.
func (p *Parser) Next(buf []byte) (req Request, n int, err error) {
	n, err = p.NextInto(&req, buf)
	if n == 0 || err != nil {
		req = Request{}
	}
	return req, n, err
}

// NextInto is Next with the request parsed into *req, which spares the
// copies of a Request (232 bytes) on the way out. *req is meaningful only
// when err is nil and n > 0.
func (p *Parser) NextInto(req *Request, buf []byte) (n int, err error) {
	*req = Request{}
	p.need = 0
	if p.skipPayload > 0 || p.skipLine {
		return p.skip(buf), nil
	}
	maxLine := p.lim.MaxLine
	i := bytes.IndexByte(buf[:min(len(buf), maxLine)], '\n')
	if i < 0 {
		if len(buf) < maxLine {
			return 0, nil
		}
		e := newError(CodeLineTooLong, "command line too long", buf, 0, maxLine)
		p.skipLine = true
		return maxLine + p.skip(buf[maxLine:]), e
	}
	return p.parse(req, buf, i)
}

// skip discards from the front of buf what the discard state asks for and
// returns how many bytes it consumed.
func (p *Parser) skip(buf []byte) int {
	n := 0
	if p.skipPayload > 0 {
		k := min(int64(len(buf)), p.skipPayload)
		p.skipPayload -= k
		n = int(k)
		if p.skipPayload > 0 {
			return n
		}
	}
	if p.skipLine {
		i := bytes.IndexByte(buf[n:], '\n')
		if i < 0 {
			return len(buf)
		}
		p.skipLine = false
		n += i + 1
	}
	return n
}

// maxTokens is one more than the most tokens a command takes (SET with
// all options has 8), so that the first extra token is always recorded.
const maxTokens = 9

// span is a token's position in the line: line[lo:hi].
type span struct{ lo, hi int }

// lineState is what parse knows about one command line.
type lineState struct {
	buf  []byte // the request, from its first byte
	line []byte // the command line without "\n" or "\r\n"
	size int    // bytes of the command line, newline included
	toks [maxTokens]span
	nt   int   // number of tokens (may exceed maxTokens)
	plen int64 // announced payload length, -1 if none or unreadable
}

// tok returns token i, capped so that appending to it cannot overwrite
// the buffer.
func (s *lineState) tok(i int) []byte {
	t := s.toks[i]
	return s.line[t.lo:t.hi:t.hi]
}

// parse parses the command line buf[:eol+1] and the payload it announces.
func (p *Parser) parse(req *Request, buf []byte, eol int) (int, error) {
	var s lineState
	s.buf, s.line, s.size, s.plen = buf, buf[:eol], eol+1, -1
	if eol > 0 && s.line[eol-1] == '\r' {
		s.line = s.line[:eol-1]
	}
	if s.nt = splitSpaces(s.line, s.toks[:]); s.nt == 0 {
		return s.size, nil
	}
	req.Cmd = lookupCmd(s.tok(0))
	c := &commands[req.Cmd]
	// The payload length is read before any check of the line so that, if
	// the line is bad, its payload can still be skipped.
	if c.lenTok > 0 {
		s.peekLen(int(c.lenTok))
	}
	for j, ch := range s.line {
		if ch < ' ' || ch > '~' {
			return p.fail(&s, CodeBadRequest, "invalid byte in command line", j, j+1)
		}
	}
	if req.Cmd == CmdNone {
		return p.fail(&s, CodeUnknownCommand, "unknown command", s.toks[0].lo, s.toks[0].hi)
	}
	var bad *badArg
	if c.flags != 0 {
		bad = s.flag(req, c.flags, int(c.min))
	}
	if bad == nil {
		bad = s.count(int(c.min), int(c.max))
	}
	if bad == nil && c.max > 1 {
		bad = p.args(&s, c, req)
	}
	if bad != nil {
		return p.fail(&s, bad.code, bad.msg, bad.lo, bad.hi)
	}
	if s.plen < 0 {
		return s.size, nil
	}
	return p.payload(&s, req)
}

// payload completes a request whose command line announced s.plen bytes.
func (p *Parser) payload(s *lineState, req *Request) (int, error) {
	end := int64(s.size) + s.plen
	have := int64(len(s.buf))
	if have < end+1 {
		p.need = end + 1
		return 0, nil
	}
	e := int(end)
	switch s.buf[e] {
	case '\n':
		req.Payload = s.buf[s.size:e:e]
		return e + 1, nil
	case '\r':
		if have < end+2 {
			p.need = end + 2
			return 0, nil
		}
		if s.buf[e+1] == '\n' {
			req.Payload = s.buf[s.size:e:e]
			return e + 2, nil
		}
		err := newError(CodeBadRequest, "payload not followed by newline", s.buf, e, e+2)
		p.skipLine = true
		return e + p.skip(s.buf[e:]), err
	}
	err := newError(CodeBadRequest, "payload not followed by newline", s.buf, e, e+1)
	p.skipLine = true
	return e + p.skip(s.buf[e:]), err
}

// fail returns the error for a bad command line. If the line announced a
// payload length, the payload and its newline are discarded as well, here
// as far as buf goes and by later calls for the rest.
func (p *Parser) fail(s *lineState, code Code, msg string, lo, hi int) (int, error) {
	err := newError(code, msg, s.line, lo, hi)
	if s.plen < 0 {
		return s.size, err
	}
	p.skipPayload = s.plen
	p.skipLine = true
	return s.size + p.skip(s.buf[s.size:]), err
}

// badArg is a parse error found in a command line, before it becomes an
// *Error: building it is free, so the success path never allocates.
type badArg struct {
	code   Code
	msg    string
	lo, hi int // the offending bytes of the line
}

// peekLen reads the payload length from token i into s.plen, if there is
// such a token and it is a number.
func (s *lineState) peekLen(i int) {
	if s.nt > i {
		if v, ok := parseInt64(s.tok(i)); ok {
			s.plen = v
		}
	}
}

// checkLen reports a malformed payload length in token i, or one over the
// limit.
func (p *Parser) checkLen(s *lineState, i int) *badArg {
	t := s.toks[i]
	if s.plen < 0 {
		return &badArg{CodeBadRequest, "malformed length", t.lo, t.hi}
	}
	if s.plen > p.lim.MaxPayload {
		return &badArg{CodeTooLarge, "payload too large", t.lo, t.hi}
	}
	return nil
}
