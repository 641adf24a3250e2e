"""A TCP (or TLS) connection to a host, with reconnection and retries.

A :class:`Conn` carries one request at a time (a lock makes concurrent
callers take turns). When the connection drops, the next request dials
again with exponential backoff and jitter, and the request is retried
when that is safe, with the Go client's three classes (client/retry.go):

- reads, INFO, LIST, PING are repeated;
- every write carries this connection's client id and a sequence number
  (``SET ... cid=<id> seq=<n>``): the host remembers the answers to each
  client's last 64 writes and replays the answer to a repeated one instead
  of applying it again, so a write whose reply was lost is applied once,
  as long as the same host session answers the retry (the metadata line's
  ``session``). If the host's session changed, or the retries ran out,
  the write raises :class:`~shmgr.errors.UnknownOutcomeError`;
- CREATE and DELETE are not retried once sent: a lost reply is an unknown
  outcome too.
"""

from __future__ import annotations

import hashlib
import os
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from . import errors, proto

#: The port a host listens on by default.
DEFAULT_PORT = 9410

#: How often one request is tried at most.
MAX_ATTEMPTS = 5
#: How long a connection may sit unused before the next request first
#: checks that the host has not closed it (a host restarted meanwhile): a
#: request sent on a connection the host already closed counts as sent,
#: and a write would end as an unknown outcome though it never left.
IDLE_PROBE = 0.001

SAFE, KEYED, NEVER = "safe", "keyed", "never"

T = TypeVar("T")


def split_addr(addr: Optional[str]) -> Tuple[str, int]:
    """Splits "host:port", "[v6]:port" or a bare host (DEFAULT_PORT)."""
    if not addr:
        return "127.0.0.1", DEFAULT_PORT
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            return host, int(rest[1:])
        return host, DEFAULT_PORT
    if addr.count(":") == 1:
        host, _, port = addr.partition(":")
        if not port.isdigit():
            raise ValueError("address %r: the port must be a number" % addr)
        return host or "127.0.0.1", int(port)
    return addr, DEFAULT_PORT  # a bare host name, IPv4 or IPv6 address


def normalize_fingerprint(fp: str) -> str:
    """Turns a SHA-256 fingerprint in any common spelling (colons or not,
    any case) into 64 lower-case hex digits, as the Go client does."""
    s = fp.lower().replace(":", "").replace(" ", "").replace("-", "")
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise ValueError("fingerprint %r: want the 64 hex digits of a SHA-256 (colons allowed)" % fp)
    return s


def format_fingerprint(der: bytes) -> str:
    """The SHA-256 of a certificate as "AB:CD:...", as the host prints it."""
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))


