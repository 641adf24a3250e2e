"""Local reads: a region mapped from /dev/shm and read under its seqlock.

The data object and the control block's header page are mapped read-only
with :mod:`mmap` (not :mod:`multiprocessing.shared_memory`, whose resource
tracker unlinks segments it merely attached before Python 3.13). A read
is the seqlock of internal/region, from the reader's side:

1. load the seq word with one aligned 8-byte load (an index into a
   ``memoryview.cast("Q")``; ``struct.unpack`` assembles a number one byte
   at a time and could see half of a store) and retry while it is odd;
2. for the utf8 layout, refuse while the offset-0 lock flag is set (a
   writer is at work, perhaps a program outside shmgr that knows only the
   documented layout), and take the length from bytes 1-4;
3. copy the data;
4. load seq again, and check the flag again: unchanged means the copy is
   consistent.

A read that loses :data:`MAX_TRIES` races in a row gives up, and the
caller reads over TCP instead (the host's reader takes the lock after
its own retries, so it never starves). Writes never happen here: they go
through the host, which owns the lock, the undo log and the fencing.

# Caveats

The mapping stays valid after the host deletes the region (the kernel
keeps unlinked pages while they are mapped): the retired flag, checked by
every read, is what tells the reader to ask the host again.
"""

from __future__ import annotations

import mmap
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import ctlblock
from .fence import Fence

#: Seqlock attempts before a read gives up and goes over TCP.
MAX_TRIES = 64
#: After this many failed attempts a reader yields the CPU between tries.
SPIN_TRIES = 4

_yield: Callable[[], Any] = getattr(os, "sched_yield", lambda: None)


class Retired(Exception):
    """The host has deleted (or replaced) the mapped region."""


def _object_path(kind: str, name: str) -> str:
    if kind == "posix_shm":
        if not os.path.isdir("/dev/shm"):
            raise ValueError("posix_shm objects are mapped from /dev/shm, which this system lacks")
        return "/dev/shm/" + name
    if kind == "file":
        return name
    raise ValueError("objects of kind %r cannot be mapped by the Python client" % kind)


def _map(path: str, length: Optional[int], want: Optional[int]) -> mmap.mmap:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if want is not None and size != want:
            raise ValueError("%s is %d bytes, the host says %d" % (path, size, want))
        n = size if length is None else length
        if size < n:
            raise ValueError("%s is %d bytes, shorter than %d" % (path, size, n))
        return mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ)
    finally:
        os.close(fd)


