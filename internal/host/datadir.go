package host

import (
	"errors"
	"os"
)

// DataDirEnv names the environment variable that overrides the default
// data directory.
const DataDirEnv = "SHMGR_DATA_DIR"

// DefaultDataDir returns $SHMGR_DATA_DIR if set, else the per-user state
// directory for shmgr on this OS.
func DefaultDataDir() (string, error) {
	if d := os.Getenv(DataDirEnv); d != "" {
		return d, nil
	}
	d, err := stateDir()
	if err != nil || d == "" {
		return "", errors.New("no home directory to keep shmgr's data in: set " + DataDirEnv + " or pass --data-dir")
	}
	return d, nil
}
