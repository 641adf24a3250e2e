package shm

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
)

// HostID returns a short, stable identifier of this machine, derived from
// its machine id (never the raw id). Two processes with the same HostID
// may be able to share named objects; whether they really can is settled
// by opening the object and checking its nonce.
func HostID() string {
	id := machineID()
	if id == "" {
		id, _ = os.Hostname()
	}
	sum := sha256.Sum256([]byte("shmgr host id\x00" + strings.TrimSpace(id)))
	return hex.EncodeToString(sum[:8])
}
