package region

import (
	"fmt"
	"time"
)

// bootID returns an id for this boot. Windows has no boot id; the boot
// time (now less the tick count) serves, rounded to a minute so that the
// clock's small adjustments do not change it. Two boots within the same
// minute would look alike; the slots' LockFileEx locks do not survive a
// reboot in any case, so only leases of such a block are affected.
func bootID() [bootIDLen]byte {
	boot := time.Now().Add(-time.Duration(monotonic())).Round(time.Minute)
	return bootIDFrom(fmt.Sprintf("boottime %d", boot.Unix()))
}
