package proto

// This file holds the grammar of single tokens: verbs and keys matched
// without regard to ASCII case, decimal numbers, and ids.

import "math"

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
