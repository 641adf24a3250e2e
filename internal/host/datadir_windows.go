package host

import (
	"os"
	"path/filepath"
)

// stateDir is %LocalAppData%\shmgr.
func stateDir() (string, error) {
	if d := os.Getenv("LocalAppData"); d != "" {
		return filepath.Join(d, "shmgr"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "shmgr"), nil
}