class LocalMap:
    """One read-only mapping of a region, checked against the host's
    description of it (``info``, a metadata object).

    ``read`` returns ``(content, version)``, or None when it lost every
    race and the caller should read over TCP; it raises :class:`Retired`
    when the host has deleted the region. ``retries`` counts the seqlock
    attempts that failed, ``fallbacks`` the reads that gave up.
    """

    def __init__(self, info: Dict[str, Any], fence: Fence) -> None:
        if not fence.usable:
            raise ValueError(fence.how)
        kind = info.get("os_kind", "")
        size = int(info["size"])
        self.layout = info["layout"]
        self.size = size
        data = _map(_object_path(kind, info["os_name"]), None, size)
        try:
            ctl = _map(_object_path(kind, info["ctl_name"]), ctlblock.HEADER_SIZE, None)
        except BaseException:
            data.close()
            raise
        self._data, self._ctl = data, ctl
        self._views: List[memoryview] = []
        try:
            hdr = ctlblock.parse_header(ctl[: ctlblock.HEADER_SIZE])
            if hdr.layout != self.layout or hdr.size != size:
                raise ValueError("the control block describes a %s region of %d bytes, the host a %s one of %d" % (hdr.layout, hdr.size, self.layout, size))
            if hdr.nonce != str(info.get("nonce", "")).lower():
                raise ValueError("the object found under its name belongs to another region (nonce %s, the host says %s)" % (hdr.nonce, info.get("nonce")))
            self.format = hdr.format
            self._stats = [0, 0]  # retries, fallbacks
            self.read: Callable[[], Optional[Tuple[bytes, int]]] = self._make_reader(hdr.offsets, fence)
            if self.retired():
                raise ValueError("the region is being deleted")
        except BaseException:
            self.close()
            raise

    def _view(self, m: mmap.mmap, n: int, fmt: str = "Q") -> memoryview:
        # An aligned view of the first n bytes: an index into it is one
        # aligned load of the item's size.
        whole = memoryview(m)
        part = whole[:n]
        q = part.cast(fmt)
        self._views += [q, part, whole]
        return q

    def _make_reader(self, off: ctlblock.Offsets, fence: Fence) -> Callable[[], Optional[Tuple[bytes, int]]]:
        # Everything the hot path touches is a local of the closure.
        cq = self._view(self._ctl, ctlblock.HEADER_SIZE)
        ci = self._view(self._ctl, ctlblock.HEADER_SIZE, "I")  # uint32 words: the retired flag
        seq_i = off.seq // 8
        ret_i = off.retired // 4
        mm = self._data
        stats = self._stats
        acquire = fence.call
        utf8 = self.layout == "utf8"
        size = self.size
        maxn = size - 5 if utf8 else size
        self._ret = (cq, ci, ret_i)
        self._seq_i = seq_i
        self._acquire = acquire
        dq = self._view(mm, 8) if utf8 and size >= 8 else None
        self._dq = dq

        def give_up(i: int) -> None:
            if i > SPIN_TRIES:
                _yield()

        def retired() -> None:
            if ci[ret_i]:
                raise Retired()

        def head() -> Tuple[int, int]:
            # (flag, length) of a utf8 region.
            if dq is not None:
                w = dq[0]
                return w & 0xFF, (w >> 8) & 0xFFFFFFFF
            h = mm[0:5]
            return h[0], int.from_bytes(h[1:5], "little")

        fence_call: Callable[[], None] = acquire if acquire is not None else (lambda: None)

        def read_general() -> Optional[Tuple[bytes, int]]:
            retired()
            for i in range(MAX_TRIES):
                s = cq[seq_i]
                fence_call()
                if not s & 1:
                    if utf8:
                        flag, n = head()
                        if not flag and n <= maxn:
                            b = mm[5:5 + n]
                            fence_call()
                            if cq[seq_i] == s and not head()[0]:
                                return b, s >> 1
                    else:
                        b = mm[0:size]
                        fence_call()
                        if cq[seq_i] == s:
                            return b, s >> 1
                stats[0] += 1
                give_up(i)
            stats[1] += 1
            return None

        return read_general

    def fast_readers(self, slow: Callable[[], Tuple[bytes, int]], barrier: Callable[[], None]) -> Optional[Tuple[Callable[..., bytes], Callable[..., Tuple[bytes, int]]]]:
        """Returns (read, read_version) functions for the common case, one
        seqlock attempt with everything they touch bound in their closure;
        any other case (a write in progress, a retired region) calls slow.
        Called with consistent=True they call barrier first (the host's
        confirmation that the mapping holds every acknowledged write).
        None where the CPU needs a fence (the general loop then serves
        every read)."""
        if self._acquire is not None:
            return None
        cq, ci, ret_i = self._ret
        seq_i = self._seq_i
        mm = self._data
        size = self.size
        if self.layout == "utf8" and self._dq is not None:
            dq: memoryview = self._dq
            maxn = size - 5

            # The flag is one byte (mm[0], a single load that makes no new
            # int); the length comes from bytes 1-4 of the first aligned
            # word, once the flag is seen clear. read and read_version are
            # two copies of one attempt on purpose: a shared helper would
            # add a call to the path they exist to keep short.
            def read(consistent: bool = False) -> bytes:
                if consistent:
                    barrier()
                s = cq[seq_i]
                if not (s & 1 or mm[0] or ci[ret_i]):
                    n = dq[0] >> 8 & 0xFFFFFFFF
                    if n <= maxn:
                        b = mm[5:5 + n]
                        if cq[seq_i] == s and not mm[0]:
                            return b
                return slow()[0]

            def read_version(consistent: bool = False) -> Tuple[bytes, int]:
                if consistent:
                    barrier()
                s = cq[seq_i]
                if not (s & 1 or mm[0] or ci[ret_i]):
                    n = dq[0] >> 8 & 0xFFFFFFFF
                    if n <= maxn:
                        b = mm[5:5 + n]
                        if cq[seq_i] == s and not mm[0]:
                            return b, s >> 1
                return slow()

            return read, read_version
        if self.layout == "raw":

            def read_raw(consistent: bool = False) -> bytes:
                if consistent:
                    barrier()
                s = cq[seq_i]
                if not (s & 1 or ci[ret_i]):
                    b = mm[0:size]
                    if cq[seq_i] == s:
                        return b
                return slow()[0]

            def read_version_raw(consistent: bool = False) -> Tuple[bytes, int]:
                if consistent:
                    barrier()
                s = cq[seq_i]
                if not (s & 1 or ci[ret_i]):
                    b = mm[0:size]
                    if cq[seq_i] == s:
                        return b, s >> 1
                return slow()

            return read_raw, read_version_raw
        return None

    @property
    def retries(self) -> int:
        """Seqlock attempts that failed (a write was in progress)."""
        return self._stats[0]

    @property
    def fallbacks(self) -> int:
        """Reads that gave up after MAX_TRIES attempts."""
        return self._stats[1]

    def retired(self) -> bool:
        """Reports whether the host has deleted the region."""
        _, ci, i = self._ret
        return bool(ci[i])

    def version(self) -> int:
        """The version of the last committed write (seq/2)."""
        return int(self._ret[0][self._seq_i]) >> 1

    def close(self) -> None:
        """Unmaps the region. The read function must not be called after."""
        for v in getattr(self, "_views", []):
            v.release()
        self._views = []
        self._data.close()
        self._ctl.close()
