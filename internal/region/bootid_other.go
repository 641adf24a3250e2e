//go:build !linux && !darwin && !windows

package region

import (
	"fmt"
	"time"
)

// bootID returns a fallback boot id where the OS offers none: the boot
// time as the monotonic clock implies it, to a minute.
func bootID() [bootIDLen]byte {
	return bootIDFrom(fmt.Sprintf("monotonic-boot %d", (time.Now().UnixNano()-monotonic())/60e9))
}
