package atomicfile

// syncDir is a no-op on Windows: directories cannot be opened for fsync,
// and NTFS journals the rename.
func syncDir(dir string) error { return nil }
