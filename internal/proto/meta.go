package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ProtoName is the protocol name and major version a host announces in
// Meta.Proto. Peers accept any "shmgr/<version>"; a new major version means
// the request syntax changed.
const ProtoName = "shmgr/1"

// Layouts, as named in Meta.Layout and CREATE layout=.
const (
	// LayoutUTF8 is the original layout: lock flag at 0, little-endian
	// uint32 length at 1, UTF-8 data at 5.
	LayoutUTF8 = "utf8"
	// LayoutRaw makes the whole data object data.
	LayoutRaw = "raw"
)

// Meta is the metadata line the host sends first on every connection (for
// the connection's default region), and also the JSON of the USE, INFO <id>
// and CREATE replies. The offsets let a client on the same machine map the
// region and use it directly.
type Meta struct {
	// Proto is the protocol name and version, "shmgr/1".
	Proto string `json:"proto"`
	// Server names the host software and version, such as "shmgr 0.1.0".
	Server string `json:"server"`
	// HostID identifies the machine (a hash of its machine id), so a client
	// can tell that it runs on the same machine and map the region.
	HostID string `json:"host_id"`
	// ShmID is the region's id.
	ShmID string `json:"shm_id"`
	// Size is the data object's size in bytes.
	Size int64 `json:"size"`
	// Layout is "utf8" or "raw".
	Layout string `json:"layout"`
	// LockOffset is the lock flag's offset: 0 for utf8, -1 for raw.
	LockOffset int64 `json:"lock_offset"`
	// LenOffset is the length field's offset: 1 for utf8, -1 for raw.
	LenOffset int64 `json:"len_offset"`
	// DataOffset is where the data starts: 5 for utf8, 0 for raw.
	DataOffset int64 `json:"data_offset"`
	// MaxDataSize is the most data the region holds: size-5 for utf8, size
	// for raw.
	MaxDataSize int64 `json:"max_data_size"`
	// Version is the region's version when the line was made.
	Version uint64 `json:"version"`
	// OSName is the OS name of the data object (the file path for a durable
	// region).
	OSName string `json:"os_name"`
	// CtlName is the OS name of the control block.
	CtlName string `json:"ctl_name"`
	// OSKind is how the objects are made: "posix_shm", "file" or
	// "windows_mapping".
	OSKind string `json:"os_kind"`
	// Nonce is 16 hex digits that identify this incarnation of the region;
	// it matches the control block.
	Nonce string `json:"nonce"`
	// Durable is set for a file-backed region.
	Durable bool `json:"durable"`
	// MaxWrite is the largest write the region takes, the size of its
	// control block's undo area (a local client maps the control block
	// at region.CtlSize(Size, MaxWrite)); absent (hosts older than the
	// field): the whole size.
	MaxWrite int64 `json:"max_write,omitempty"`
	// Footprint is what the region costs in shared memory (or on disk,
	// durable); absent from hosts older than the field.
	Footprint int64 `json:"footprint,omitempty"`
	// Created is when the region was created; omitted when zero.
	Created time.Time `json:"created,omitzero"`
	// Auth is "none" or "token" (AUTH is required); omitted when empty.
	Auth string `json:"auth,omitempty"`
	// Session identifies the host's session: it changes when the host
	// restarts after a crash (a host stopped gracefully hands it on to its
	// next start), which tells a reconnecting client that the host may
	// have lost what it remembered (such as recent idempotency keys).
	Session string `json:"session,omitempty"`
	// Features lists what the host supports beyond shmgr/1's first form:
	// "delta" (WATCH delta=1 and DELTA frames). Omitted when empty.
	Features []string `json:"features,omitempty"`
}

// FeatureDelta is the Features entry of hosts that send DELTA frames.
const FeatureDelta = "delta"

// FeatureReplicated is the Features entry of a cluster node: its regions
// change only through the cluster's log, so a client that maps a region
// must send its writes to the host, not write the mapping.
const FeatureReplicated = "replicated"

// ParseMeta parses and checks a metadata line (a trailing newline is
// allowed). It requires a JSON object whose proto starts with "shmgr/",
// whose shm_id passes ValidID, whose size is positive and whose layout is
// "utf8" or "raw" with offsets and max_data_size consistent with it; a
// nonce, if present, must be 16 hex digits. Unknown fields are ignored, so
// newer hosts can add some. Errors wrap ErrBadMeta.
func ParseMeta(line []byte) (Meta, error) {
	var m Meta
	if t := bytes.TrimLeft(line, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Meta{}, fmt.Errorf("%w: not a JSON object", ErrBadMeta)
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrBadMeta, err)
	}
	if err := m.check(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// check validates m as ParseMeta describes.
func (m *Meta) check() error {
	if !strings.HasPrefix(m.Proto, "shmgr/") {
		return fmt.Errorf("%w: proto %q is not shmgr/<version>", ErrBadMeta, m.Proto)
	}
	if !ValidID([]byte(m.ShmID)) {
		return fmt.Errorf("%w: invalid shm_id %q", ErrBadMeta, m.ShmID)
	}
	if m.Size <= 0 {
		return fmt.Errorf("%w: size %d is not positive", ErrBadMeta, m.Size)
	}
	if m.Layout != LayoutUTF8 && m.Layout != LayoutRaw {
		return fmt.Errorf("%w: unknown layout %q", ErrBadMeta, m.Layout)
	}
	if m.Layout == LayoutUTF8 && m.Size < utf8Header {
		return fmt.Errorf("%w: size %d too small for the utf8 layout", ErrBadMeta, m.Size)
	}
	lock, length, data, maxData := layoutOffsets(m.Layout, m.Size)
	if m.LockOffset != lock || m.LenOffset != length || m.DataOffset != data || m.MaxDataSize != maxData {
		return fmt.Errorf("%w: offsets lock=%d len=%d data=%d max_data_size=%d do not match layout %s of size %d (want %d %d %d %d)",
			ErrBadMeta, m.LockOffset, m.LenOffset, m.DataOffset, m.MaxDataSize, m.Layout, m.Size, lock, length, data, maxData)
	}
	if m.Nonce != "" && !isHex16(m.Nonce) {
		return fmt.Errorf("%w: nonce %q is not 16 hex digits", ErrBadMeta, m.Nonce)
	}
	return nil
}

// utf8Header is the size of the utf8 layout's lock flag and length field.
const utf8Header = 5

// FillOffsets sets LockOffset, LenOffset, DataOffset and MaxDataSize from
// Layout and Size. It leaves them alone for an unknown layout.
func (m *Meta) FillOffsets() {
	if m.Layout == LayoutUTF8 || m.Layout == LayoutRaw {
		m.LockOffset, m.LenOffset, m.DataOffset, m.MaxDataSize = layoutOffsets(m.Layout, m.Size)
	}
}

// layoutOffsets returns the offsets a layout has in a data object of the
// given size; layout must be LayoutUTF8 or LayoutRaw.
func layoutOffsets(layout string, size int64) (lock, length, data, maxData int64) {
	if layout == LayoutUTF8 {
		return 0, 1, utf8Header, size - utf8Header
	}
	return -1, -1, 0, size
}

func isHex16(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// AppendMeta appends m as one line of JSON and a '\n'. It does not check m.
// A Created time that JSON cannot carry (a year outside 0-9999) is left
// out. Unlike the frame encoders it allocates; it runs once per connection.
func AppendMeta(dst []byte, m Meta) []byte {
	js, err := json.Marshal(m)
	if err != nil {
		// Only Created can fail to marshal.
		m.Created = time.Time{}
		js, _ = json.Marshal(m)
	}
	dst = append(dst, js...)
	return append(dst, '\n')
}
