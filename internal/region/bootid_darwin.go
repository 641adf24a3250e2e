package region

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// bootID returns this boot's id: kern.bootsessionuuid, new at every boot;
// failing that, the boot time (kern.boottime, to the microsecond).
func bootID() [bootIDLen]byte {
	if s, err := unix.Sysctl("kern.bootsessionuuid"); err == nil && s != "" {
		return bootIDFrom(s)
	}
	if tv, err := unix.SysctlTimeval("kern.boottime"); err == nil {
		return bootIDFrom(fmt.Sprintf("boottime %d.%06d", tv.Sec, tv.Usec))
	}
	return [bootIDLen]byte{}
}
