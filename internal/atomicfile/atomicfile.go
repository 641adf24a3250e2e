// Package atomicfile replaces small files crash-safely: a crash at any
// instant leaves either the old or the new content, never a mix.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Write replaces dir/name with data: it writes a temporary file in dir,
// fsyncs it, renames it over the old file and fsyncs dir. The file gets
// perm.
func Write(dir, name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(dir, tempPrefix(name)+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}

// ErrNotDurable: Write replaced the file (readers see the new content)
// but could not make the rename durable; a crash of the machine may bring
// the old file back. A caller undoing what the new content records would
// make its state disagree with the file: it should go on and warn.
var ErrNotDurable = errors.New("file replaced, but the replacement may not survive a crash of the machine")

// Remove removes dir/name and fsyncs dir, so that the removal survives a
// crash. A file that does not exist is not an error.
func Remove(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return syncDir(dir)
}

// RemoveTemps removes the temporary files that a crash during Write of
// dir/name left behind.
func RemoveTemps(dir, name string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix(name)) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func tempPrefix(name string) string { return "." + strings.TrimSuffix(name, filepath.Ext(name)) + "-" }
