package region

import "golang.org/x/sys/windows"

var getTickCount64 = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetTickCount64")

// monotonic returns the system-wide tick count in nanoseconds: the same in
// every process, never stepped by time changes (millisecond resolution).
func monotonic() int64 {
	ms, _, _ := getTickCount64.Call()
	return int64(ms) * 1e6
}
