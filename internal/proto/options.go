package proto

// This file parses a command's key=value options. The options table says
// what kind of value each key takes and what is wrong when it does not
// parse; setOption stores a parsed value in its Request field. A new
// option is a key constant, a row of the table and a case of setOption;
// the commands that accept it name it in their row of the commands table.
// A flag (valFlag) is an option written as a bare word, without "=value",
// as the last token of the line (GET's "consistent"); the commands that
// take one name it in their row's flags.

import (
	"bytes"
	"math/bits"
)

// optKey identifies an option; optSet is a set of them.
type (
	optKey uint8
	optSet uint16
)

// Option keys, in the order of the options table.
const (
	keyAt optKey = iota
	keyIfVer
	keyCID
	keySeq
	keySize
	keyLayout
	keyDurable
	keyFrom
	keyLease
	keyWait
	keyFence
	keyDelta
	keyMaxWrite
	keyConsistent
	numKeys // must stay last
)

// keys returns the set of the keys ks.
func keys(ks ...optKey) optSet {
	var s optSet
	for _, k := range ks {
		s |= 1 << k
	}
	return s
}

// valueKind is the grammar of an option's value.
type valueKind uint8

const (
	valUint     valueKind = iota // a decimal uint64
	valInt                       // a non-negative decimal int64
	valPositive                  // a decimal int64 > 0
	valBool                      // 0 or 1
	valLayout                    // utf8 or raw
	valID                        // an id (ValidID)
	valFlag                      // none: a bare word (see flag)
)

// option is one row of the options table.
type option struct {
	// name is the key, lower case; keys match without regard to case.
	name string
	kind valueKind
	// bad is the message for a value that does not parse; zero, for
	// valPositive, the one for 0.
	bad, zero string
	// needs is the keys that must come with this one, and missing the
	// message when one does not.
	needs   optSet
	missing string
}

// options is the options table, indexed by optKey.
var options = [numKeys]option{
	keyAt:       {name: "at", kind: valInt, bad: "malformed offset"},
	keyIfVer:    {name: "ifver", kind: valUint, bad: "malformed version"},
	keyCID:      {name: "cid", kind: valID, bad: "invalid client id", needs: keys(keySeq), missing: "cid without seq"},
	keySeq:      {name: "seq", kind: valUint, bad: "malformed seq", needs: keys(keyCID), missing: "seq without cid"},
	keySize:     {name: "size", kind: valInt, bad: "malformed size"},
	keyLayout:   {name: "layout", kind: valLayout, bad: "layout must be utf8 or raw"},
	keyDurable:  {name: "durable", kind: valBool, bad: "durable must be 0 or 1"},
	keyFrom:     {name: "from", kind: valUint, bad: "malformed version"},
	keyLease:    {name: "lease", kind: valPositive, bad: "malformed lease", zero: "lease must be positive"},
	keyWait:     {name: "wait", kind: valInt, bad: "malformed wait"},
	keyFence:    {name: "fence", kind: valUint, bad: "malformed fencing token"},
	keyDelta:    {name: "delta", kind: valBool, bad: "delta must be 0 or 1"},
	keyMaxWrite: {name: "max_write", kind: valPositive, bad: "malformed max_write", zero: "max_write must be positive (leave it out for the whole region)"},
	// consistent: a linearizable read (a cluster node confirms with the
	// leader first); a bare word, not key=value.
	keyConsistent: {name: "consistent", kind: valFlag, bad: "consistent takes no value: write it as a bare word"},
}

