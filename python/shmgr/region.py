"""Regions, the host-wide client, and watches."""

from __future__ import annotations

import hashlib
import os
import random
import select
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union, overload

from . import errors, fence as fence_mod, proto
from .conn import NEVER, SAFE, Conn, TLSOptions
from .local import LocalMap, Retired

Data = Union[str, bytes, bytearray, memoryview]

#: The modes of :func:`connect`.
MODES = ("auto", "local", "tcp")


def host_id() -> str:
    """This machine's identifier as shmgr hosts compute it (a hash of the
    machine id, never the id itself): a host whose metadata line carries
    the same one runs here, and its regions may be mapped."""
    mid = ""
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(p, "rb") as f:
                mid = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if mid:
            break
    if not mid:
        mid = socket.gethostname()
    return hashlib.sha256(b"shmgr host id\x00" + mid.strip().encode("utf-8")).hexdigest()[:16]


class RegionInfo(NamedTuple):
    """A region as the host describes it (the metadata object of
    docs/PROTOCOL.md). ``raw`` holds every field, the unknown ones too."""

    shm_id: str
    size: int
    layout: str
    max_data_size: int
    version: int
    durable: bool
    os_name: str
    os_kind: str
    raw: Dict[str, Any]

    @classmethod
    def from_json(cls, m: Dict[str, Any]) -> "RegionInfo":
        """Builds a RegionInfo from a metadata object."""
        return cls(
            shm_id=str(m.get("shm_id", "")),
            size=int(m.get("size", 0)),
            layout=str(m.get("layout", "")),
            max_data_size=int(m.get("max_data_size", 0)),
            version=int(m.get("version", 0)),
            durable=bool(m.get("durable", False)),
            os_name=str(m.get("os_name", "")),
            os_kind=str(m.get("os_kind", "")),
            raw=m,
        )


class Event(NamedTuple):
    """One state of a watched region, pushed by the host.

    ``skipped`` counts the versions committed since the previous event
    that this watcher never saw (it read slowly, or was reconnecting): the
    host sends the latest state, not every one."""

    version: int
    content: bytes
    skipped: int

    @property
    def text(self) -> str:
        """The content decoded as UTF-8."""
        return self.content.decode("utf-8")


def _encode(data: Data) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("content must be str or bytes, not %s" % type(data).__name__)


