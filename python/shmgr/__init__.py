"""shmgr: the Python client of shmgr, the cross-network shared memory
manager. Standard library only.

    import shmgr
    with shmgr.connect("127.0.0.1:9410", "default") as r:
        print(r.mode)              # "local" (mapped) or "tcp"
        v = r.write("hello 共享")   # str (UTF-8) or bytes; the new version
        data, v = r.read_version()
        r.write_if(b"next", v)     # ConflictError (.current) if someone wrote since v
        for ev in r.watch():       # pushed by the host: ev.version, ev.content, ev.skipped
            ...

On the host's machine a region is read straight from its mapping under
shmgr's seqlock (zero copy beyond the one into the returned bytes);
anywhere else, and for every write, the client speaks the shmgr protocol
over TCP, with TLS and tokens when the host asks for them. Errors are
subclasses of :class:`shmgr.Error`, one per kind.
"""

from .conn import DEFAULT_PORT
from .errors import (
    AuthError,
    BadIDError,
    ClosedError,
    ConflictError,
    ConnectError,
    Error,
    ExistsError,
    FencedError,
    ForbiddenError,
    HostError,
    InvalidUTF8Error,
    LimitError,
    LockTimeoutError,
    NotFoundError,
    NotLocalError,
    OutOfRangeError,
    ProtocolError,
    TimeoutError,
    TLSError,
    TooLargeError,
    UnavailableError,
    UnknownOutcomeError,
)
from .region import Client, Event, Region, RegionInfo, Watcher, connect, host_id

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PORT",
    "AuthError",
    "BadIDError",
    "Client",
    "ClosedError",
    "ConflictError",
    "ConnectError",
    "Error",
    "Event",
    "ExistsError",
    "FencedError",
    "ForbiddenError",
    "HostError",
    "InvalidUTF8Error",
    "LimitError",
    "LockTimeoutError",
    "NotFoundError",
    "NotLocalError",
    "OutOfRangeError",
    "ProtocolError",
    "Region",
    "RegionInfo",
    "TLSError",
    "TimeoutError",
    "TooLargeError",
    "UnavailableError",
    "UnknownOutcomeError",
    "Watcher",
    "connect",
    "host_id",
]
