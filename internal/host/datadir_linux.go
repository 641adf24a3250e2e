package host

import (
	"os"
	"path/filepath"
)

// stateDir follows the XDG base directory spec: $XDG_STATE_HOME/shmgr,
// else ~/.local/state/shmgr.
func stateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "shmgr"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state", "shmgr"), nil
}
