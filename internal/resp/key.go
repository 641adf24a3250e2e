package resp

import (
	"errors"
	"fmt"
)

// MaxIDLen is the longest region id (internal/proto's MaxIDLen).
const MaxIDLen = 64

// ErrBadKey is wrapped by the errors of AppendID: a key that maps to no
// region id.
var ErrBadKey = errors.New("key cannot name a region")

// Key mapping. Region ids are [A-Za-z0-9][A-Za-z0-9._-]{0,63}; Redis keys
// are any bytes. A key maps to an id byte by byte: letters, digits, '.',
// '_' and '-' stand for themselves, and every other byte b is written '_'
// and b's two lowercase hex digits (':' is "_3a", ' ' is "_20"). An id
// maps back by reading each '_' and two lowercase hex digits that name a
// byte outside [A-Za-z0-9._-] as that byte, and everything else as
// itself.
//
// Every valid id is so the image of exactly one key (plain ids such as
// "default", "sensors" or "my_key" are their own keys), and the mapping
// is a bijection between the ids and the keys it accepts. It refuses keys
// that are empty, that do not start with a letter or digit, whose id
// would pass 64 bytes, or that hold an escape themselves: a '_' and two
// lowercase hex digits naming a byte outside the id alphabet ("a_3a"
// would read back as "a:").

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

const hexDigits = "0123456789abcdef"

// escapeAt reports whether b[i:] starts with an escape: '_' and two
// lowercase hex digits naming a byte outside the id alphabet. It returns
// that byte.
func escapeAt(b []byte, i int) (byte, bool) {
	if b[i] != '_' || i+2 >= len(b) || !isLowerHex(b[i+1]) || !isLowerHex(b[i+2]) {
		return 0, false
	}
	h, _ := hexVal(b[i+1])
	l, _ := hexVal(b[i+2])
	c := h<<4 | l
	return c, !isIDByte(c)
}

// Plain reports whether key is its own region id: then the id is key
// itself, with no copy.
func Plain(key []byte) bool {
	if len(key) == 0 || len(key) > MaxIDLen || !isAlnum(key[0]) {
		return false
	}
	for i, c := range key {
		if !isIDByte(c) {
			return false
		}
		if _, esc := escapeAt(key, i); esc {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// AppendID appends the region id of key to dst. On error dst is returned
// unchanged, and the error (wrapping ErrBadKey) says why.
func AppendID(dst, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return dst, fmt.Errorf("%w: the empty key", ErrBadKey)
	}
	if !isAlnum(key[0]) {
		return dst, fmt.Errorf("%w: %s does not start with a letter or digit", ErrBadKey, snippet(key, 0))
	}
	start := len(dst)
	for i, c := range key {
		if isIDByte(c) {
			if _, esc := escapeAt(key, i); esc {
				return dst[:start], fmt.Errorf("%w: %s holds %q at byte %d, which the key mapping reads back as another byte", ErrBadKey, snippet(key, 0), key[i:i+3], i)
			}
			dst = append(dst, c)
		} else {
			dst = append(dst, '_', hexDigits[c>>4], hexDigits[c&15])
		}
		if len(dst)-start > MaxIDLen {
			return dst[:start], fmt.Errorf("%w: %s maps to a region id longer than %d bytes (each byte other than a letter, digit, '.', '_' or '-' takes three)", ErrBadKey, snippet(key, 0), MaxIDLen)
		}
	}
	return dst, nil
}

// AppendKey appends the key of region id to dst. id must be a valid
// region id.
func AppendKey(dst, id []byte) []byte {
	for i := 0; i < len(id); i++ {
		if c, esc := escapeAt(id, i); esc {
			dst = append(dst, c)
			i += 2
			continue
		}
		dst = append(dst, id[i])
	}
	return dst
}
