package shm

import "golang.org/x/sys/unix"

func machineID() string {
	// kern.uuid is the boot volume's hardware UUID.
	s, err := unix.Sysctl("kern.uuid")
	if err != nil {
		return ""
	}
	return s
}
