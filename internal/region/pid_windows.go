package region

import "golang.org/x/sys/windows"

// pidAlive reports whether a process with this pid is still running. Only
// Upgrade uses it: format 1 named owners by pid.
func pidAlive(pid uint32) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		// Access denied means it exists; invalid parameter means it is gone.
		return err != windows.ERROR_INVALID_PARAMETER
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return true
	}
	return code == 259 // STILL_ACTIVE
}
