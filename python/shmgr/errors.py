"""Exceptions of the shmgr client, one class per kind of failure.

Every exception the package raises is a :class:`Error`. The host reports
failures as ``ERROR <code> <message>`` with a stable code word
(docs/PROTOCOL.md, "Errors"); :func:`from_code` maps each word to its
class through one table, so a caller catches a kind, never matches a
message::

    try:
        r.write_if(b"next", v)
    except shmgr.ConflictError as e:
        print("someone wrote first; the region is at", e.current)

Failures of the client itself (the connection, TLS, a local mapping) have
classes of their own below the table.
"""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Type


class Error(Exception):
    """Base class of every shmgr error.

    ``code`` is the protocol's error word (``"not_found"``...) when the
    host sent it, else ``""``; ``message`` is the text for people.
    """

    #: The protocol's code word of this class ("" for client-side errors).
    code_word = ""

    def __init__(self, message: str = "", code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.code_word if code is None else code

    def __str__(self) -> str:
        if self.code:
            return "%s: %s" % (self.code, self.message) if self.message else self.code
        return self.message


class ProtocolError(Error):
    """The host refused a request as malformed (``bad_request``,
    ``unknown_command``), or sent something that is not the shmgr
    protocol."""

    code_word = "bad_request"


class TooLargeError(Error, ValueError):
    """The content does not fit the region, or a line or payload is over
    the host's limit (``too_large``, ``line_too_long``)."""

    code_word = "too_large"


class NotFoundError(Error, LookupError):
    """No region has this shm_id (``not_found``)."""

    code_word = "not_found"


class ExistsError(Error):
    """A region with this shm_id exists already (``exists``)."""

    code_word = "exists"


class InvalidUTF8Error(Error, ValueError):
    """The content for a utf8 region is not valid UTF-8 (``invalid_utf8``)."""

    code_word = "invalid_utf8"


class LockTimeoutError(Error, builtins.TimeoutError):
    """The region's lock was not taken in time; the message names the
    holder (``lock_timeout``)."""

    code_word = "lock_timeout"


class ConflictError(Error):
    """A conditional write found another version (``conflict``).

    ``current`` is the region's version, so the caller can retry from it
    without asking again; ``expected`` is the version the write asked for.
    """

    code_word = "conflict"

    def __init__(self, message: str = "", code: Optional[str] = None, current: int = 0, expected: int = 0) -> None:
        super().__init__(message, code)
        self.current = current
        self.expected = expected


class OutOfRangeError(Error, IndexError):
    """An offset or length lies outside the region, or a size is out of
    bounds (``out_of_range``)."""

    code_word = "out_of_range"


class BadIDError(Error, ValueError):
    """A shm_id does not follow ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``
    (``bad_id``)."""

    code_word = "bad_id"


class HostError(Error):
    """The host failed in a way the client cannot fix (``internal``, or a
    code this client does not know)."""

    code_word = "internal"


class AuthError(Error):
    """The host requires a token and none, or a wrong one, was given
    (``unauthorized``)."""

    code_word = "unauthorized"


class ForbiddenError(Error):
    """The token (or the host) does not allow this operation
    (``forbidden``)."""

    code_word = "forbidden"


class LimitError(Error):
    """A host limit refused the request: regions, connections, watches
    (``limit``)."""

    code_word = "limit"


class UnavailableError(Error):
    """The host is shutting down or cannot serve now (``unavailable``)."""

    code_word = "unavailable"


class UnknownOutcomeError(Error):
    """A write (or CREATE, DELETE) may or may not have been applied: its
    answer was lost and a retry could not settle it (``unknown_outcome``, or
    the host restarted after a crash before answering). Read the region to
    find out."""

    code_word = "unknown_outcome"


class FencedError(Error):
    """The lock lease a write relied on has ended; nothing was written
    (``fenced``)."""

    code_word = "fenced"


# Client-side failures: no code word crosses the wire for these.


class ConnectError(Error, builtins.ConnectionError):
    """The host could not be reached, or the connection broke and retries
    ran out."""


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 (shmgr.TimeoutError is meant)
    """An operation did not finish within its time limit."""


class TLSError(ConnectError):
    """The TLS handshake failed, or the host's certificate is not the
    pinned one."""


class ClosedError(Error):
    """The region or client has been closed."""


class NotLocalError(Error):
    """``mode="local"`` was asked for but the region cannot be mapped from
    this process; the message says why."""


#: The protocol's error words and their classes. The wire list is
#: append-only (docs/PROTOCOL.md); a word not in this table is a
#: :class:`HostError` with the whole text as its message.
CODES: Dict[str, Type[Error]] = {
    "bad_request": ProtocolError,
    "unknown_command": ProtocolError,
    "line_too_long": TooLargeError,
    "too_large": TooLargeError,
    "not_found": NotFoundError,
    "exists": ExistsError,
    "invalid_utf8": InvalidUTF8Error,
    "lock_timeout": LockTimeoutError,
    "conflict": ConflictError,
    "out_of_range": OutOfRangeError,
    "bad_id": BadIDError,
    "internal": HostError,
    "unauthorized": AuthError,
    "forbidden": ForbiddenError,
    "limit": LimitError,
    "unavailable": UnavailableError,
    "unknown_outcome": UnknownOutcomeError,
    "fenced": FencedError,
}


def from_code(code: str, message: str) -> Error:
    """Returns the exception for an ``ERROR <code> <message>`` reply.

    A ``conflict`` reply carries its versions as fields before the message
    (``"7 expected=5 version conflict"``): they become
    :attr:`ConflictError.current` and :attr:`ConflictError.expected`. A
    host older than the ``expected=`` field sends only the current version
    and says ``"expected version 5"`` in the message, which is read then.
    """
    cls = CODES.get(code)
    if cls is None:
        return HostError(message, code="unknown")
    if cls is ConflictError:
        return _conflict(code, message)
    return cls(message, code)


def _is_number(word: str) -> bool:
    return word.isdigit() and word.isascii()


def _conflict(code: str, message: str) -> ConflictError:
    current, expected = 0, 0
    head, _, rest = message.partition(" ")
    if not _is_number(head):
        return ConflictError(message, code)
    current, message = int(head), rest
    head, _, rest = message.partition(" ")
    if head.startswith("expected=") and _is_number(head[len("expected="):]):
        return ConflictError(rest, code, current=current, expected=int(head[len("expected="):]))
    key = "expected version "
    i = message.find(key)
    if i >= 0:
        digits = ""
        for ch in message[i + len(key):]:
            if not ch.isdigit():
                break
            digits += ch
        if digits:
            expected = int(digits)
    return ConflictError(message, code, current=current, expected=expected)
