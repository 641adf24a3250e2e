package proto

// This file is the commands table: one row per verb says how many tokens
// the verb takes, what its id token is, whether it announces a payload,
// which positional arguments follow and which options it accepts. A new
// verb is a Cmd constant and a row here; args checks every row the same
// way, so every verb refuses what it refuses with the same messages.

import "strconv"

// idRule says what token 1 of a command line is.
type idRule uint8

const (
	idNone     idRule = iota // no id token
	idRegion                 // a region id (ValidID), required
	idOptional               // a region id if present (INFO)
	idRaw                    // taken as it is (AUTH's token)
)

// argRule names the positional arguments after the id.
type argRule uint8

const (
	argNone    argRule = iota
	argRange           // GET: an optional "<offset> <length>" pair
	argToken           // RENEW, UNLOCK: the fencing token
	argCluster         // CLUSTER: a subcommand and its arguments
)

// command is one row of the commands table.
type command struct {
	// name is the verb, upper case.
	name string
	// min and max bound the number of tokens, verb included.
	min, max uint8
	// id is what token 1 is.
	id idRule
	// lenTok is the token holding the payload length, 0 for a command
	// without payload.
	lenTok uint8
	// arg names the positional arguments after the id (and length).
	arg argRule
	// firstOpt is the first token that is an option.
	firstOpt uint8
	// opts is the set of options accepted.
	opts optSet
	// flags is the set of flags (bare-word options) accepted as the last
	// token; the token counts min and max do not count it.
	flags optSet
}

// commands is the commands table, indexed by Cmd. CmdNone's row is never
// checked: parse refuses an unknown verb before.
var commands = [numCmds]command{
	CmdNone:    {name: "NONE"},
	CmdRead:    {name: "READ", min: 1, max: 1, flags: keys(keyConsistent)},
	CmdWrite:   {name: "WRITE", min: 2, max: 2, lenTok: 1},
	CmdPing:    {name: "PING", min: 1, max: 1},
	CmdQuit:    {name: "QUIT", min: 1, max: 1},
	CmdUse:     {name: "USE", min: 2, max: 2, id: idRegion},
	CmdGet:     {name: "GET", min: 2, max: 4, id: idRegion, arg: argRange, flags: keys(keyConsistent)},
	CmdSet:     {name: "SET", min: 3, max: 8, id: idRegion, lenTok: 2, opts: keys(keyAt, keyIfVer, keyCID, keySeq, keyFence), firstOpt: 3},
	CmdInfo:    {name: "INFO", min: 1, max: 2, id: idOptional},
	CmdList:    {name: "LIST", min: 1, max: 1},
	CmdCreate:  {name: "CREATE", min: 2, max: 6, id: idRegion, opts: keys(keySize, keyLayout, keyDurable, keyMaxWrite), firstOpt: 2},
	CmdDelete:  {name: "DELETE", min: 2, max: 2, id: idRegion},
	CmdWatch:   {name: "WATCH", min: 2, max: 4, id: idRegion, opts: keys(keyFrom, keyDelta), firstOpt: 2},
	CmdUnwatch: {name: "UNWATCH", min: 2, max: 2, id: idRegion},
	CmdAuth:    {name: "AUTH", min: 2, max: 2, id: idRaw},
	CmdLock:    {name: "LOCK", min: 2, max: 4, id: idRegion, opts: keys(keyLease, keyWait), firstOpt: 2},
	CmdRenew:   {name: "RENEW", min: 3, max: 4, id: idRegion, arg: argToken, opts: keys(keyLease), firstOpt: 3},
	CmdUnlock:  {name: "UNLOCK", min: 3, max: 3, id: idRegion, arg: argToken},
	CmdCluster: {name: "CLUSTER", min: 2, max: 5, arg: argCluster},
}

// String returns the command's verb in upper case, such as "READ", or
// "NONE" for CmdNone.
func (c Cmd) String() string {
	if c >= numCmds {
		return "Cmd(" + strconv.Itoa(int(c)) + ")"
	}
	return commands[c].name
}

// lookupCmd returns the command whose verb is tok, matched without regard
// to ASCII case, or CmdNone.
func lookupCmd(tok []byte) Cmd {
	for c := CmdRead; c < numCmds; c++ {
		if equalFold(tok, commands[c].name) {
			return c
		}
	}
	return CmdNone
}

