package shm

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// NamedKind is how named objects are stored on this OS.
const NamedKind = KindWindows

// sysMapping keeps the section (and file) handles: a page-file-backed
// named section dies with its last handle, so the creator keeps them for
// as long as it owns the object.
type sysMapping struct {
	section windows.Handle
	file    windows.Handle
}

func sectionName(name string) (*uint16, error) {
	return windows.UTF16PtrFromString(`Local\` + name)
}

func createNamed(name string, size int64, perm uint32) (*Mapping, error) {
	n, err := sectionName(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFileMapping(windows.InvalidHandle, nil, windows.PAGE_READWRITE,
		uint32(uint64(size)>>32), uint32(size), n)
	if h != 0 && errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		windows.CloseHandle(h)
		return nil, ErrExists
	}
	if err != nil {
		return nil, os.NewSyscallError("CreateFileMapping", err)
	}
	return view(h, 0, name, KindWindows, size)
}

func openNamed(name string, size int64) (*Mapping, error) {
	if size <= 0 {
		return nil, fmt.Errorf("size %d: must be positive on windows", size)
	}
	n, err := sectionName(name)
	if err != nil {
		return nil, err
	}
	// x/sys/windows has no OpenFileMapping: CreateFileMapping with the same
	// name returns the existing section with ERROR_ALREADY_EXISTS.
	h, err := windows.CreateFileMapping(windows.InvalidHandle, nil, windows.PAGE_READWRITE,
		uint32(uint64(size)>>32), uint32(size), n)
	if h == 0 {
		return nil, os.NewSyscallError("CreateFileMapping", err)
	}
	if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		windows.CloseHandle(h)
		return nil, ErrNotFound
	}
	return view(h, 0, name, KindWindows, size)
}

func view(section, file windows.Handle, name string, kind Kind, size int64) (*Mapping, error) {
	addr, err := windows.MapViewOfFile(section, windows.FILE_MAP_READ|windows.FILE_MAP_WRITE, 0, 0, uintptr(size))
	if err != nil {
		windows.CloseHandle(section)
		if file != 0 {
			windows.CloseHandle(file)
		}
		return nil, os.NewSyscallError("MapViewOfFile", err)
	}
	b := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), int(size))
	return &Mapping{name: name, path: name, kind: kind, b: b, sys: sysMapping{section: section, file: file}}, nil
}

func mapFile(path string, size int64, create bool, perm uint32) (*Mapping, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	mode := uint32(windows.OPEN_EXISTING)
	if create {
		mode = windows.CREATE_NEW
	}
	f, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, mode, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		if errors.Is(err, windows.ERROR_FILE_EXISTS) {
			return nil, ErrExists
		}
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			return nil, ErrNotFound
		}
		return nil, os.NewSyscallError("CreateFile", err)
	}
	if !create {
		var fi windows.ByHandleFileInformation
		if err := windows.GetFileInformationByHandle(f, &fi); err != nil {
			windows.CloseHandle(f)
			return nil, os.NewSyscallError("GetFileInformationByHandle", err)
		}
		got := int64(fi.FileSizeHigh)<<32 | int64(fi.FileSizeLow)
		if size <= 0 {
			size = got
		}
		if got != size || size == 0 {
			windows.CloseHandle(f)
			return nil, fmt.Errorf("file is %d bytes, expected %d", got, size)
		}
	}
	s, err := windows.CreateFileMapping(f, nil, windows.PAGE_READWRITE, uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		windows.CloseHandle(f)
		return nil, os.NewSyscallError("CreateFileMapping", err)
	}
	return view(s, f, path, KindFile, size)
}

func unmap(m *Mapping) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m.b)))
	err := windows.UnmapViewOfFile(addr)
	windows.CloseHandle(m.sys.section)
	if m.sys.file != 0 {
		windows.CloseHandle(m.sys.file)
	}
	if err != nil {
		return os.NewSyscallError("UnmapViewOfFile", err)
	}
	return nil
}

func syncMapping(m *Mapping) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m.b)))
	if err := windows.FlushViewOfFile(addr, uintptr(len(m.b))); err != nil {
		return os.NewSyscallError("FlushViewOfFile", err)
	}
	if err := windows.FlushFileBuffers(m.sys.file); err != nil {
		return os.NewSyscallError("FlushFileBuffers", err)
	}
	return nil
}

// removeNamed cannot delete a named section on Windows: it dies with its
// last handle. The owner closing its Mapping is the removal.
func removeNamed(name string) error { return nil }

// listNamed returns nil: Windows cannot enumerate named sections.
func listNamed(prefix string) ([]string, error) { return nil, nil }

// FreeSpace reports no limit on Windows: sections are backed by the page
// file, which the OS grows.
func FreeSpace() (int64, error) { return 1 << 62, nil }

// Chown is not supported on Windows: sections are shared by their
// security descriptor, not by group ownership.
func Chown(name string, gid int) error { return errors.ErrUnsupported }

func namedObjectPath(name string) string { return name }

// renameNamed: a named mapping cannot be renamed (nor listed, so no
// orphan is ever found to quarantine).
func renameNamed(oldName, newName string) error { return errors.ErrUnsupported }

// existsNamed: a section lives as long as a handle does, and the host
// holds one, so it cannot vanish behind the host's back.
func existsNamed(name string) (bool, error) { return true, nil }

func protectRead(m *Mapping) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m.b)))
	var old uint32
	if err := windows.VirtualProtect(addr, uintptr(len(m.b)), windows.PAGE_READONLY, &old); err != nil {
		return os.NewSyscallError("VirtualProtect", err)
	}
	return nil
}
