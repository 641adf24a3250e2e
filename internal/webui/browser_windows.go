package webui

import "os/exec"

// rundll32 opens the URL without a console window and without cmd.exe
// interpreting its characters (& in a query would split a "start" line).
func browserCommand(url string) *exec.Cmd {
	return exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
}
