package region

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/shmgr/shmgr/internal/atomicfile"
)

// A checkpoint is a durable region's committed content in a file of its
// own, replaced atomically (temporary file, fsync, rename, fsync of the
// directory). The data file itself is a shared mapping: the kernel writes
// its dirty pages back whenever it likes, in any order, so after a power
// loss it may hold half of one write and half of another, whatever msync
// was asked for. The checkpoint is the copy that is whole: a seqlock
// read, so it is one committed version, taken without stopping writers.
//
// Layout: magic "SHMGRCK1", version (8), content length (8), content,
// CRC-32 (IEEE) of everything before it (4). Little-endian.
const (
	ckptMagic   = "SHMGRCK1"
	ckptHdrSize = 24
)

// ErrNoCheckpoint: there is no checkpoint file to restore from.
var ErrNoCheckpoint = errors.New("no checkpoint")

// CheckpointPath returns where the checkpoint of the durable region whose
// data file is dataPath lives.
func CheckpointPath(dataPath string) string { return dataPath + ".ckpt" }

// WriteCheckpoint writes the region's current committed content to path,
// atomically, and returns its version. buf is scratch space (it may be
// nil; pass the previous result's buffer to reuse it).
func (r *Region) WriteCheckpoint(path string, buf []byte) (uint64, []byte, error) {
	buf = append(buf[:0], ckptMagic...)
	buf = append(buf, make([]byte, 16)...)
	buf, v, err := r.AppendContent(buf)
	if err != nil {
		return 0, buf, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	binary.LittleEndian.PutUint64(buf[8:], v)
	binary.LittleEndian.PutUint64(buf[16:], uint64(len(buf)-ckptHdrSize))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
	if err := atomicfile.Write(filepath.Dir(path), filepath.Base(path), buf, 0o600); err != nil {
		return 0, buf, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return v, buf, nil
}

// ReadCheckpoint reads the checkpoint at path: the content and the
// version it had. A missing file is ErrNoCheckpoint; a damaged one (it
// cannot be, short of the disk failing) is ErrCorrupt.
func ReadCheckpoint(path string) ([]byte, uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w at %s", ErrNoCheckpoint, path)
	}
	if err != nil {
		return nil, 0, err
	}
	if len(b) < ckptHdrSize+4 || string(b[:8]) != ckptMagic {
		return nil, 0, fmt.Errorf("%w: %s is not a shmgr checkpoint", ErrCorrupt, path)
	}
	n := binary.LittleEndian.Uint64(b[16:])
	if n != uint64(len(b)-ckptHdrSize-4) {
		return nil, 0, fmt.Errorf("%w: checkpoint %s says %d bytes of content, holds %d", ErrCorrupt, path, n, len(b)-ckptHdrSize-4)
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, fmt.Errorf("%w: checkpoint %s fails its checksum", ErrCorrupt, path)
	}
	return body[ckptHdrSize:], binary.LittleEndian.Uint64(b[8:]), nil
}

// RestoreCheckpoint replaces the region's content with the checkpoint at
// path, under the lock, as one ordinary write (so the version moves on
// past anything the control block recorded). It returns the version the
// checkpoint had and the region's new version.
func (r *Region) RestoreCheckpoint(path string) (was, now uint64, err error) {
	content, was, err := ReadCheckpoint(path)
	if err != nil {
		return 0, 0, err
	}
	now, err = r.Write(content, WriteOptions{})
	if err != nil {
		return was, 0, fmt.Errorf("restore checkpoint %s: %w", path, err)
	}
	return was, now, nil
}
