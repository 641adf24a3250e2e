package proto

import (
	"bytes"
	"math"
	"strconv"
)

// Cmd identifies a request's command.
type Cmd uint8

// Commands. CmdNone is the zero value: no request (the input was
// incomplete, an empty line, or bytes being discarded after an error).
const (
	CmdNone Cmd = iota
	CmdRead
	CmdWrite
	CmdPing
	CmdQuit
	CmdUse
	CmdGet
	CmdSet
	CmdInfo
	CmdList
	CmdCreate
	CmdDelete
	CmdWatch
	CmdUnwatch
	CmdAuth
	CmdLock
	CmdRenew
	CmdUnlock

	numCmds // must stay last
)

// cmdNames holds the verb of each command, indexed by Cmd.
var cmdNames = [numCmds]string{
	CmdNone:    "NONE",
	CmdRead:    "READ",
	CmdWrite:   "WRITE",
	CmdPing:    "PING",
	CmdQuit:    "QUIT",
	CmdUse:     "USE",
	CmdGet:     "GET",
	CmdSet:     "SET",
	CmdInfo:    "INFO",
	CmdList:    "LIST",
	CmdCreate:  "CREATE",
	CmdDelete:  "DELETE",
	CmdWatch:   "WATCH",
	CmdUnwatch: "UNWATCH",
	CmdAuth:    "AUTH",
	CmdLock:    "LOCK",
	CmdRenew:   "RENEW",
	CmdUnlock:  "UNLOCK",
}

// String returns the command's verb in upper case, such as "READ", or
// "NONE" for CmdNone.
func (c Cmd) String() string {
	if c >= numCmds {
		return "Cmd(" + strconv.Itoa(int(c)) + ")"
	}
	return cmdNames[c]
}

// Request is one parsed request.
//
// IMPORTANT: its byte slices alias the buffer passed to Parser.Next and are
// valid only until that buffer is modified. Copy what must outlive it.
type Request struct {
	// Cmd is the command.
	Cmd Cmd
	// ID is the region id for USE, GET, SET, INFO with an id, CREATE,
	// DELETE, WATCH, UNWATCH, LOCK, RENEW and UNLOCK, and the token for
	// AUTH. It is nil for INFO without an id.
	ID []byte
	// Payload is the data of WRITE and SET (empty, not nil, for length 0).
	Payload []byte
	// HasRange is set for GET with an offset and a length.
	HasRange bool
	// Offset is the GET range offset, or the SET at= offset.
	Offset int64
	// Length is the GET range length.
	Length int64
	// HasAt is set for SET with at=.
	HasAt bool
	// HasIfVer is set for SET with ifver=.
	HasIfVer bool
	// IfVersion is the SET ifver= version.
	IfVersion uint64
	// ClientID is the SET cid= client id (nil when absent).
	ClientID []byte
	// Seq is the SET seq= sequence number (set together with ClientID).
	Seq uint64
	// HasFrom is set for WATCH with from=.
	HasFrom bool
	// Delta is set for WATCH delta=1: the watcher takes DELTA frames.
	Delta bool
	// From is the WATCH from= version.
	From uint64
	// Size is the CREATE size= size (0 when absent).
	Size int64
	// Layout is the CREATE layout= value: "utf8" or "raw", nil when absent.
	Layout []byte
	// Durable is set for CREATE durable=1.
	Durable bool
	// MaxWrite is the CREATE max_write= value: the largest write the
	// region takes (raw only), > 0; 0 when absent (the whole region).
	MaxWrite int64
	// HasLease is set for LOCK and RENEW with lease=.
	HasLease bool
	// Lease is the LOCK or RENEW lease= length in milliseconds, > 0; 0
	// when absent, which means the host's default.
	Lease int64
	// HasWait is set for LOCK with wait=.
	HasWait bool
	// Wait is the LOCK wait= time in milliseconds: how long to wait for
	// the lock (0: try once). Without HasWait the host's lock timeout
	// applies.
	Wait int64
	// Token is the fencing token of RENEW and UNLOCK.
	Token uint64
	// HasFence is set for SET with fence=.
	HasFence bool
	// Fence is the SET fence= token: the write is made under the lock this
	// connection holds with that token.
	Fence uint64
}

