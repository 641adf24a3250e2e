//go:build !linux && !darwin && !windows

package webui

import "os/exec"

// Other Unix desktops (the BSDs) follow freedesktop.org too.
func browserCommand(url string) *exec.Cmd { return exec.Command("xdg-open", url) }
