"""The shmgr wire protocol, ``shmgr/1`` (docs/PROTOCOL.md): request
encoders, the reply parser and the metadata line. No sockets here, so
every function can be tested on bytes alone; the Go tests' golden files
(internal/proto/testdata) pin the same bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple, Union

from . import errors

#: Most bytes of a reply line this client accepts (a READ reply carries
#: the content on its line: 16 times the host's default line limit, as the
#: Go client).
MAX_LINE = 4096 * 16
#: Largest payload of one reply: 1 GiB + 64 KiB, the host's default limit.
MAX_PAYLOAD = (1 << 30) + (64 << 10)
#: Largest unsigned protocol number (versions, sequence numbers, tokens).
MAX_UINT64 = (1 << 64) - 1
#: Largest signed protocol number (lengths, offsets, sizes, durations).
MAX_INT64 = (1 << 63) - 1

_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

Bytes = Union[bytes, bytearray, memoryview]


def valid_id(shm_id: Union[str, bytes]) -> bool:
    """Reports whether shm_id follows ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``."""
    b = shm_id.encode("ascii", "replace") if isinstance(shm_id, str) else shm_id
    return _ID.fullmatch(b) is not None


def check_id(shm_id: str) -> bytes:
    """Returns shm_id as bytes, or raises :class:`errors.BadIDError`."""
    if not isinstance(shm_id, str) or not valid_id(shm_id):
        raise errors.BadIDError(
            "%r: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit" % (shm_id,),
            code="",
        )
    return shm_id.encode("ascii")


def _num(n: int, limit: int, what: str) -> bytes:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n > limit:
        raise ValueError("%s %r: want an integer from 0 to %d" % (what, n, limit))
    return b"%d" % n


def _token(tok: Union[str, bytes], what: str) -> bytes:
    b = tok.encode("utf-8") if isinstance(tok, str) else bytes(tok)
    if not b or any(c < 0x21 or c > 0x7E for c in b):
        raise ValueError("%s: printable ASCII without spaces, not empty" % what)
    return b


# Request encoders. Each returns the bytes of one request, exactly as the
# Go encoders write them (internal/proto/encode.go).


def read(consistent: bool = False) -> bytes:
    """``READ [consistent]``: the current region as text (the original
    command); consistent: see get."""
    return b"READ consistent\n" if consistent else b"READ\n"


def write(payload: Bytes) -> bytes:
    """``WRITE <len>`` + payload (the original command)."""
    return b"WRITE %d\n%s\n" % (len(payload), bytes(payload))


def ping() -> bytes:
    """``PING``."""
    return b"PING\n"


def quit() -> bytes:  # noqa: A001 (the command's name)
    """``QUIT``."""
    return b"QUIT\n"


def use(shm_id: bytes) -> bytes:
    """``USE <id>``."""
    return b"USE %s\n" % shm_id


def get(shm_id: bytes, offset: Optional[int] = None, length: Optional[int] = None, consistent: bool = False) -> bytes:
    """``GET <id> [<offset> <length>] [consistent]``. With consistent a
    cluster host confirms with the leader before it reads (linearizable);
    a single host reads as always."""
    flag = b" consistent" if consistent else b""
    if offset is None and length is None:
        return b"GET %s%s\n" % (shm_id, flag)
    if offset is None or length is None:
        raise ValueError("GET takes both an offset and a length, or neither")
    return b"GET %s %s %s%s\n" % (shm_id, _num(offset, MAX_INT64, "offset"), _num(length, MAX_INT64, "length"), flag)


def set_header(
    shm_id: bytes,
    length: int,
    at: Optional[int] = None,
    ifver: Optional[int] = None,
    cid: Optional[bytes] = None,
    seq: Optional[int] = None,
    fence: Optional[int] = None,
) -> bytes:
    """The command line of ``SET <id> <len> [at=] [ifver=] [cid= seq=]
    [fence=]``; the payload and a newline follow it."""
    parts = [b"SET", shm_id, b"%d" % length]
    if at is not None:
        parts.append(b"at=" + _num(at, MAX_INT64, "offset"))
    if ifver is not None:
        parts.append(b"ifver=" + _num(ifver, MAX_UINT64, "version"))
    if (cid is None) != (seq is None):
        raise ValueError("cid and seq go together")
    if cid is not None and seq is not None:
        parts.append(b"cid=" + cid)
        parts.append(b"seq=" + _num(seq, MAX_UINT64, "seq"))
    if fence is not None:
        parts.append(b"fence=" + _num(fence, MAX_UINT64, "fence"))
    return b" ".join(parts) + b"\n"


def set_(shm_id: bytes, payload: Bytes, **options: Any) -> bytes:
    """``SET`` with its payload; options as :func:`set_header`."""
    return set_header(shm_id, len(payload), **options) + bytes(payload) + b"\n"


def info(shm_id: Optional[bytes] = None) -> bytes:
    """``INFO [<id>]``."""
    return b"INFO\n" if shm_id is None else b"INFO %s\n" % shm_id


def list_() -> bytes:
    """``LIST``."""
    return b"LIST\n"


def create(shm_id: bytes, size: Optional[int] = None, layout: Optional[str] = None, durable: bool = False, max_write: Optional[int] = None) -> bytes:
    """``CREATE <id> [size=] [layout=] [durable=1] [max_write=]``."""
    parts = [b"CREATE", shm_id]
    if size:
        parts.append(b"size=" + _num(size, MAX_INT64, "size"))
    if layout:
        if layout not in ("utf8", "raw"):
            raise ValueError("layout %r: use utf8 or raw" % (layout,))
        parts.append(b"layout=" + layout.encode("ascii"))
    if durable:
        parts.append(b"durable=1")
    if max_write is not None:
        if isinstance(max_write, bool) or not isinstance(max_write, int) or max_write < 1:
            raise ValueError("max_write %r: want a positive integer (leave it out for the whole region)" % (max_write,))
        parts.append(b"max_write=" + _num(max_write, MAX_INT64, "max_write"))
    return b" ".join(parts) + b"\n"


def delete(shm_id: bytes) -> bytes:
    """``DELETE <id>``."""
    return b"DELETE %s\n" % shm_id


def watch(shm_id: bytes, from_version: Optional[int] = None, delta: bool = False) -> bytes:
    """``WATCH <id> [from=] [delta=1]``."""
    parts = [b"WATCH", shm_id]
    if from_version is not None:
        parts.append(b"from=" + _num(from_version, MAX_UINT64, "version"))
    if delta:
        parts.append(b"delta=1")
    return b" ".join(parts) + b"\n"


def unwatch(shm_id: bytes) -> bytes:
    """``UNWATCH <id>``."""
    return b"UNWATCH %s\n" % shm_id


def auth(token: Union[str, bytes]) -> bytes:
    """``AUTH <token>``."""
    return b"AUTH %s\n" % _token(token, "token")


def lock(shm_id: bytes, lease: Optional[int] = None, wait: Optional[int] = None) -> bytes:
    """``LOCK <id> [lease=<ms>] [wait=<ms>]``."""
    parts = [b"LOCK", shm_id]
    if lease is not None:
        parts.append(b"lease=" + _num(lease, MAX_INT64, "lease"))
    if wait is not None:
        parts.append(b"wait=" + _num(wait, MAX_INT64, "wait"))
    return b" ".join(parts) + b"\n"


def renew(shm_id: bytes, token: int, lease: Optional[int] = None) -> bytes:
    """``RENEW <id> <token> [lease=<ms>]`` (a lease <= 0 is left out)."""
    line = b"RENEW %s %s" % (shm_id, _num(token, MAX_UINT64, "token"))
    if lease is not None and lease > 0:
        line += b" lease=" + _num(lease, MAX_INT64, "lease")
    return line + b"\n"


def unlock(shm_id: bytes, token: int) -> bytes:
    """``UNLOCK <id> <token>``."""
    return b"UNLOCK %s %s\n" % (shm_id, _num(token, MAX_UINT64, "token"))


# Replies.

OK, VALUE, JSON, EVENT, DELTA, PONG, ERROR = "OK", "VALUE", "JSON", "EVENT", "DELTA", "PONG", "ERROR"


class Reply:
    """One reply frame. ``kind`` is one of OK, VALUE, JSON, EVENT, DELTA,
    PONG, ERROR; the other fields are set as the kind has them: ``text``
    (OK with text, and ERROR's message; None for a bare OK), ``code``
    (ERROR: the code word, "unknown" for a word this client does not know),
    ``version`` (VALUE, EVENT, DELTA), ``shm_id`` (EVENT, DELTA), ``size``
    and ``offset`` (DELTA), ``payload`` (VALUE, JSON, EVENT, DELTA)."""

    __slots__ = ("kind", "text", "code", "version", "shm_id", "size", "offset", "payload")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.text: Optional[bytes] = None
        self.code = ""
        self.version = 0
        self.shm_id = b""
        self.size = 0
        self.offset = 0
        self.payload = b""

    def __repr__(self) -> str:
        fields = ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__[1:] if getattr(self, k) not in (None, "", 0, b""))
        return "Reply(%s%s)" % (self.kind, ", " + fields if fields else "")

    def error(self) -> errors.Error:
        """The exception an ERROR reply stands for."""
        return errors.from_code(self.code, (self.text or b"").decode("utf-8", "replace"))


def _bad(msg: str, buf: Bytes, lo: int, hi: int) -> errors.ProtocolError:
    snippet = bytes(buf[lo:min(hi, lo + 32)])
    return errors.ProtocolError("bad reply from host: %s at offset %d: %r" % (msg, lo, snippet), code="")


def _uint(tok: bytes, limit: int) -> Optional[int]:
    if not tok or not tok.isdigit():
        return None
    v = int(tok)
    return v if v <= limit else None


def parse_reply(buf: Union[bytes, bytearray], start: int = 0, max_line: int = MAX_LINE, max_payload: int = MAX_PAYLOAD) -> Tuple[Optional[Reply], int]:
    """Parses the reply at buf[start:].

    Returns ``(reply, n)`` with n the bytes it took, or ``(None, need)``
    when the reply is incomplete: need is the length buf[start:] must reach
    (0 when unknown: read more). Anything that is not a reply raises
    :class:`errors.ProtocolError` (or TooLargeError for a line or payload
    over the limits): the connection is broken and must be dropped, as the
    Go client's ReplyParser says.
    """
    end_line = min(len(buf), start + max_line)
    i = buf.find(b"\n", start, end_line)
    if i < 0:
        if len(buf) - start < max_line:
            return None, 0
        raise errors.TooLargeError("reply line longer than %d bytes" % max_line, code="")
    line = bytes(buf[start:i])
    sp = line.find(b" ")
    verb = line if sp < 0 else line[:sp]
    if verb == b"OK":
        r = Reply(OK)
        if sp >= 0:
            r.text = line[sp + 1:]
        return r, i + 1 - start
    if verb == b"PONG":
        if sp >= 0:
            raise _bad("malformed reply", buf, start, i)
        return Reply(PONG), i + 1 - start
    if verb == b"ERROR":
        r = Reply(ERROR)
        r.code = "unknown"
        r.text = b""
        if sp >= 0:
            rest = line[sp + 1:]
            word, sp2, msg = rest.partition(b" ")
            w = word.decode("ascii", "replace")
            if w in errors.CODES:
                r.code, r.text = w, msg
            else:
                r.text = rest
        return r, i + 1 - start
    toks = line.split()
    nt = len(toks)
    if verb == b"VALUE":
        if nt != 3:
            raise _bad("malformed reply", buf, start, i)
        r = Reply(VALUE)
        v = _uint(toks[1], MAX_UINT64)
        if v is None:
            raise _bad("malformed version", buf, start, i)
        r.version = v
    elif verb == b"JSON":
        if nt != 2:
            raise _bad("malformed reply", buf, start, i)
        r = Reply(JSON)
    elif verb == b"EVENT" or verb == b"DELTA":
        delta = verb == b"DELTA"
        if nt != (6 if delta else 4):
            raise _bad("malformed reply", buf, start, i)
        r = Reply(DELTA if delta else EVENT)
        if not valid_id(toks[1]):
            raise _bad("invalid region id", buf, start, i)
        r.shm_id = toks[1]
        v = _uint(toks[2], MAX_UINT64)
        if v is None:
            raise _bad("malformed version", buf, start, i)
        r.version = v
        if delta:
            size = _uint(toks[3], MAX_INT64)
            off = _uint(toks[4], MAX_INT64)
            if size is None:
                raise _bad("malformed size", buf, start, i)
            if off is None or off > size:
                raise _bad("malformed offset", buf, start, i)
            r.size, r.offset = size, off
    else:
        raise _bad("unknown reply", buf, start, i)
    plen = _uint(toks[-1], MAX_INT64)
    if plen is None:
        raise _bad("malformed length", buf, start, i)
    if plen > max_payload:
        raise errors.TooLargeError("reply payload of %d bytes is over the limit of %d" % (plen, max_payload), code="")
    if r.kind == DELTA and plen > r.size - r.offset:
        raise _bad("delta past its size", buf, start, i)
    p0 = i + 1
    p1 = p0 + plen
    if len(buf) < p1 + 1:
        return None, p1 + 1 - start
    if buf[p1] != 0x0A:
        raise _bad("payload not followed by newline", buf, p1, p1 + 1)
    r.payload = bytes(buf[p0:p1])
    return r, p1 + 1 - start


# The metadata line.

_LAYOUT_OFFSETS = {"utf8": (0, 1, 5), "raw": (-1, -1, 0)}


def layout_offsets(layout: str, size: int) -> Tuple[int, int, int, int]:
    """(lock_offset, len_offset, data_offset, max_data_size) of a layout."""
    lock, length, data = _LAYOUT_OFFSETS[layout]
    return lock, length, data, size - data


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_meta(m: Any, need_proto: bool = True) -> Dict[str, Any]:
    """Checks a decoded metadata object as the Go client's ParseMeta does,
    and returns it. INFO <id> and LIST objects carry no ``proto``: pass
    need_proto=False for them. Raises :class:`errors.ProtocolError`."""

    def bad(msg: str) -> errors.ProtocolError:
        return errors.ProtocolError("bad metadata line: " + msg, code="")

    if not isinstance(m, dict):
        raise bad("not a JSON object")
    proto = m.get("proto")
    if (need_proto or proto is not None) and (not isinstance(proto, str) or not proto.startswith("shmgr/")):
        raise bad("proto %r is not shmgr/<version>" % (proto,))
    sid = m.get("shm_id")
    if not isinstance(sid, str) or not valid_id(sid):
        raise bad("invalid shm_id %r" % (sid,))
    size_v = m.get("size")
    if not isinstance(size_v, int) or isinstance(size_v, bool) or size_v <= 0:
        raise bad("size %r is not positive" % (size_v,))
    size = int(size_v)
    layout = str(m.get("layout"))
    if layout not in _LAYOUT_OFFSETS:
        raise bad("unknown layout %r" % (layout,))
    if layout == "utf8" and size < 5:
        raise bad("size %d too small for the utf8 layout" % size)
    want = layout_offsets(layout, size)
    got = tuple(m.get(k, 0) for k in ("lock_offset", "len_offset", "data_offset", "max_data_size"))
    if not all(_is_int(x) for x in got) or got != want:
        raise bad("offsets %r do not match layout %s of size %d (want %r)" % (got, layout, size, want))
    for k in ("version",):
        if k in m and (not _is_int(m[k]) or m[k] < 0):
            raise bad("%s %r is not a version" % (k, m[k]))
    nonce = m.get("nonce", "")
    if nonce and not (isinstance(nonce, str) and len(nonce) == 16 and all(c in "0123456789abcdefABCDEF" for c in nonce)):
        raise bad("nonce %r is not 16 hex digits" % (nonce,))
    return m


def parse_meta(line: Bytes) -> Dict[str, Any]:
    """Parses and checks the metadata line the host sends first (see
    :func:`check_meta`); unknown fields are kept and ignored."""
    text = bytes(line).strip(b" \t\r\n")
    if not text.startswith(b"{"):
        raise errors.ProtocolError("bad metadata line: not a JSON object", code="")
    try:
        m = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.ProtocolError("bad metadata line: %s" % e, code="") from None
    return check_meta(m)


def parse_json(payload: bytes) -> Any:
    """Decodes a JSON reply's payload."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.ProtocolError("bad JSON reply: %s" % e, code="") from None


def parse_grant(text: bytes) -> Tuple[bool, List[str]]:
    """Reads an AUTH reply's text: ``rw`` or ``ro``, then optionally
    `` regions=a,b``. Returns (read_only, regions); no regions means all."""
    f = text.decode("ascii", "replace").split()
    read_only = bool(f) and f[0] == "ro"
    regions: List[str] = []
    for x in f[1:]:
        if x.startswith("regions=") and len(x) > len("regions="):
            regions = x[len("regions="):].split(",")
    return read_only, regions
