package resp

import (
	"errors"
	"fmt"
	"strconv"
)

// Limits bound what one command may make the caller buffer.
type Limits struct {
	// MaxArgs bounds the arguments of one command (default 1 << 20, as
	// Redis).
	MaxArgs int
	// MaxBulk bounds one argument's length (default 512 MiB, Redis's
	// proto-max-bulk-len).
	MaxBulk int64
	// MaxInline bounds an inline command and a multibulk header line
	// (default 64 KiB, as Redis).
	MaxInline int
}

// Defaults, as Redis's.
const (
	DefaultMaxArgs   = 1 << 20
	DefaultMaxBulk   = 512 << 20
	DefaultMaxInline = 64 << 10
)

// DefaultLimits returns Redis's limits.
func DefaultLimits() Limits {
	return Limits{MaxArgs: DefaultMaxArgs, MaxBulk: DefaultMaxBulk, MaxInline: DefaultMaxInline}
}

// ErrProtocol is wrapped by every parse error. The message after it is
// Redis's own wording, so clients and operators recognise it.
var ErrProtocol = errors.New("Protocol error")

// Error is a parse error: what was wrong and where.
type Error struct {
	// Msg is Redis's description, such as "invalid bulk length".
	Msg string
	// Offset is the byte offset in the buffer given to Next.
	Offset int
	// Snippet is a bounded, quoted piece of the input at Offset.
	Snippet string
}

func (e *Error) Error() string {
	return fmt.Sprintf("Protocol error: %s (at byte %d: %s)", e.Msg, e.Offset, e.Snippet)
}

// Unwrap returns ErrProtocol.
func (e *Error) Unwrap() error { return ErrProtocol }

// Command is one parsed command.
//
// IMPORTANT: Args alias the buffer given to Parser.Next (see the package
// Caveats).
type Command struct {
	// Args are the command name and its arguments; empty for a command
	// to skip.
	Args [][]byte
	// Inline is set for an inline command (a plain text line).
	Inline bool
}

// Parser parses RESP requests. The zero value is not ready: use
// NewParser.
type Parser struct {
	lim    Limits
	need   int64
	unauth bool // SetUnauthenticated
	// A multibulk command that was incomplete at the last call: how many
	// arguments it has, how far (from its start) it has been parsed, and
	// the spans (start, end pairs) of the arguments parsed so far. The
	// next call resumes there, so a command that arrives in many reads
	// is scanned once, not once per read.
	pending bool
	pcount  int64
	poff    int
	spans   []int
}

// Limits for a connection that has not authenticated, as Redis's: a
// stranger may make the host buffer little.
const (
	UnauthMaxArgs = 10
	UnauthMaxBulk = 16 << 10
)

// SetUnauthenticated applies the stricter limits for connections that
// have not authenticated (UnauthMaxArgs, UnauthMaxBulk), or lifts them.
func (p *Parser) SetUnauthenticated(on bool) { p.unauth = on }

// NewParser returns a parser with limits l (zero fields take the
// defaults).
func NewParser(l Limits) *Parser {
	d := DefaultLimits()
	if l.MaxArgs <= 0 {
		l.MaxArgs = d.MaxArgs
	}
	if l.MaxBulk <= 0 {
		l.MaxBulk = d.MaxBulk
	}
	if l.MaxInline <= 0 {
		l.MaxInline = d.MaxInline
	}
	return &Parser{lim: l}
}

// Need returns how many bytes, from the start of the buffer last given
// to Next, the pending command needs in all, when a bulk length has said
// so (else 0). A caller sizes its read buffer with it.
func (p *Parser) Need() int64 { return p.need }

// Next parses one command from buf into cmd and returns the bytes it
// took. n == 0 with a nil error: buf holds no complete command yet; the
// next call must then pass the same bytes with more after them (the
// command's start may move in memory, not its content).
func (p *Parser) Next(cmd *Command, buf []byte) (n int, err error) {
	cmd.Args = cmd.Args[:0]
	cmd.Inline = false
	p.need = 0
	if p.pending && (len(buf) < p.poff || len(buf) == 0 || buf[0] != '*') {
		p.pending = false // not the command it was parsing: start again
	}
	if len(buf) == 0 {
		return 0, nil
	}
	if buf[0] == '*' {
		return p.multibulk(cmd, buf)
	}
	return p.inline(cmd, buf)
}

// line finds the end of the line starting at off: the index of its '\r'
// in a "\r\n" pair, or -1 if incomplete.
func line(buf []byte, off int) int {
	for i := off; i < len(buf); i++ {
		if buf[i] == '\n' {
			if i > off && buf[i-1] == '\r' {
				return i - 1
			}
			return -2 // a bare '\n': malformed for multibulk
		}
	}
	return -1
}

func (p *Parser) fail(buf []byte, off int, msg string) (int, error) {
	p.pending = false
	return 0, &Error{Msg: msg, Offset: off, Snippet: snippet(buf, off)}
}

// snippet quotes at most 16 bytes of buf from off.
func snippet(buf []byte, off int) string {
	if off > len(buf) {
		off = len(buf)
	}
	end := min(off+16, len(buf))
	s := strconv.Quote(string(buf[off:end]))
	if end < len(buf) {
		s += "..."
	}
	return s
}

