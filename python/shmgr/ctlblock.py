"""Where a local reader finds its words in a region's control block.

The control block is the second shared-memory object of a region
(``ctl_name`` in the metadata line; byte map in docs/ARCHITECTURE.md).
A reader needs only four things from it: the magic and format version (to
know the map below applies), the nonce (to know the object is the region
the host described), the seq word (the seqlock: version = seq/2, odd while
a write is in progress) and the retired flag (set by the host before it
deletes the region). This module is the only place that knows their
offsets: a new control block format is one new entry in :data:`FORMATS`.

IMPORTANT: a format this table does not know is refused, and the client
reads over TCP instead (Region.why_not_local says so). Guessing offsets
in someone else's layout could accept a torn copy.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional

#: The control block's first 7 bytes in every format; the 8th is the
#: format's digit in ASCII (``SHMGRCB1``).
MAGIC_PREFIX = b"SHMGRCB"
#: Offset and size of the format version (uint32 little-endian): fixed
#: across formats, so a reader can tell which map applies.
FORMAT_OFFSET = 8
#: How many bytes of the control block a reader maps: its header page.
HEADER_SIZE = 4096


class Offsets(NamedTuple):
    """Byte offsets of the words a reader uses, for one format."""

    #: uint32 little-endian: 1 utf8, 2 raw.
    layout: int
    #: uint64 little-endian: size of the data object.
    size: int
    #: uint64 little-endian: the region's nonce (the metadata line's, in hex).
    nonce: int
    #: uint64, 8-aligned: the seqlock word.
    seq: int
    #: uint32, 4-aligned: non-zero once the host is deleting the region.
    retired: int


#: Known control block formats (the uint32 at FORMAT_OFFSET).
FORMATS: Dict[int, Offsets] = {
    1: Offsets(layout=12, size=16, nonce=24, seq=64, retired=264),
    # Format 2 (owner slots, lease word, boot id) moved the lock's words,
    # none of the reader's.
    2: Offsets(layout=12, size=16, nonce=24, seq=64, retired=264),
}

#: The layout numbers stored at Offsets.layout.
LAYOUTS = {1: "utf8", 2: "raw"}


class Header(NamedTuple):
    """What a reader checks in a control block before it trusts it."""

    format: int
    offsets: Offsets
    layout: str
    size: int
    nonce: str


def parse_header(b: bytes) -> Header:
    """Reads the fixed header of a control block (its first HEADER_SIZE
    bytes). Raises ValueError saying why the block cannot be used."""
    if len(b) < FORMAT_OFFSET + 4 or b[:7] != MAGIC_PREFIX:
        raise ValueError("no shmgr control block (magic missing)")
    fmt = int.from_bytes(b[FORMAT_OFFSET:FORMAT_OFFSET + 4], "little")
    off: Optional[Offsets] = FORMATS.get(fmt)
    if off is None:
        known = ", ".join(str(k) for k in sorted(FORMATS))
        raise ValueError("control block format %d is not one this client knows (%s): upgrade the Python client" % (fmt, known))
    if b[7:8] != str(fmt).encode("ascii")[-1:]:
        raise ValueError("control block magic %r does not match its format %d" % (b[:8], fmt))
    if len(b) < HEADER_SIZE:
        raise ValueError("control block is %d bytes, shorter than its header (%d)" % (len(b), HEADER_SIZE))
    layout = LAYOUTS.get(int.from_bytes(b[off.layout:off.layout + 4], "little"), "")
    if not layout:
        raise ValueError("control block names an unknown layout")
    size = int.from_bytes(b[off.size:off.size + 8], "little")
    nonce = "%016x" % int.from_bytes(b[off.nonce:off.nonce + 8], "little")
    return Header(fmt, off, layout, size, nonce)