// Limits bound what a Parser accepts.
type Limits struct {
	// MaxLine is the longest command line accepted, in bytes, counting the
	// newline. Default 4096.
	MaxLine int
	// MaxPayload is the largest WRITE or SET payload accepted, in bytes.
	// Default 1 GiB + 64 KiB.
	MaxPayload int64
}

// Default limits.
const (
	// DefaultMaxLine is the default Limits.MaxLine.
	DefaultMaxLine = 4096
	// DefaultMaxPayload is the default Limits.MaxPayload.
	DefaultMaxPayload = 1<<30 + 64<<10
)

// DefaultLimits returns MaxLine 4096 and MaxPayload 1 GiB + 64 KiB.
func DefaultLimits() Limits {
	return Limits{MaxLine: DefaultMaxLine, MaxPayload: DefaultMaxPayload}
}

// normalize replaces fields that are zero or negative with their defaults
// and keeps line + payload + 2 within an int, so slicing cannot overflow.
func (l Limits) normalize() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.MaxLine > math.MaxInt/2 {
		l.MaxLine = math.MaxInt / 2
	}
	if m := int64(math.MaxInt/2 - 2); l.MaxPayload > m {
		l.MaxPayload = m
	}
	return l
}

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
	s := lineState{buf: buf, line: buf[:eol], size: eol + 1, plen: -1}
	if eol > 0 && s.line[eol-1] == '\r' {
		s.line = s.line[:eol-1]
	}
	if s.nt = splitSpaces(s.line, s.toks[:]); s.nt == 0 {
		return s.size, nil
	}
	req.Cmd = lookupCmd(s.tok(0))
	// The payload length is read before any check of the line so that, if
	// the line is bad, its payload can still be skipped.
	switch req.Cmd {
	case CmdWrite:
		s.peekLen(1)
	case CmdSet:
		s.peekLen(2)
	}
	for j, c := range s.line {
		if c < ' ' || c > '~' {
			return p.fail(&s, CodeBadRequest, "invalid byte in command line", j, j+1)
		}
	}

	var bad *badArg
	switch req.Cmd {
	case CmdNone:
		return p.fail(&s, CodeUnknownCommand, "unknown command", s.toks[0].lo, s.toks[0].hi)
	case CmdRead, CmdPing, CmdQuit, CmdList:
		bad = s.count(1, 1)
	case CmdWrite:
		bad = s.count(2, 2)
		if bad == nil {
			bad = p.checkLen(&s, 1)
		}
	case CmdUse, CmdDelete, CmdUnwatch:
		bad = s.count(2, 2)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
	case CmdAuth:
		bad = s.count(2, 2)
		if bad == nil {
			req.ID = s.tok(1)
		}
	case CmdInfo:
		bad = s.count(1, 2)
		if bad == nil && s.nt == 2 {
			req.ID, bad = s.id(1)
		}
	case CmdGet:
		bad = s.count(2, 4)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil && s.nt == 3 {
			bad = &badArg{CodeBadRequest, "missing range length", len(s.line), len(s.line)}
		}
		if bad == nil && s.nt == 4 {
			req.HasRange = true
			if req.Offset, bad = s.int64(2, "malformed offset"); bad == nil {
				req.Length, bad = s.int64(3, "malformed length")
			}
		}
	case CmdSet:
		bad = s.count(3, 8)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil {
			bad = p.checkLen(&s, 2)
		}
		if bad == nil {
			bad = s.setOptions(req)
		}
	case CmdCreate:
		bad = s.count(2, 5)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil {
			bad = s.createOptions(req)
		}
	case CmdWatch:
		bad = s.count(2, 4)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil {
			bad = s.watchOptions(req)
		}
	case CmdLock:
		bad = s.count(2, 4)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil {
			bad = s.lockOptions(req, 2, optLease|optWait)
		}
	case CmdRenew:
		bad = s.count(3, 4)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil {
			req.Token, bad = s.uint64(2, "malformed fencing token")
		}
		if bad == nil {
			bad = s.lockOptions(req, 3, optLease)
		}
	case CmdUnlock:
		bad = s.count(3, 3)
		if bad == nil {
			req.ID, bad = s.id(1)
		}
		if bad == nil {
			req.Token, bad = s.uint64(2, "malformed fencing token")
		}
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

// count checks that the line has between lo and hi tokens, verb included.
func (s *lineState) count(lo, hi int) *badArg {
	if s.nt < lo {
		return &badArg{CodeBadRequest, "missing argument", len(s.line), len(s.line)}
	}
	if s.nt > hi {
		return &badArg{CodeBadRequest, "too many arguments", s.toks[hi].lo, len(s.line)}
	}
	return nil
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

// id returns token i if it is a valid region id.
func (s *lineState) id(i int) ([]byte, *badArg) {
	b := s.tok(i)
	if !ValidID(b) {
		return nil, &badArg{CodeBadID, "invalid region id", s.toks[i].lo, s.toks[i].hi}
	}
	return b, nil
}

// int64 parses token i as a non-negative int64.
func (s *lineState) int64(i int, msg string) (int64, *badArg) {
	v, ok := parseInt64(s.tok(i))
	if !ok {
		return 0, &badArg{CodeBadRequest, msg, s.toks[i].lo, s.toks[i].hi}
	}
	return v, nil
}

// uint64 parses token i as a uint64.
func (s *lineState) uint64(i int, msg string) (uint64, *badArg) {
	v, ok := parseUint64(s.tok(i))
	if !ok {
		return 0, &badArg{CodeBadRequest, msg, s.toks[i].lo, s.toks[i].hi}
	}
	return v, nil
}

// Option keys, as bits for duplicate detection.
const (
	optAt = 1 << iota
	optIfVer
	optCID
	optSeq
	optSize
	optLayout
	optDurable
	optFrom
	optLease
	optWait
	optFence
	optDelta
	optMaxWrite
)

// option splits token i as key=value and identifies the key among those
// allowed (a mask of opt* bits). It reports unknown and duplicate keys;
// seen accumulates the keys met so far.
func (s *lineState) option(i, allowed int, seen *int) (key int, val []byte, bad *badArg) {
	t := s.toks[i]
	tok := s.tok(i)
	eq := bytes.IndexByte(tok, '=')
	if eq < 0 {
		return 0, nil, &badArg{CodeBadRequest, "malformed option: want key=value", t.lo, t.hi}
	}
	key = lookupOption(tok[:eq]) & allowed
	if key == 0 {
		return 0, nil, &badArg{CodeBadRequest, "unknown option", t.lo, t.hi}
	}
	if *seen&key != 0 {
		return 0, nil, &badArg{CodeBadRequest, "duplicate option", t.lo, t.hi}
	}
	*seen |= key
	return key, tok[eq+1:], nil
}

// optionValueError reports a bad value of option token i.
func (s *lineState) optionValueError(i int, msg string) *badArg {
	return &badArg{CodeBadRequest, msg, s.toks[i].lo, s.toks[i].hi}
}

// setOptions parses SET's options: at=, ifver=, cid=, seq= and fence=.
func (s *lineState) setOptions(req *Request) *badArg {
	seen := 0
	for i := 3; i < s.nt; i++ {
		key, val, bad := s.option(i, optAt|optIfVer|optCID|optSeq|optFence, &seen)
		if bad != nil {
			return bad
		}
		var ok bool
		switch key {
		case optAt:
			req.HasAt = true
			req.Offset, ok = parseInt64(val)
			if !ok {
				return s.optionValueError(i, "malformed offset")
			}
		case optIfVer:
			req.HasIfVer = true
			req.IfVersion, ok = parseUint64(val)
			if !ok {
				return s.optionValueError(i, "malformed version")
			}
		case optCID:
			if !ValidID(val) {
				return s.optionValueError(i, "invalid client id")
			}
			req.ClientID = val
		case optSeq:
			req.Seq, ok = parseUint64(val)
			if !ok {
				return s.optionValueError(i, "malformed seq")
			}
		case optFence:
			req.HasFence = true
			req.Fence, ok = parseUint64(val)
			if !ok {
				return s.optionValueError(i, "malformed fencing token")
			}
		}
	}
	switch seen & (optCID | optSeq) {
	case optCID:
		return &badArg{CodeBadRequest, "cid without seq", len(s.line), len(s.line)}
	case optSeq:
		return &badArg{CodeBadRequest, "seq without cid", len(s.line), len(s.line)}
	}
	return nil
}

// createOptions parses CREATE's options: size=, layout=, durable= and
// max_write=.
func (s *lineState) createOptions(req *Request) *badArg {
	seen := 0
	for i := 2; i < s.nt; i++ {
		key, val, bad := s.option(i, optSize|optLayout|optDurable|optMaxWrite, &seen)
		if bad != nil {
			return bad
		}
		switch key {
		case optSize:
			var ok bool
			if req.Size, ok = parseInt64(val); !ok {
				return s.optionValueError(i, "malformed size")
			}
		case optLayout:
			if string(val) != "utf8" && string(val) != "raw" {
				return s.optionValueError(i, "layout must be utf8 or raw")
			}
			req.Layout = val
		case optDurable:
			switch string(val) {
			case "0":
			case "1":
				req.Durable = true
			default:
				return s.optionValueError(i, "durable must be 0 or 1")
			}
		case optMaxWrite:
			var ok bool
			if req.MaxWrite, ok = parseInt64(val); !ok {
				return s.optionValueError(i, "malformed max_write")
			}
			if req.MaxWrite == 0 {
				return s.optionValueError(i, "max_write must be positive (leave it out for the whole region)")
			}
		}
	}
	return nil
}

// watchOptions parses WATCH's options: from= and delta=.
func (s *lineState) watchOptions(req *Request) *badArg {
	seen := 0
	for i := 2; i < s.nt; i++ {
		key, val, bad := s.option(i, optFrom|optDelta, &seen)
		if bad != nil {
			return bad
		}
		switch key {
		case optFrom:
			var ok bool
			req.HasFrom = true
			if req.From, ok = parseUint64(val); !ok {
				return s.optionValueError(i, "malformed version")
			}
		case optDelta:
			switch string(val) {
			case "0":
			case "1":
				req.Delta = true
			default:
				return s.optionValueError(i, "delta must be 0 or 1")
			}
		}
	}
	return nil
}

// lockOptions parses the options of LOCK (lease= and wait=) or RENEW
// (lease=), from token first on; allowed is the mask of the keys the
// command takes.
func (s *lineState) lockOptions(req *Request, first, allowed int) *badArg {
	seen := 0
	for i := first; i < s.nt; i++ {
		key, val, bad := s.option(i, allowed, &seen)
		if bad != nil {
			return bad
		}
		v, ok := parseInt64(val)
		switch key {
		case optLease:
			if !ok {
				return s.optionValueError(i, "malformed lease")
			}
			if v == 0 {
				return s.optionValueError(i, "lease must be positive")
			}
			req.HasLease, req.Lease = true, v
		case optWait:
			if !ok {
				return s.optionValueError(i, "malformed wait")
			}
			req.HasWait, req.Wait = true, v
		}
	}
	return nil
}

// optionNames maps each option key (lowercase) to its bit.
var optionNames = [...]struct {
	name string
	bit  int
}{
	{"at", optAt}, {"ifver", optIfVer}, {"cid", optCID}, {"seq", optSeq},
	{"size", optSize}, {"layout", optLayout}, {"durable", optDurable}, {"from", optFrom},
	{"lease", optLease}, {"wait", optWait}, {"fence", optFence}, {"delta", optDelta},
	{"max_write", optMaxWrite},
}

// lookupOption returns the bit of an option key, matched without regard to
// ASCII case, or 0.
func lookupOption(key []byte) int {
	for _, o := range optionNames {
		if equalFold(key, o.name) {
			return o.bit
		}
	}
	return 0
}

// lookupCmd returns the command whose verb is tok, matched without regard
// to ASCII case, or CmdNone.
func lookupCmd(tok []byte) Cmd {
	for c := CmdRead; c < numCmds; c++ {
		if equalFold(tok, cmdNames[c]) {
			return c
		}
	}
	return CmdNone
}

// equalFold reports whether b equals s ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parseUint64 parses a decimal uint64: one or more ASCII digits, no sign,
// no overflow. Leading zeros are allowed.
func parseUint64(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt64 parses a non-negative decimal int64 like parseUint64.
func parseInt64(b []byte) (int64, bool) {
	v, ok := parseUint64(b)
	if !ok || v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// MaxIDLen is the longest region id, in bytes.
const MaxIDLen = 64

// ValidID reports whether id is a valid region id:
// [A-Za-z0-9][A-Za-z0-9._-]{0,63}. Client ids (SET cid=) follow the same
// grammar.
func ValidID(id []byte) bool {
	if len(id) == 0 || len(id) > MaxIDLen || !isAlnum(id[0]) {
		return false
	}
	for _, c := range id[1:] {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