// args checks the arguments of command line s against row c and fills
// req, in the order the protocol reports errors: the id, the payload
// length, the positional arguments, then the options. parse has checked
// the token count, the first error reported, and calls args only for a
// command that takes arguments (c.max > 1).
func (p *Parser) args(s *lineState, c *command, req *Request) *badArg {
	var bad *badArg
	switch c.id {
	case idRegion:
		req.ID, bad = s.id(1)
	case idOptional:
		if s.nt > 1 {
			req.ID, bad = s.id(1)
		}
	case idRaw:
		req.ID = s.tok(1)
	}
	if bad != nil {
		return bad
	}
	if c.lenTok > 0 {
		if bad = p.checkLen(s, int(c.lenTok)); bad != nil {
			return bad
		}
	}
	if c.arg != argNone {
		if bad = s.positional(c.arg, req); bad != nil {
			return bad
		}
	}
	if c.opts != 0 {
		return s.options(req, int(c.firstOpt), c.opts)
	}
	return nil
}

// positional parses the positional arguments after the id.
func (s *lineState) positional(arg argRule, req *Request) *badArg {
	var bad *badArg
	switch arg {
	case argRange:
		switch s.nt {
		case 3:
			return &badArg{CodeBadRequest, "missing range length", len(s.line), len(s.line)}
		case 4:
			req.HasRange = true
			if req.Offset, bad = s.int64(2, "malformed offset"); bad != nil {
				return bad
			}
			req.Length, bad = s.int64(3, "malformed length")
		}
	case argToken:
		req.Token, bad = s.uint64(2, "malformed fencing token")
	case argCluster:
		bad = s.cluster(req)
	}
	return bad
}

// clusterOps are CLUSTER's subcommands with their token counts (verb
// included).
var clusterOps = [...]struct {
	op     ClusterOp
	min    int
	max    int
	hasArg bool
}{
	{ClusterStatus, 2, 2, false},
	{ClusterAdd, 4, 5, true},
	{ClusterRemove, 3, 3, true},
	{ClusterLeader, 3, 3, true},
}

// maxAddrLen bounds CLUSTER ADD's address (a host name of 253 bytes and a
// port).
const maxAddrLen = 260

// cluster parses "CLUSTER <sub> [<name> [<addr> [<fingerprint>]]]": the
// name follows the region id grammar, the address is HOST:PORT, the
// fingerprint hex digits and colons.
func (s *lineState) cluster(req *Request) *badArg {
	sub := s.tok(1)
	for _, o := range clusterOps {
		if !equalFold(sub, o.op.String()) {
			continue
		}
		if bad := s.count(o.min, o.max); bad != nil {
			return bad
		}
		req.Cluster = o.op
		if !o.hasArg {
			return nil
		}
		if !ValidID(s.tok(2)) {
			return &badArg{CodeBadID, "invalid node name", s.toks[2].lo, s.toks[2].hi}
		}
		req.ID = s.tok(2)
		if o.op != ClusterAdd {
			return nil
		}
		if a := s.tok(3); len(a) > maxAddrLen || !validAddr(a) {
			return &badArg{CodeBadRequest, "malformed address (want HOST:PORT)", s.toks[3].lo, s.toks[3].hi}
		}
		req.Addr = s.tok(3)
		if s.nt == 5 {
			if f := s.tok(4); !validFingerprint(f) {
				return &badArg{CodeBadRequest, "malformed fingerprint (want the 64 hex digits of a SHA-256, colons allowed)", s.toks[4].lo, s.toks[4].hi}
			}
			req.Fingerprint = s.tok(4)
		}
		return nil
	}
	return &badArg{CodeBadRequest, "unknown CLUSTER subcommand (STATUS, ADD, REMOVE or LEADER)", s.toks[1].lo, s.toks[1].hi}
}

// validAddr reports whether a looks like HOST:PORT: a port of digits
// after the last colon, and a host before it.
func validAddr(a []byte) bool {
	i := len(a) - 1
	for i >= 0 && a[i] != ':' {
		i--
	}
	if i < 1 || i == len(a)-1 {
		return false
	}
	_, ok := parseUint64(a[i+1:])
	return ok && len(a)-i-1 <= 5
}

// validFingerprint reports whether f is 64 hex digits, colons allowed
// between them.
func validFingerprint(f []byte) bool {
	digits := 0
	for _, c := range f {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
			digits++
		case c == ':':
		default:
			return false
		}
	}
	return digits == 64 && len(f) <= 64+63
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
