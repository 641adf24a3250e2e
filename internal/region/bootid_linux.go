package region

import "os"

// bootID returns this boot's id: the kernel's random boot_id, new at
// every boot.
func bootID() [bootIDLen]byte {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return bootIDFrom(string(b))
}
