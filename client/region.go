package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
	"github.com/shmgr/shmgr/internal/shm"
)

// Region is one region on a host, reached by direct mapping (ModeLocal)
// or over TCP (ModeTCP). It is safe for concurrent use.
type Region struct {
	conn  *Conn
	owned bool // Close closes conn
	id    string
	info  Info
	mode  Mode
	why   string // why local mode was not used, if it was not

	local     *region.Region
	data, ctl *shm.Mapping
	lockTO    time.Duration
}

// Dial connects to the host at addr and opens the region shmID (empty:
// the host's default region), mapping it directly when it can (see
// Options.Mode).
func Dial(ctx context.Context, addr, shmID string, o Options) (*Region, error) {
	c, err := Connect(ctx, addr, o)
	if err != nil {
		return nil, err
	}
	r, err := c.Open(ctx, shmID)
	if err != nil {
		c.Close()
		return nil, err
	}
	r.owned = true
	return r, nil
}

// Open opens a region of this host (empty id: the default region). The
// Region shares the Conn; closing the Region does not close the Conn.
func (c *Conn) Open(ctx context.Context, id string) (*Region, error) {
	info := c.meta
	if id != "" && id != info.ShmID {
		if err := checkID(id); err != nil {
			return nil, err
		}
		var err error
		if info, err = c.Info(ctx, id); err != nil {
			return nil, fmt.Errorf("open region %q: %w", id, err)
		}
	}
	r := &Region{conn: c, id: info.ShmID, info: info, mode: ModeTCP, lockTO: c.opts.LockTimeout}
	if c.opts.Mode == ModeTCP {
		r.why = "TCP mode was requested"
		return r, nil
	}
	err := r.attach()
	if err == nil {
		r.mode = ModeLocal
		return r, nil
	}
	if c.opts.Mode == ModeLocal {
		return nil, fmt.Errorf("open region %q: %w: %v", info.ShmID, ErrNotLocal, err)
	}
	r.why = err.Error()
	return r, nil
}

// attach maps the region's objects and checks they are the host's.
func (r *Region) attach() error {
	in := r.info
	if in.HostID != shm.HostID() {
		return errors.New("the host runs on another machine")
	}
	open := shm.Open
	if in.OSKind == string(shm.KindFile) && in.Durable {
		open = shm.OpenFile
	}
	data, err := open(in.OSName, in.Size)
	if err != nil {
		return err
	}
	ctl, err := open(in.CtlName, region.CtlSize(in.Size))
	if err != nil {
		data.Close()
		return err
	}
	lr, err := region.Attach(data.Bytes(), ctl.Bytes())
	if err == nil && fmt.Sprintf("%016x", lr.Nonce()) != in.Nonce {
		err = errors.New("the object found under its name belongs to another region (nonce mismatch)")
	}
	if err != nil {
		data.Close()
		ctl.Close()
		return err
	}
	lr.SetLabel(fmt.Sprintf("shmgr client pid %d", os.Getpid()))
	r.local, r.data, r.ctl = lr, data, ctl
	return nil
}

// ID returns the region's shm_id.
func (r *Region) ID() string { return r.id }

// Mode returns ModeLocal if the region is mapped, ModeTCP otherwise.
func (r *Region) Mode() Mode { return r.mode }

// WhyNotLocal says why the region is not mapped directly ("" if it is).
func (r *Region) WhyNotLocal() string { return r.why }

// Info returns the region's description as of Dial (Version and the lock
// fields are not live; see Version and Conn.Info).
func (r *Region) Info() Info { return r.info }

// MaxContent returns the most bytes the region holds.
func (r *Region) MaxContent() int64 { return r.info.MaxDataSize }

// Close unmaps the region and, if Dial made the connection, closes it.
func (r *Region) Close() error {
	if r.local != nil {
		r.data.Close()
		r.ctl.Close()
		r.local = nil
	}
	if r.owned {
		return r.conn.Close()
	}
	return nil
}

func (r *Region) wo() region.WriteOptions { return region.WriteOptions{Timeout: r.lockTO} }

// Read returns the region's content.
func (r *Region) Read(ctx context.Context) ([]byte, error) {
	b, _, err := r.AppendRead(ctx, nil)
	return b, err
}

// ReadVersion returns the region's content and its version.
func (r *Region) ReadVersion(ctx context.Context) ([]byte, uint64, error) {
	return r.AppendRead(ctx, nil)
}

// AppendRead appends the region's content to dst and returns it with its
// version. With a dst of enough capacity it does not allocate in local
// mode.
func (r *Region) AppendRead(ctx context.Context, dst []byte) ([]byte, uint64, error) {
	if r.local != nil {
		return r.local.AppendContent(dst)
	}
	return r.conn.get(ctx, r.id, dst, 0, 0, false)
}

// ReadAt returns n bytes of content from offset off (clipped to the
// content's end for the utf8 layout).
func (r *Region) ReadAt(ctx context.Context, off, n int64) ([]byte, uint64, error) {
	if r.local != nil {
		return r.local.AppendRange(nil, off, n)
	}
	return r.conn.get(ctx, r.id, nil, off, n, true)
}

// Write replaces the content with p and returns the new version. Content
// that is too long (or not UTF-8 for the utf8 layout) is refused, and the
// region stays as it was.
func (r *Region) Write(ctx context.Context, p []byte) (uint64, error) {
	if r.local != nil {
		return r.local.Write(p, r.wo())
	}
	return r.conn.set(ctx, r.id, p, proto.SetOptions{})
}

// WriteAt writes p at offset off of the content and returns the new
// version.
func (r *Region) WriteAt(ctx context.Context, off int64, p []byte) (uint64, error) {
	if r.local != nil {
		return r.local.WriteAt(off, p, r.wo())
	}
	return r.conn.set(ctx, r.id, p, proto.SetOptions{HasAt: true, At: off})
}

// WriteIf replaces the content with p only if the region is still at
// version; otherwise it fails with a *ConflictError carrying the current
// version.
func (r *Region) WriteIf(ctx context.Context, p []byte, version uint64) (uint64, error) {
	if r.local != nil {
		o := r.wo()
		o.Conditional, o.IfVersion = true, version
		return r.local.Write(p, o)
	}
	return r.conn.set(ctx, r.id, p, proto.SetOptions{HasIfVer: true, IfVersion: version})
}

// Version returns the region's current version.
func (r *Region) Version(ctx context.Context) (uint64, error) {
	if r.local != nil {
		return r.local.Version(), nil
	}
	in, err := r.conn.Info(ctx, r.id)
	return in.Version, err
}

// Update applies fn to the current content and writes the result as one
// atomic step, and returns the new version. Locally fn runs under the
// region's lock (cur aliases the region and is valid only during fn).
// Over TCP it reads, applies fn and writes conditionally, retrying on
// conflict until ctx ends; fn may then run more than once.
func (r *Region) Update(ctx context.Context, fn func(cur []byte) ([]byte, error)) (uint64, error) {
	if r.local != nil {
		return r.local.Update(r.wo(), fn)
	}
	for {
		cur, v, err := r.ReadVersion(ctx)
		if err != nil {
			return 0, err
		}
		next, err := fn(cur)
		if err != nil {
			return 0, err
		}
		nv, err := r.WriteIf(ctx, next, v)
		if !errors.Is(err, ErrConflict) {
			return nv, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}