// options parses tokens first.. of s as options among allowed into req.
// It refuses a token that is not key=value, a key not allowed, a key given
// twice, a value that does not parse and a key given without the one it
// needs.
func (s *lineState) options(req *Request, first int, allowed optSet) *badArg {
	var seen optSet
	for i := first; i < s.nt; i++ {
		t := s.toks[i]
		tok := s.tok(i)
		eq := bytes.IndexByte(tok, '=')
		if eq < 0 {
			return &badArg{CodeBadRequest, "malformed option: want key=value", t.lo, t.hi}
		}
		k, ok := lookupOption(tok[:eq])
		if !ok || allowed&(1<<k) == 0 {
			return &badArg{CodeBadRequest, "unknown option", t.lo, t.hi}
		}
		if seen&(1<<k) != 0 {
			return &badArg{CodeBadRequest, "duplicate option", t.lo, t.hi}
		}
		seen |= 1 << k
		if msg := setOption(req, k, tok[eq+1:]); msg != "" {
			return &badArg{CodeBadRequest, msg, t.lo, t.hi}
		}
	}
	for rest := seen; rest != 0; rest &= rest - 1 {
		o := &options[bits.TrailingZeros16(uint16(rest))]
		if o.needs != 0 && seen&o.needs == 0 {
			return &badArg{CodeBadRequest, o.missing, len(s.line), len(s.line)}
		}
	}
	return nil
}

// setOption parses val as option k's value and stores it in req. It
// returns "" or what is wrong with the value.
func setOption(req *Request, k optKey, val []byte) string {
	o := &options[k]
	var n uint64
	ok := true
	switch o.kind {
	case valUint:
		n, ok = parseUint64(val)
	case valInt, valPositive:
		var v int64
		v, ok = parseInt64(val)
		if ok && v == 0 && o.kind == valPositive {
			return o.zero
		}
		n = uint64(v)
	case valBool:
		if ok = len(val) == 1 && (val[0] == '0' || val[0] == '1'); ok {
			n = uint64(val[0] - '0')
		}
	case valLayout:
		ok = string(val) == "utf8" || string(val) == "raw"
	case valID:
		ok = ValidID(val)
	case valFlag:
		ok = false // a flag is never key=value (see flag)
	}
	if !ok {
		return o.bad
	}
	switch k {
	case keyAt:
		req.HasAt, req.Offset = true, int64(n)
	case keyIfVer:
		req.HasIfVer, req.IfVersion = true, n
	case keyCID:
		req.ClientID = val
	case keySeq:
		req.Seq = n
	case keyFence:
		req.HasFence, req.Fence = true, n
	case keySize:
		req.Size = int64(n)
	case keyLayout:
		req.Layout = val
	case keyDurable:
		req.Durable = n == 1
	case keyMaxWrite:
		req.MaxWrite = int64(n)
	case keyFrom:
		req.HasFrom, req.From = true, n
	case keyDelta:
		req.Delta = n == 1
	case keyLease:
		req.HasLease, req.Lease = true, int64(n)
	case keyWait:
		req.HasWait, req.Wait = true, int64(n)
	}
	return ""
}

// flag takes the last token of s off the line if it is one of the flags
// allowed (a bare word such as "consistent") and at least minTok tokens
// remain, and sets it in req. The rest of the line is then checked as if
// the flag were not there: "GET id consistent" is "GET id" with the flag
// set, while "GET consistent" reads the region named consistent. A flag
// word among the tokens after the first minTok (given twice, or not last)
// is refused.
func (s *lineState) flag(req *Request, allowed optSet, minTok int) *badArg {
	if s.nt-1 < max(minTok, 1) || s.nt > maxTokens {
		return nil
	}
	k, ok := lookupFlag(s.tok(s.nt-1), allowed)
	if !ok {
		return nil
	}
	switch k {
	case keyConsistent:
		req.Consistent = true
	}
	s.nt--
	for i := max(minTok, 1); i < s.nt; i++ {
		if _, ok := lookupFlag(s.tok(i), allowed); ok {
			t := s.toks[i]
			return &badArg{CodeBadRequest, "a flag such as consistent must be the last word of the line, given once", t.lo, t.hi}
		}
	}
	return nil
}

// lookupFlag returns the flag among allowed named tok.
func lookupFlag(tok []byte, allowed optSet) (optKey, bool) {
	k, ok := lookupOption(tok)
	return k, ok && allowed&(1<<k) != 0 && options[k].kind == valFlag
}

// lookupOption returns the key named name, matched without regard to
// ASCII case.
func lookupOption(name []byte) (optKey, bool) {
	for k := range optKey(numKeys) {
		if equalFold(name, options[k].name) {
			return k, true
		}
	}
	return 0, false
}
