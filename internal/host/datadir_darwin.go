package host

import (
	"os"
	"path/filepath"
)

// stateDir is ~/Library/Application Support/shmgr.
func stateDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "shmgr"), nil
}