def _check_version(v: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > proto.MAX_UINT64:
        raise ValueError("version %r: want an integer from 0 to 2**64-1" % (v,))
    return v


class Region:
    """One region of a host, read by direct mapping (``mode == "local"``)
    or over TCP (``mode == "tcp"``); writes always go through the host.

    Made by :func:`connect` or :meth:`Client.open`. Use it as a context
    manager, or call :meth:`close`. A Region is safe for use from several
    threads: TCP requests take turns, local reads need no lock.

    Caveats: :meth:`close` unmaps the region at once; a local read running
    in another thread at that moment fails (ValueError from the released
    mapping), so close a Region after the threads that read it are done.
    A region deleted by the host is noticed by the next read (its retired
    flag), which then maps the region that has the shm_id now, or raises
    NotFoundError. Programs outside shmgr that write the documented layout
    directly are honoured (a read retries while their offset-0 flag is
    set) but their writes do not move the version.
    """

    def __init__(self, conn: Conn, info: Dict[str, Any], mode: str, owned: bool) -> None:
        if mode not in MODES:
            raise ValueError("mode %r: use auto, local or tcp" % (mode,))
        self._conn = conn
        self._owned = owned
        self._info = info
        self.shm_id: str = info["shm_id"]
        self._id = proto.check_id(self.shm_id)
        self._lock = threading.Lock()
        self._local: Optional[LocalMap] = None
        self._old: List[LocalMap] = []
        self._closed = False
        self._fence = fence_mod.choose()
        self._why = ""
        if conn.regions and self.shm_id not in conn.regions:
            raise errors.ForbiddenError("the token does not cover region %r" % self.shm_id, code="")
        if mode == "tcp":
            self._why = "TCP mode was requested"
        else:
            try:
                self._attach(info)
            except (OSError, ValueError) as e:
                if mode == "local":
                    raise errors.NotLocalError("region %r cannot be mapped from this process: %s" % (self.shm_id, e)) from None
                self._why = str(e)

    def _attach(self, info: Dict[str, Any]) -> None:
        if info.get("host_id") != host_id():
            raise ValueError("the host runs on another machine")
        m = LocalMap(info, self._fence)
        self._local = m
        fast = m.fast_readers(self._read_version_slow, self._barrier)
        if fast is not None:
            # The common local read is one closure call: bound on the
            # instance, it shadows the method and spares a call layer,
            # a large part of a local read's cost beyond its copy
            # (docs/PERFORMANCE.md, "The client split, before and after").
            self.read, self.read_version = fast  # type: ignore[assignment]

    def _detach(self) -> None:
        """Stops local reads: the methods serve every read again."""
        self.__dict__.pop("read", None)
        self.__dict__.pop("read_version", None)
        if self._local is not None:
            self._old.append(self._local)
            self._local = None

    # Properties.

    @property
    def mode(self) -> str:
        """"local" if reads come from the mapping, "tcp" otherwise."""
        return "local" if self._local is not None else "tcp"

    @property
    def why_not_local(self) -> str:
        """Why the region is not read from a mapping ("" when it is)."""
        return self._why

    @property
    def fence(self) -> str:
        """How local reads are ordered on this CPU: no fence needed, or
        libatomic's fence through ctypes; in TCP mode, "" (the host
        orders its own reads)."""
        return self._fence.how if self._local is not None else ""

    @property
    def info(self) -> RegionInfo:
        """The region as the host described it when it was opened (the
        version in it is not live: see :meth:`read_version`)."""
        return RegionInfo.from_json(self._info)

    @property
    def local_retries(self) -> int:
        """Seqlock attempts of local reads that raced a write (0 in TCP
        mode)."""
        return sum(m.retries for m in self._maps())

    @property
    def local_fallbacks(self) -> int:
        """Local reads that lost every race and were served over TCP."""
        return sum(m.fallbacks for m in self._maps())

    def _maps(self) -> List[LocalMap]:
        return self._old + ([self._local] if self._local is not None else [])

    # Reads. In local mode with no fence needed, read and read_version
    # are replaced per instance by LocalMap.fast_readers, which fall back
    # to _read_version_slow.

    def read(self, consistent: bool = False) -> bytes:
        """The region's content.

        On a cluster host a read is that host's copy, at most the
        replication lag behind. With consistent=True it is linearizable:
        the host first confirms with the leader and applies every write
        acknowledged before the read (a mapped region asks the host for
        that confirmation alone, then reads its mapping); a host that
        cannot reach the leader raises UnavailableError rather than serve
        what may be stale. On a single host it is a plain read."""
        if consistent:
            return self._read_consistent()[0]
        return self._read_version_slow()[0]

    def read_version(self, consistent: bool = False) -> Tuple[bytes, int]:
        """The region's content and the version it was read at (consistent:
        see read)."""
        if consistent:
            return self._read_consistent()
        return self._read_version_slow()

    def read_text(self, consistent: bool = False) -> str:
        """The content decoded as UTF-8 (consistent: see read)."""
        return self.read(consistent).decode("utf-8")

    def _barrier(self) -> None:
        """Returns once the host holds every write acknowledged before the
        call: a GET of no bytes with consistent, on a cluster host only."""
        if self._conn.replicated:
            self._conn.get(self._id, 0, 0, consistent=True)

    def _read_consistent(self) -> Tuple[bytes, int]:
        if self._local is None:
            if self._closed:
                raise errors.ClosedError("region %r is closed" % self.shm_id)
            return self._conn.get(self._id, consistent=True)
        self._barrier()
        return self._read_version_slow()

    def _read_version_slow(self) -> Tuple[bytes, int]:
        m = self._local
        if m is not None:
            try:
                r = m.read()
            except Retired:
                return self._read_after_retired()
            if r is not None:
                return r
        if self._closed:
            raise errors.ClosedError("region %r is closed" % self.shm_id)
        return self._conn.get(self._id)

    def _read_after_retired(self) -> Tuple[bytes, int]:
        """The host deleted the mapped region: map the region that now has
        the shm_id (NotFoundError if none), and read it."""
        with self._lock:
            m = self._local
            if m is not None and m.retired():
                # NotFoundError leaves the retired mapping in place: the
                # next read asks again, and maps a region made meanwhile.
                info = proto.check_meta(self._conn.json(SAFE, proto.info(self._id)), need_proto=False)
                self._detach()
                try:
                    self._attach(info)
                except (OSError, ValueError) as e:
                    self._why = "the region was replaced and cannot be mapped again: %s" % e
                self._info = info
        return self._read_version_slow()

    # Writes (always through the host).

    def write(self, data: Data) -> int:
        """Replaces the content (str is written as UTF-8) and returns the
        new version. Content that does not fit, or is not UTF-8 for a utf8
        region, is refused and the region stays as it was."""
        return self._conn.set(self._id, _encode(data))

    def write_if(self, data: Data, version: int) -> int:
        """Writes only if the region is still at version; otherwise raises
        :class:`ConflictError` whose ``current`` is the region's version."""
        return self._conn.set(self._id, _encode(data), ifver=_check_version(version))

    # Watches.

    def watch(self, from_version: Optional[int] = None, keepalive: float = 5.0) -> "Watcher":
        """Watches the region: iterate over the returned Watcher for
        :class:`Event`\\ s, pushed by the host at each commit (whoever made
        it), never polled. With from_version, only later versions come.
        The watch has its own connection, re-dialled after a drop; it
        resumes from the last version it delivered."""
        if self._closed:
            raise errors.ClosedError("region %r is closed" % self.shm_id)
        return Watcher(self._conn, self.shm_id, from_version, keepalive)

    # Lifetime.

    def close(self) -> None:
        """Unmaps the region and, if connect made the connection, closes
        it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._detach()
            maps, self._old = self._old, []
        for m in maps:
            m.close()
        if self._owned:
            self._conn.close()

    def __enter__(self) -> "Region":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<shmgr.Region %r on %s, %s>" % (self.shm_id, self._conn.addr, self.mode)


class Watcher:
    """An iterator of :class:`Event`\\ s of one region.

    It reads ``EVENT`` frames from a connection of its own. When that
    connection is silent for ``keepalive`` seconds it sends PING; when the
    next ``keepalive`` passes in silence too, or the connection drops, it
    reconnects (with backoff) and watches again from the last version it
    delivered, so a host restart costs no event except those skipped.
    A deleted region ends the watch with NotFoundError. Call :meth:`close`
    (or leave the ``with`` block) to stop.

    On a host that offers them (``"delta"`` in its metadata line's
    features) it asks for ``DELTA`` frames: only the changed bytes cross
    the network, applied to a private copy of the content (one region's
    worth of memory per Watcher). ``deltas`` counts the frames applied.
    """

    def __init__(self, conn: Conn, shm_id: str, from_version: Optional[int], keepalive: float) -> None:
        self._template = conn
        self.shm_id = shm_id
        self._id = proto.check_id(shm_id)
        self._last = from_version
        self._keepalive = keepalive
        self._conn: Optional[Conn] = None
        self._closed = False
        self._delta_ok = "delta" in (conn.meta.get("features") or [])
        # The content at version _held (for DELTA frames), if any.
        self._content: Optional[bytearray] = None
        self._held: Optional[int] = None
        #: DELTA frames applied so far.
        self.deltas = 0

    def _open(self, deadline: Optional[float]) -> None:
        t = self._template
        backoff = 0.02
        while True:
            if self._closed:
                raise errors.ClosedError("the watch is closed")
            try:
                c = Conn(t.addr, token=t.token, tls=t.tls, timeout=self._keepalive, connect_timeout=t.connect_timeout)
                try:
                    # Deltas apply to the content this watcher holds: with
                    # from= only when it holds that version's content.
                    delta = self._delta_ok and (self._last is None or self._held == self._last)
                    if not delta:
                        self._content, self._held = None, None
                    c._send(proto.watch(self._id, self._last, delta=delta))
                    rep = c._read_reply()
                    if rep.kind == proto.ERROR:
                        raise rep.error()
                    if rep.kind != proto.OK:
                        raise errors.ProtocolError("WATCH: expected OK, got %s" % rep.kind, code="")
                except BaseException:
                    c._drop()
                    raise
                self._conn = c
                return
            except (errors.ConnectError, OSError) as e:
                if isinstance(e, errors.TLSError):
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise errors.TimeoutError("watch %r: host %s unreachable: %s" % (self.shm_id, t.addr, e)) from None
            pause = backoff / 2 + random.random() * backoff
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            backoff = min(2 * backoff, t.max_backoff)

    def next(self, timeout: Optional[float] = None) -> Event:
        """The next event; raises :class:`shmgr.TimeoutError` if none comes
        within timeout seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        silent = 0
        while True:
            if self._closed:
                raise errors.ClosedError("the watch is closed")
            if self._conn is None:
                self._open(deadline)
                silent = 0
            c = self._conn
            assert c is not None and c._sock is not None
            wait = self._keepalive
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise errors.TimeoutError("watch %r: no event within %gs" % (self.shm_id, timeout or 0))
            try:
                if not c._buf or proto.parse_reply(c._buf)[0] is None:
                    if not select.select([c._sock], [], [], wait)[0] and not _pending(c._sock):
                        if deadline is not None and time.monotonic() >= deadline:
                            raise errors.TimeoutError("watch %r: no event within %gs" % (self.shm_id, timeout or 0))
                        silent += 1
                        if silent >= 2:
                            raise ConnectionResetError("host silent for %gs: connection presumed dead" % (2 * self._keepalive))
                        c._send(proto.ping())
                        continue
                rep = c._read_reply()
            except (OSError, errors.ProtocolError, errors.TooLargeError):
                c._drop()
                self._conn = None
                continue
            silent = 0
            if (rep.kind == proto.EVENT or rep.kind == proto.DELTA) and rep.shm_id == self._id:
                if self._last is not None and rep.version <= self._last:
                    continue
                if rep.kind == proto.EVENT:
                    content = rep.payload
                    if self._delta_ok:
                        self._content, self._held = bytearray(content), rep.version
                else:
                    applied = self._apply(rep)
                    if applied is None:
                        c._drop()  # a delta for content it does not hold: start over in full
                        self._conn, self._content, self._held = None, None, None
                        continue
                    content = applied
                skipped = 0 if self._last is None else rep.version - self._last - 1
                self._last = rep.version
                return Event(rep.version, content, skipped)
            if rep.kind == proto.ERROR:
                raise rep.error()
            # PONG, or a frame of no interest: keep reading.

    def _apply(self, rep: proto.Reply) -> Optional[bytes]:
        """Applies a DELTA frame to the held content; None if it holds none
        (the host sent a delta it should not have)."""
        b = self._content
        if b is None:
            return None
        if rep.size < len(b):
            del b[rep.size:]
        elif rep.size > len(b):
            b.extend(bytes(rep.size - len(b)))
        b[rep.offset:rep.offset + len(rep.payload)] = rep.payload
        self._held = rep.version
        self.deltas += 1
        return bytes(b)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return self.next()

    @property
    def last_version(self) -> Optional[int]:
        """The version of the last event delivered (or from_version)."""
        return self._last

    def close(self) -> None:
        """Ends the watch and closes its connection."""
        self._closed = True
        if self._conn is not None:
            self._conn._drop()
            self._conn = None

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _pending(sock: socket.socket) -> bool:
    pending = getattr(sock, "pending", None)
    return bool(pending and pending())


class Client:
    """Host-wide operations: list, create, delete, info; and open regions
    on the same connection.

    ``tls_fingerprint`` pins the host's certificate (the SHA-256 that
    ``shmgr host --tls`` prints), ``tls_ca`` verifies it against a CA
    bundle, ``tls=True`` alone against the system's roots.
    """

    def __init__(
        self,
        addr: Optional[str] = None,
        token: Optional[str] = None,
        *,
        tls: bool = False,
        tls_fingerprint: Optional[str] = None,
        tls_ca: Optional[str] = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_backoff: float = 2.0,
    ) -> None:
        self._conn = _dial(addr, token, tls, tls_fingerprint, tls_ca, timeout, connect_timeout, max_backoff)

    @property
    def addr(self) -> str:
        """The host's address."""
        return self._conn.addr

    @property
    def default(self) -> RegionInfo:
        """The host's default region, as its metadata line describes it."""
        return RegionInfo.from_json(self._conn.meta)

    def ping(self) -> None:
        """Checks that the host answers."""
        self._conn.ping()

    def list(self) -> List[RegionInfo]:
        """Every region on the host, sorted by shm_id."""
        return [RegionInfo.from_json(m) for m in self._conn.json(SAFE, proto.list_())]

    @overload
    def info(self) -> Dict[str, Any]: ...

    @overload
    def info(self, shm_id: str) -> RegionInfo: ...

    def info(self, shm_id: Optional[str] = None) -> Union[Dict[str, Any], RegionInfo]:
        """The host's description (a dict: server, pid, regions, limits,
        clients...), or with shm_id that region's."""
        if shm_id is None:
            return dict(self._conn.json(SAFE, proto.info()))
        return RegionInfo.from_json(self._conn.json(SAFE, proto.info(proto.check_id(shm_id))))

    def create(self, shm_id: str, size: Optional[int] = None, layout: Optional[str] = None, durable: bool = False, max_write: Optional[int] = None) -> RegionInfo:
        """Creates a region (size in bytes and layout "utf8" or "raw"
        default to the host's: 4096, utf8). ``max_write`` (raw regions
        only, 1 to size) is the largest write the region will take: its
        undo area holds that many bytes instead of the whole size, so it
        costs size + max_write + 4 KiB of shared memory instead of about
        twice size, and a larger write raises TooLargeError. The reply's
        ``raw["max_write"]`` and ``raw["footprint"]`` say what was
        reserved. Not retried once sent: a lost reply raises
        UnknownOutcomeError."""
        req = proto.create(proto.check_id(shm_id), size=size, layout=layout, durable=durable, max_write=max_write)
        return RegionInfo.from_json(self._conn.json(NEVER, req))

    def delete(self, shm_id: str) -> None:
        """Deletes a region and its shared-memory objects."""
        req = proto.delete(proto.check_id(shm_id))

        def ok(rep: proto.Reply) -> None:
            if rep.kind != proto.OK:
                raise errors.ProtocolError("expected OK reply, got %s" % rep.kind, code="")

        self._conn.do(NEVER, lambda: req, ok)

    def open(self, shm_id: Optional[str] = None, mode: str = "auto") -> Region:
        """Opens a region (None: the host's default) on this client's
        connection; closing the Region leaves the connection open."""
        return _open(self._conn, shm_id, mode, owned=False)

    def close(self) -> None:
        """Closes the connection."""
        self._conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _dial(
    addr: Optional[str],
    token: Optional[str],
    tls: bool,
    tls_fingerprint: Optional[str],
    tls_ca: Optional[str],
    timeout: float,
    connect_timeout: float,
    max_backoff: float,
) -> Conn:
    """The connection of connect and Client, TLS options made up from
    their arguments."""
    opts = None
    if tls or tls_fingerprint or tls_ca:
        opts = TLSOptions(fingerprint=tls_fingerprint, ca_file=tls_ca)
    return Conn(addr, token=token, tls=opts, timeout=timeout, connect_timeout=connect_timeout, max_backoff=max_backoff)


def _open(conn: Conn, shm_id: Optional[str], mode: str, owned: bool) -> Region:
    if mode not in MODES:
        raise ValueError("mode %r: use auto, local or tcp" % (mode,))
    info = conn.meta
    if shm_id and shm_id != info.get("shm_id"):
        info = proto.check_meta(conn.json(SAFE, proto.info(proto.check_id(shm_id))), need_proto=False)
    return Region(conn, info, mode, owned)


def connect(
    addr: Optional[str] = None,
    shm_id: Optional[str] = None,
    token: Optional[str] = None,
    mode: str = "auto",
    *,
    tls: bool = False,
    tls_fingerprint: Optional[str] = None,
    tls_ca: Optional[str] = None,
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    max_backoff: float = 2.0,
) -> Region:
    """Connects to the host at addr ("host:port"; 127.0.0.1:9410 by
    default) and opens region shm_id (None: the host's default region).

    mode "auto" maps the region when the host runs on this machine and its
    objects can be mapped, and reads over TCP otherwise; "local" insists on
    the mapping (NotLocalError); "tcp" never maps. TLS options as for
    :class:`Client`. Use the Region as a context manager.
    """
    if mode not in MODES:
        raise ValueError("mode %r: use auto, local or tcp" % (mode,))
    conn = _dial(addr, token, tls, tls_fingerprint, tls_ca, timeout, connect_timeout, max_backoff)
    try:
        return _open(conn, shm_id, mode, owned=True)
    except BaseException:
        conn.close()
        raise
