package region

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// bootIDFrom turns a boot identifier as the OS prints it (a UUID with or
// without dashes, or any other text) into the control block's 16 bytes.
// A blank one gives zeros: "unknown", never equal to a recorded one.
func bootIDFrom(s string) [bootIDLen]byte {
	var id [bootIDLen]byte
	s = strings.TrimSpace(s)
	if s == "" {
		return id
	}
	if b, err := hex.DecodeString(strings.ReplaceAll(s, "-", "")); err == nil && len(b) == bootIDLen {
		copy(id[:], b)
		return id
	}
	sum := sha256.Sum256([]byte(s))
	copy(id[:], sum[:])
	return id
}