class TLSOptions:
    """How to reach a TLS host: pin its certificate's SHA-256
    ``fingerprint`` (as ``shmgr host --tls`` prints it; the way for its
    self-signed certificate), or verify it against ``ca_file``, or against
    the system's roots when both are None. ``context`` overrides all."""

    def __init__(self, fingerprint: Optional[str] = None, ca_file: Optional[str] = None, context: Optional[ssl.SSLContext] = None) -> None:
        self.pin = normalize_fingerprint(fingerprint) if fingerprint else None
        if context is None:
            if self.pin:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # replaced by the pin check
            else:
                context = ssl.create_default_context(cafile=ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context = context

    def wrap(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """Makes the TLS handshake on sock and checks the pin."""
        server_name = None if self.pin else host
        ss = self.context.wrap_socket(sock, server_hostname=server_name)
        if self.pin:
            der = ss.getpeercert(binary_form=True)
            if not der:
                ss.close()
                raise errors.TLSError("tls: the host sent no certificate")
            if hashlib.sha256(der).hexdigest() != self.pin:
                ss.close()
                raise errors.TLSError(
                    "tls: the host's certificate has fingerprint %s, not the pinned one: wrong host, or its certificate changed" % format_fingerprint(der)
                )
        return ss


def _timeval(seconds: float) -> bytes:
    sec = int(seconds)
    return struct.pack("ll", sec, int((seconds - sec) * 1e6))


class Conn:
    """A connection to the host at addr. See the module's doc for retries.

    ``meta`` is the metadata line (a dict) of the host's default region as
    of the last (re)connect; ``session`` the host's session. A Conn is safe
    for use from several threads; requests take turns.
    """

    def __init__(
        self,
        addr: Optional[str],
        token: Optional[str] = None,
        tls: Optional[TLSOptions] = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_backoff: float = 2.0,
    ) -> None:
        self.host, self.port = split_addr(addr)
        self.addr = "%s:%d" % (("[%s]" % self.host) if ":" in self.host else self.host, self.port)
        self.token = token
        self.tls = tls
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.client_id = "py" + os.urandom(8).hex()
        self.meta: Dict[str, Any] = {}
        self.session = ""
        self.read_only = False
        self.regions: List[str] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray()
        self._closed = False
        self._last_io = 0.0
        self._dial(time.monotonic() + connect_timeout)

    # Connecting.

    def _dial(self, deadline: float) -> None:
        """Connects, reads the metadata line and authenticates."""
        t = max(0.001, min(self.connect_timeout, deadline - time.monotonic()))
        try:
            sock = socket.create_connection((self.host, self.port), timeout=t)
        except OSError as e:
            raise errors.ConnectError("connect to host %s: %s" % (self.addr, e)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for opt, v in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
                if hasattr(socket, opt):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), v)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap(sock, self.host)
                except errors.TLSError as e:
                    raise errors.TLSError("connect to host %s: %s" % (self.addr, e.message)) from None
                except (ssl.SSLError, OSError) as e:
                    raise errors.TLSError("connect to host %s: tls handshake: %s" % (self.addr, e)) from None
            self._sock = sock
            self._buf = bytearray()
            line = self._read_line()
            try:
                meta = proto.parse_meta(line)
            except errors.ProtocolError as e:
                if line.startswith(b"ERROR "):
                    raise errors.ConnectError("connect to host %s: host refused: %s" % (self.addr, line[6:].strip().decode("utf-8", "replace"))) from None
                raise errors.ProtocolError("connect to host %s: not a shmgr host? %s" % (self.addr, e.message), code="") from None
            if meta.get("auth") == "token":
                if not self.token:
                    raise errors.AuthError(
                        "connect to host %s: the host requires a token (pass token=, set SHMGR_TOKEN for the command line; the host prints it at start)" % self.addr,
                        code="unauthorized",
                    )
                self._send(proto.auth(self.token))
                rep = self._read_reply()
                if rep.kind == proto.ERROR:
                    err = rep.error()
                    err.message = "connect to host %s: %s" % (self.addr, err.message)
                    raise err
                if rep.kind != proto.OK:
                    raise errors.ProtocolError("AUTH: expected OK, got %s" % rep.kind, code="")
                self.read_only, self.regions = proto.parse_grant(rep.text or b"")
            # A plain socket times out through SO_RCVTIMEO/SO_SNDTIMEO, so
            # that a blocking recv needs no poll(2) before it; TLS needs
            # Python's own timeout.
            if self.tls is None and sys.platform.startswith("linux"):
                sock.settimeout(None)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self.timeout))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.timeout))
            else:
                sock.settimeout(self.timeout)
        except BaseException as e:
            self._sock = None
            sock.close()
            if isinstance(e, errors.Error):
                raise
            if isinstance(e, socket.timeout):
                raise errors.TimeoutError("connect to host %s: no metadata line within %gs (is it a shmgr host, and does it speak TLS?)" % (self.addr, t)) from None
            if isinstance(e, OSError):
                raise errors.ConnectError("connect to host %s: %s" % (self.addr, e)) from None
            raise
        self.meta = meta
        self.session = str(meta.get("session", ""))
        self._last_io = time.monotonic()

    def _redial(self, deadline: float) -> None:
        """Dials with exponential backoff and jitter until it connects or
        the deadline passes."""
        backoff = 0.02
        while True:
            try:
                self._dial(deadline)
                return
            except (errors.AuthError, errors.TLSError, errors.ProtocolError):
                raise
            except errors.Error as e:
                last = e
            pause = backoff / 2 + random.random() * backoff
            if time.monotonic() + pause >= deadline:
                raise errors.ConnectError("reconnect to host %s: gave up (last error: %s)" % (self.addr, last.message)) from None
            time.sleep(pause)
            backoff = min(2 * backoff, self.max_backoff)

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self._buf = bytearray()

    def _probe(self) -> None:
        """Drops the connection if the host has closed it: a peek that does
        not wait and consumes nothing (under TLS, at the raw socket)."""
        sock = self._sock
        assert sock is not None
        if self.tls is not None:
            # Python's own timeout would make the peek wait: ask first.
            if not select.select([sock], [], [], 0)[0]:
                return
        try:
            b = socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop()
            return
        if not b:
            self._drop()

    def close(self) -> None:
        """Closes the connection (sending QUIT first, when it is up)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._sock is not None:
                try:
                    self._sock.sendall(proto.quit())
                except OSError:
                    pass
            self._drop()

    @property
    def closed(self) -> bool:
        """Reports whether close was called."""
        return self._closed

    # Bytes.

    def _send(self, data: bytes) -> int:
        """Sends data; returns how much had gone out when it failed
        (raising the OSError with .sent set)."""
        assert self._sock is not None
        sent = 0
        view = memoryview(data)
        try:
            while sent < len(data):
                sent += self._sock.send(view[sent:])
        except OSError as e:
            e.sent = sent  # type: ignore[attr-defined]
            raise
        return sent

    def _fill(self, need: int = 0) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(max(65536, need - len(self._buf)))
        except BlockingIOError:  # SO_RCVTIMEO expired
            raise socket.timeout("timed out waiting for the host") from None
        if not chunk:
            raise ConnectionResetError("the host closed the connection")
        self._buf += chunk

    def _read_line(self) -> bytes:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if len(self._buf) > 65536:
                raise errors.ProtocolError("metadata line longer than 64 KiB", code="")
            self._fill()

    def _read_reply(self) -> proto.Reply:
        """Reads the next frame, EVENT and DELTA frames included."""
        while True:
            if self._buf:
                rep, n = proto.parse_reply(self._buf)
                if rep is not None:
                    del self._buf[:n]
                    return rep
                self._fill(n)
            else:
                self._fill()

    # Requests.

    def do(self, rt: str, encode: Callable[[], bytes], handle: Callable[[proto.Reply], T], timeout: Optional[float] = None) -> T:
        """Sends the request encode() makes and gives its reply to handle.
        A dropped connection is re-dialled and the request retried as rt
        (SAFE, KEYED, NEVER) allows; an ERROR reply raises its exception."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._lock:
            session: Optional[str] = None
            attempt = 0
            while True:
                attempt += 1
                if self._closed:
                    raise errors.ClosedError("the connection to %s is closed" % self.addr)
                if self._sock is not None and time.monotonic() - self._last_io > IDLE_PROBE:
                    self._probe()
                if self._sock is None:
                    try:
                        self._redial(deadline)
                    except errors.Error as e:
                        if session is not None and rt != SAFE:
                            raise errors.UnknownOutcomeError("%s (the request had been sent)" % e.message, code="") from None
                        raise
                    if session is not None and self.session != session and rt == KEYED:
                        raise errors.UnknownOutcomeError("the host restarted before it answered a write: it may or may not have been applied", code="")
                req = encode()
                sent = 0
                try:
                    self._send(req)
                    sent = 1
                    while True:
                        rep = self._read_reply()
                        if rep.kind != proto.EVENT and rep.kind != proto.DELTA:
                            break  # pushed frames belong to watchers
                except (OSError, errors.ProtocolError, errors.TooLargeError) as e:
                    sent = sent or getattr(e, "sent", 0)
                    self._drop()
                    if sent:
                        session = self.session
                    what = "%s: %s" % (self.addr, e)
                    if time.monotonic() >= deadline or attempt >= MAX_ATTEMPTS or (sent and rt == NEVER):
                        if session is not None and rt != SAFE:
                            raise errors.UnknownOutcomeError("host %s: the connection broke before the answer came" % what, code="") from None
                        if isinstance(e, socket.timeout):
                            raise errors.TimeoutError("host %s" % what) from None
                        if isinstance(e, errors.Error):
                            raise
                        raise errors.ConnectError("host %s" % what) from None
                    continue
                self._last_io = time.monotonic()
                if rep.kind == proto.ERROR:
                    raise rep.error()
                return handle(rep)

    def next_seq(self) -> int:
        """A fresh sequence number for a write (call under the request, so
        the host sees a client's writes in order)."""
        self._seq += 1
        return self._seq

    # Typed requests.

    def ping(self) -> None:
        """Checks that the host answers."""
        self.do(SAFE, proto.ping, _want(proto.PONG))

    @property
    def replicated(self) -> bool:
        """Whether the host is a cluster node (its metadata line lists the
        feature ``replicated``)."""
        return "replicated" in (self.meta.get("features") or [])

    def get(self, shm_id: bytes, offset: Optional[int] = None, length: Optional[int] = None, consistent: bool = False) -> Tuple[bytes, int]:
        """``GET``: the region's content (or the range offset, length) and
        version. With consistent, a linearizable read: a cluster host
        confirms with the leader first, and refuses with UnavailableError
        if it cannot reach it. The word is sent only to a cluster host: a
        single host's reads are linearizable as they are."""
        req = proto.get(shm_id, offset, length, consistent=consistent and self.replicated)
        return self.do(SAFE, lambda: req, _value)

    def set(self, shm_id: bytes, data: bytes, ifver: Optional[int] = None) -> int:
        """``SET`` with this connection's idempotency key; the new version."""
        cid = self.client_id.encode("ascii")
        seq: List[int] = []
        n = len(data)

        def encode() -> bytes:
            # Numbered on the first attempt, under the lock that sends it;
            # retries reuse the number.
            if not seq:
                seq.append(self.next_seq())
            return proto.set_header(shm_id, n, ifver=ifver, cid=cid, seq=seq[0]) + data + b"\n"

        return self.do(KEYED, encode, _version)

    def json(self, rt: str, req: bytes) -> Any:
        """A request answered by ``JSON``; the decoded value."""
        return self.do(rt, lambda: req, _json)


def _want(kind: str) -> Callable[[proto.Reply], None]:
    def check(rep: proto.Reply) -> None:
        if rep.kind != kind:
            raise errors.ProtocolError("expected %s reply, got %s" % (kind, rep.kind), code="")

    return check


def _value(rep: proto.Reply) -> Tuple[bytes, int]:
    if rep.kind != proto.VALUE:
        raise errors.ProtocolError("expected VALUE reply, got %s" % rep.kind, code="")
    return rep.payload, rep.version


def _version(rep: proto.Reply) -> int:
    if rep.kind != proto.OK or not rep.text or not rep.text.isdigit():
        raise errors.ProtocolError("SET reply without a version: %r" % rep, code="")
    return int(rep.text)


def _json(rep: proto.Reply) -> Any:
    if rep.kind != proto.JSON:
        raise errors.ProtocolError("expected JSON reply, got %s" % rep.kind, code="")
    return proto.parse_json(rep.payload)
