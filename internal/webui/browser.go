package webui

import "os/exec"

// OpenBrowser asks the desktop to open url in the default browser. It
// returns the started opener (xdg-open, open or rundll32), which the
// caller should Wait for; an opener may run until the browser it started
// exits.
func OpenBrowser(url string) (*exec.Cmd, error) {
	cmd := browserCommand(url)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}
