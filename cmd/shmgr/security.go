package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// checkHostFlags refuses the flags no host could run with, naming each
// flag (daemon.Config.Check says the same in its own words).
func checkHostFlags(f *hostFlags) error {
	switch {
	case f.lockTimeout <= 0:
		return usageError{fmt.Errorf("--lock-timeout %v: must be positive", f.lockTimeout)}
	case f.maxConns < 1:
		return usageError{fmt.Errorf("--max-connections %d: must be at least 1", f.maxConns)}
	case f.maxRequest < 1:
		return usageError{fmt.Errorf("--max-request %d: must be at least 1 byte", f.maxRequest)}
	case f.maxRegions < 1:
		return usageError{fmt.Errorf("--max-regions %d: must be at least 1 (the default region)", f.maxRegions)}
	case f.maxRegion < 1:
		return usageError{fmt.Errorf("--max-region-size %d: must be at least 1 byte", f.maxRegion)}
	case f.maxWatches < 1:
		return usageError{fmt.Errorf("--max-watches %d: must be at least 1", f.maxWatches)}
	case f.readTimeout <= 0 || f.writeTimeout <= 0:
		return usageError{errors.New("--read-timeout and --write-timeout must be positive")}
	case f.busyPoll < 0 || f.busyPoll > maxBusyPoll:
		return usageError{fmt.Errorf("--busy-poll %v: must be between 0 (off) and %v", f.busyPoll, maxBusyPoll)}
	case f.tlsKey != "" && f.tlsCert == "":
		return usageError{errors.New("--tls-key needs --tls-cert")}
	case f.tlsCert != "" && f.tlsKey == "":
		return usageError{errors.New("--tls-cert needs --tls-key")}
	}
	return nil
}

// lookupGroup returns the id of a group given by name or number.
func lookupGroup(name string) (int, error) {
	if g, err := user.LookupGroup(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	if g, err := user.LookupGroupId(name); err == nil {
		return strconv.Atoi(g.Gid)
	}
	return 0, errors.New("no such group")
}
