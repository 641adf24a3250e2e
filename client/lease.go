package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/region"
)

// LockOptions tune Region.Lock.
type LockOptions struct {
	// Lease is how long the lock is held unless renewed (default 10s; a
	// host refuses more than 60s). When it runs out, a waiting writer may
	// take the lock, and writes under the old lease fail with ErrFenced.
	Lease time.Duration
	// Wait bounds how long to wait for the lock (default: the lock
	// timeout, 5s).
	Wait time.Duration
}

// Lease is the region's lock, held for a multi-step update. Writes made
// through it carry its fencing token; every other writer waits until it
// is released. It ends with Unlock, when the lease runs out, or when its
// holder goes away: the process dies (local mode: the next waiter notices)
// or its connection closes (TCP mode: the host releases it at once). A
// Lease is safe for concurrent use.
type Lease struct {
	r     *Region
	m     *localMap // local mode: the mapping, held until Unlock
	token uint64
	// mu protects done.
	mu   sync.Mutex
	done bool
}

// Lock takes the region's lock as a lease. Reads do not wait for it (they
// never block); writes by anyone else do.
func (r *Region) Lock(ctx context.Context, o LockOptions) (*Lease, error) {
	if o.Lease <= 0 {
		o.Lease = region.DefaultLease
	}
	if o.Wait <= 0 {
		o.Wait = r.lockTO
	}
	m, err := r.acquireWrite(ctx)
	if err != nil {
		return nil, err
	}
	if m != nil {
		wo := r.wo(ctx)
		token, err := m.r.Acquire(min(o.Wait, wo.Timeout), o.Lease, nil, wo.Stop)
		if err != nil {
			m.release()
			return nil, localLockErr(ctx, err)
		}
		l := &Lease{r: r, m: m, token: token}
		r.mu.Lock()
		r.leases[l] = struct{}{}
		r.mu.Unlock()
		return l, nil
	}
	var token uint64
	err = r.conn.do(ctx, retrySafe, func(b []byte) []byte {
		return proto.AppendLock(b, []byte(r.id), proto.LockOptions{
			Lease: max(o.Lease.Milliseconds(), 1), HasLease: true,
			Wait: o.Wait.Milliseconds(), HasWait: true,
		})
	}, func(rep proto.Reply) error {
		if rep.Kind != proto.ReplyOK {
			return unexpected(rep, "OK")
		}
		var err error
		token, err = strconv.ParseUint(string(rep.Text), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: LOCK reply without a token: %q", ErrProtocol, rep.Text)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", r.id, err)
	}
	return &Lease{r: r, token: token}, nil
}

// localLockErr gives a local lock wait's error the meaning it has over
// TCP: a lease past the maximum is ErrLimit (the host answers limit), and
// a wait stopped by ctx is ctx's error.
func localLockErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, region.ErrLeaseTooLong):
		return fmt.Errorf("%w: %w", ErrLimit, err)
	case errors.Is(err, region.ErrStopped) && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// Token returns the lease's fencing token. A later lease on the same
// region always has a larger one.
func (l *Lease) Token() uint64 { return l.token }

// end releases a local lease when its Region closes.
func (l *Lease) end() {
	l.mu.Lock()
	done := l.done
	l.done = true
	l.mu.Unlock()
	if !done && l.m != nil {
		l.m.r.Release(l.token) // ErrFenced if it was lost already: fine
		l.m.release()
	}
}

func (l *Lease) ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// Write replaces the content under the lease and returns the new version.
// It fails with ErrFenced if the lease has been lost.
func (l *Lease) Write(ctx context.Context, p []byte) (uint64, error) {
	return l.write(ctx, false, 0, p)
}

// WriteAt writes p at offset off under the lease.
func (l *Lease) WriteAt(ctx context.Context, off int64, p []byte) (uint64, error) {
	return l.write(ctx, true, off, p)
}

func (l *Lease) write(ctx context.Context, at bool, off int64, p []byte) (uint64, error) {
	if l.ended() {
		return 0, ErrFenced
	}
	if l.m != nil {
		o := region.WriteOptions{Fenced: true, Fence: l.token}
		if at {
			return l.m.r.WriteAt(off, p, o)
		}
		return l.m.r.Write(p, o)
	}
	return l.r.conn.set(ctx, l.r.id, p, proto.SetOptions{HasAt: at, At: off, HasFence: true, Fence: l.token})
}

// Renew extends the lease to d from now (0: the default 10s).
func (l *Lease) Renew(ctx context.Context, d time.Duration) error {
	if l.ended() {
		return ErrFenced
	}
	if d <= 0 {
		d = region.DefaultLease
	}
	if l.m != nil {
		return localLockErr(ctx, l.m.r.Renew(l.token, d))
	}
	return l.r.conn.do(ctx, retrySafe, func(b []byte) []byte {
		return proto.AppendRenew(b, []byte(l.r.id), l.token, max(d.Milliseconds(), 1))
	}, expectOK)
}

// Unlock releases the lease. It fails with ErrFenced if the lease had
// already been lost (nothing else is affected then).
func (l *Lease) Unlock(ctx context.Context) error {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return ErrFenced
	}
	l.done = true
	l.mu.Unlock()
	if l.m != nil {
		l.r.mu.Lock()
		delete(l.r.leases, l)
		l.r.mu.Unlock()
		defer l.m.release()
		return l.m.r.Release(l.token)
	}
	// Not retried: on a new connection the host would answer fenced, as
	// the lock went with the old one.
	err := l.r.conn.do(ctx, retryNever, func(b []byte) []byte {
		return proto.AppendUnlock(b, []byte(l.r.id), l.token)
	}, expectOK)
	if errors.Is(err, ErrUnknownOutcome) {
		// The connection dropped: the host released the lock with it.
		return nil
	}
	return err
}

func expectOK(rep proto.Reply) error {
	if rep.Kind != proto.ReplyOK {
		return unexpected(rep, "OK")
	}
	return nil
}