// number parses the decimal integer in b (an optional '-', then digits).
func number(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

func (p *Parser) multibulk(cmd *Command, buf []byte) (int, error) {
	count, off, maxArgs, maxBulk := p.pcount, p.poff, int64(p.lim.MaxArgs), p.lim.MaxBulk
	if p.unauth {
		maxArgs, maxBulk = min(maxArgs, UnauthMaxArgs), min(maxBulk, UnauthMaxBulk)
	}
	if !p.pending {
		end := line(buf, 1)
		switch {
		case end == -1:
			if len(buf) > p.lim.MaxInline {
				return p.fail(buf, 0, "too big mbulk count string")
			}
			return 0, nil
		case end == -2:
			return p.fail(buf, 0, "invalid multibulk length")
		}
		var ok bool
		count, ok = number(buf[1:end])
		if !ok || count > maxArgs {
			if ok && p.unauth {
				return p.fail(buf, 0, "unauthenticated multibulk length")
			}
			return p.fail(buf, 0, "invalid multibulk length")
		}
		off = end + 2
		if count <= 0 {
			return off, nil // skipped, as Redis does
		}
		p.spans = p.spans[:0]
	}
	p.pending = false
	for int64(len(p.spans)/2) < count {
		if off >= len(buf) {
			return p.suspend(count, off)
		}
		if buf[off] != '$' {
			return p.fail(buf, off, "expected '$', got '"+string(buf[off])+"'")
		}
		e := line(buf, off+1)
		switch {
		case e == -1:
			if len(buf)-off > p.lim.MaxInline {
				return p.fail(buf, off, "too big bulk count string")
			}
			return p.suspend(count, off)
		case e == -2:
			return p.fail(buf, off, "invalid bulk length")
		}
		n, ok := number(buf[off+1 : e])
		if !ok || n < 0 || n > maxBulk {
			if ok && n >= 0 && p.unauth {
				return p.fail(buf, off, "unauthenticated bulk length")
			}
			return p.fail(buf, off, "invalid bulk length")
		}
		start := e + 2
		if int64(len(buf)-start) < n+2 {
			// The argument is not all here: say how much the command needs
			// at least, so a caller reads a large value in few reads.
			p.need = int64(start) + n + 2
			return p.suspend(count, off)
		}
		stop := start + int(n)
		if buf[stop] != '\r' || buf[stop+1] != '\n' {
			return p.fail(buf, stop, "bulk argument not followed by CRLF")
		}
		p.spans = append(p.spans, start, stop)
		off = stop + 2
	}
	for i := 0; i < len(p.spans); i += 2 {
		cmd.Args = append(cmd.Args, buf[p.spans[i]:p.spans[i+1]:p.spans[i+1]])
	}
	return off, nil
}

// suspend keeps an incomplete multibulk command's progress for the next
// call.
func (p *Parser) suspend(count int64, off int) (int, error) {
	p.pending, p.pcount, p.poff = true, count, off
	return 0, nil
}

// inline parses a command sent as a plain line, split on blanks, with
// Redis's quoting: "..." with \n \r \t \b \a \\ \" and \xHH escapes, and
// '...' with \' only. The arguments are unescaped in place.
func (p *Parser) inline(cmd *Command, buf []byte) (int, error) {
	nl := -1
	for i, c := range buf {
		if c == '\n' {
			nl = i
			break
		}
	}
	if nl < 0 {
		if len(buf) > p.lim.MaxInline {
			return p.fail(buf, 0, "too big inline request")
		}
		return 0, nil
	}
	if nl > p.lim.MaxInline {
		return p.fail(buf, 0, "too big inline request")
	}
	end := nl
	if end > 0 && buf[end-1] == '\r' {
		end--
	}
	cmd.Inline = true
	i := 0
	for {
		for i < end && isBlank(buf[i]) {
			i++
		}
		if i >= end {
			break
		}
		if len(cmd.Args) >= p.lim.MaxArgs {
			return p.fail(buf, i, "invalid multibulk length")
		}
		var arg []byte
		var ok bool
		arg, i, ok = unquote(buf, i, end)
		if !ok {
			cmd.Args = cmd.Args[:0]
			return p.fail(buf, 0, "unbalanced quotes in request")
		}
		cmd.Args = append(cmd.Args, arg)
	}
	return nl + 1, nil
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == 0
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unquote reads one inline argument from buf[i:end], writing its
// unescaped bytes over buf from i, and returns it and where the next one
// may start. As Redis's sdssplitargs, a quote may open anywhere in an
// argument; ok is false for an unbalanced quote, or a closing quote not
// followed by a blank.
func unquote(buf []byte, i, end int) (arg []byte, next int, ok bool) {
	w, start := i, i
	for i < end {
		c := buf[i]
		switch c {
		case ' ', '\n', '\r', '\t', 0:
			return buf[start:w:w], i, true
		case '"':
			i++
			for {
				if i >= end {
					return nil, 0, false
				}
				c := buf[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' && i+3 < end && buf[i+1] == 'x' {
					if h, ok1 := hexVal(buf[i+2]); ok1 {
						if l, ok2 := hexVal(buf[i+3]); ok2 {
							buf[w] = h<<4 | l
							w, i = w+1, i+4
							continue
						}
					}
				}
				if c == '\\' && i+1 < end {
					i++
					switch c = buf[i]; c {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					}
				}
				buf[w] = c
				w, i = w+1, i+1
			}
			if i < end && !isBlank(buf[i]) {
				return nil, 0, false
			}
			return buf[start:w:w], i, true
		case '\'':
			i++
			for {
				if i >= end {
					return nil, 0, false
				}
				c := buf[i]
				if c == '\'' {
					i++
					break
				}
				if c == '\\' && i+1 < end && buf[i+1] == '\'' {
					c, i = '\'', i+1
				}
				buf[w] = c
				w, i = w+1, i+1
			}
			if i < end && !isBlank(buf[i]) {
				return nil, 0, false
			}
			return buf[start:w:w], i, true
		default:
			buf[w] = c
			w, i = w+1, i+1
		}
	}
	return buf[start:w:w], i, true
}
