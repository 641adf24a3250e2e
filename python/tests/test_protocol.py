"""The documented protocol, byte for byte, from the Go tests' own golden
files: internal/proto/testdata/{requests,replies}.golden (what the Go
encoders write) and cmd/shmgr/testdata/protocol.golden (a transcript of a
fresh host), read in place, never copied."""

from __future__ import annotations

import json
import os
import re
import socket
import unittest
from typing import Any, Dict, List, Tuple

from support import REPO, CutProxy, HostCase, wait_for

import shmgr
from shmgr import errors, proto

PROTO_TESTDATA = os.path.join(REPO, "internal", "proto", "testdata")
TRANSCRIPT = os.path.join(REPO, "cmd", "shmgr", "testdata", "protocol.golden")
U64 = (1 << 64) - 1


def golden(name: str) -> bytes:
    with open(os.path.join(PROTO_TESTDATA, name), "rb") as f:
        return f.read()


# The requests of internal/proto/encode_test.go's requestRoundTrips, in
# its order, made by the Python encoders.
REQUESTS: List[Tuple[str, bytes]] = [
    ("read", proto.read()),
    ("write", proto.write(b"hello\nworld")),
    ("write/empty", proto.write(b"")),
    ("ping", proto.ping()),
    ("use", proto.use(b"r1")),
    ("get", proto.get(b"r1")),
    ("get/range", proto.get(b"r1", 5, 10)),
    ("get/with-none", proto.get(b"r1")),
    ("get/consistent", proto.get(b"r1", consistent=True)),
    ("get/range-consistent", proto.get(b"r1", 5, 10, consistent=True)),
    ("get/consistent-region-named-consistent", proto.get(b"consistent", consistent=True)),
    ("read/consistent", proto.read(consistent=True)),
    ("set", proto.set_(b"r1", b"abc")),
    ("set/all", proto.set_(b"r1", b"\x00\xff", at=3, ifver=8, cid=b"client-7", seq=41)),
    ("set/all-fence", proto.set_(b"r1", b"ab", at=3, ifver=8, cid=b"client-7", seq=41, fence=U64)),
    ("set/fence", proto.set_(b"r1", b"abc", fence=17)),
    ("set/fence-zero", proto.set_(b"r1", b"x", fence=0)),
    ("set/at-zero", proto.set_(b"r1", b"x", at=0)),
    ("info", proto.info()),
    ("info/id", proto.info(b"r1")),
    ("list", proto.list_()),
    ("create", proto.create(b"r2")),
    ("create/all", proto.create(b"r2", size=1 << 20, layout="raw", durable=True)),
    ("create/max-write", proto.create(b"r2", size=1 << 31, layout="raw", max_write=1 << 20)),
    ("delete", proto.delete(b"r2")),
    ("watch", proto.watch(b"r1")),
    ("watch/from", proto.watch(b"r1", 12)),
    ("watch/from-delta", proto.watch(b"r1", 12, delta=True)),
    ("unwatch", proto.unwatch(b"r1")),
    ("auth", proto.auth("tok-123")),
    ("lock", proto.lock(b"r1")),
    ("lock/lease", proto.lock(b"r1", lease=30000)),
    ("lock/wait-zero", proto.lock(b"r1", wait=0)),
    ("lock/all", proto.lock(b"r1", lease=10000, wait=5000)),
    ("renew", proto.renew(b"r1", 17)),
    ("renew/negative-lease", proto.renew(b"r1", 17, -1)),
    ("renew/lease", proto.renew(b"r1", U64, 15000)),
    ("unlock", proto.unlock(b"r1", 17)),
    ("unlock/token-zero", proto.unlock(b"r1", 0)),
    # Cluster administration is the Go CLI's (shmgr cluster ...); the
    # Python client has no encoder for it, so its lines stand as bytes.
    ("cluster/status", b"CLUSTER STATUS\n"),
    ("cluster/add", b"CLUSTER ADD d 127.0.0.1:9420\n"),
    ("cluster/add-fingerprint", b"CLUSTER ADD d [::1]:9420 " + b":".join([b"AB"] * 32) + b"\n"),
    ("cluster/remove", b"CLUSTER REMOVE c\n"),
    ("cluster/leader", b"CLUSTER LEADER node-2\n"),
    ("quit", proto.quit()),
]

# What each frame of replies.golden must parse to (replyRoundTrips):
# (kind, fields).
REPLIES: List[Tuple[str, Dict[str, Any]]] = [
    ("OK", {"text": None}),
    ("OK", {"text": b"hello world"}),
    ("OK", {"text": b""}),
    ("OK", {"text": b"99"}),
    ("OK", {"text": b"18446744073709551615"}),
    ("VALUE", {"version": 3, "payload": b"a\nb"}),
    ("VALUE", {"version": 4, "payload": b"xy"}),
    ("JSON", {"payload": b'{"a":1}'}),
    ("EVENT", {"shm_id": b"r1", "version": 5, "payload": b"new"}),
    ("DELTA", {"shm_id": b"r1", "version": 6, "size": 4096, "offset": 10, "payload": b"new"}),
    ("PONG", {}),
    ("ERROR", {"code": "not_found", "text": b"no region r9"}),
    ("ERROR", {"code": "internal", "text": b"two  lines "}),
    ("ERROR", {"code": "conflict", "text": b""}),
    ("ERROR", {"code": "fenced", "text": b"lease of r1 expired"}),
    ("ERROR", {"code": "unknown", "text": b"Data too long"}),
    ("ERROR", {"code": "unknown", "text": b"x"}),
]


def parse_all(buf: bytes) -> List[proto.Reply]:
    out, pos = [], 0
    while pos < len(buf):
        rep, n = proto.parse_reply(buf, pos)
        if rep is None:
            raise AssertionError("incomplete reply at offset %d: %r" % (pos, buf[pos:pos + 40]))
        out.append(rep)
        pos += n
    return out


class TestGoldenFiles(unittest.TestCase):
    def test_requests_golden(self) -> None:
        want = golden("requests.golden")
        got = b"".join(enc for _, enc in REQUESTS)
        if got != want:
            # Name the first request that differs.
            pos = 0
            for name, enc in REQUESTS:
                self.assertEqual(enc, want[pos:pos + len(enc)], "request %s differs from requests.golden at offset %d" % (name, pos))
                pos += len(enc)
        self.assertEqual(got, want)

    def test_replies_golden(self) -> None:
        reps = parse_all(golden("replies.golden"))
        self.assertEqual(len(reps), len(REPLIES))
        for i, (rep, (kind, fields)) in enumerate(zip(reps, REPLIES)):
            self.assertEqual(rep.kind, kind, "frame %d: %r" % (i, rep))
            for k, v in fields.items():
                self.assertEqual(getattr(rep, k), v, "frame %d (%s) field %s" % (i, kind, k))

    def test_replies_split_everywhere(self) -> None:
        # Every proper prefix of a frame is incomplete, never an error, and
        # the whole frame parses to the same reply.
        data = golden("replies.golden")
        pos = 0
        while pos < len(data):
            rep, n = proto.parse_reply(data, pos)
            assert rep is not None
            frame = data[pos:pos + n]
            for k in range(len(frame)):
                r2, _ = proto.parse_reply(frame[:k])
                self.assertIsNone(r2, "prefix %r of %r parsed" % (frame[:k], frame))
            pos += n

    def test_error_kinds(self) -> None:
        cases = [
            (b"ERROR not_found no region r9\n", shmgr.NotFoundError),
            (b"ERROR too_large content too large\n", shmgr.TooLargeError),
            (b"ERROR line_too_long x\n", shmgr.TooLargeError),
            (b"ERROR lock_timeout held by pid 7\n", shmgr.LockTimeoutError),
            (b"ERROR unauthorized AUTH first\n", shmgr.AuthError),
            (b"ERROR unknown_outcome seq too old\n", shmgr.UnknownOutcomeError),
            (b"ERROR fenced lease over\n", shmgr.FencedError),
            (b"ERROR exists x\n", shmgr.ExistsError),
            (b"ERROR conflict 1 x\n", shmgr.ConflictError),
            (b"ERROR invalid_utf8 x\n", shmgr.InvalidUTF8Error),
            (b"ERROR out_of_range x\n", shmgr.OutOfRangeError),
            (b"ERROR bad_id x\n", shmgr.BadIDError),
            (b"ERROR forbidden x\n", shmgr.ForbiddenError),
            (b"ERROR limit x\n", shmgr.LimitError),
            (b"ERROR unavailable x\n", shmgr.UnavailableError),
            (b"ERROR bad_request x\n", shmgr.ProtocolError),
            (b"ERROR unknown_command x\n", shmgr.ProtocolError),
            (b"ERROR internal x\n", shmgr.HostError),
            (b"ERROR Data too long\n", shmgr.HostError),
        ]
        self.assertEqual(sorted(set(errors.CODES)), sorted({c.split(b" ")[1].decode() for c, _ in cases} - {"Data"}))
        for line, cls in cases:
            rep, _ = proto.parse_reply(line)
            assert rep is not None
            err = rep.error()
            self.assertIsInstance(err, cls, line)
            self.assertIsInstance(err, shmgr.Error, line)
        rep, _ = proto.parse_reply(b"ERROR conflict 7 version conflict: expected version 5, region is at version 7\n")
        assert rep is not None
        err = rep.error()
        assert isinstance(err, shmgr.ConflictError)
        self.assertEqual((err.current, err.expected), (7, 5))

    def test_conflict_fields(self) -> None:
        # A host sends "<current> expected=<expected> <message>"; an older
        # one sent the current version and "expected version N" in the
        # message. Both give ConflictError.current and .expected.
        cases = [
            (b"ERROR conflict 7 expected=5 version conflict\n", 7, 5, "version conflict"),
            (b"ERROR conflict 9 expected=4 version conflict: expected version 3\n", 9, 4, "version conflict: expected version 3"),
            (b"ERROR conflict 12 expected=0\n", 12, 0, ""),
            (b"ERROR conflict 7 version conflict: expected version 5, region is at version 7\n", 7, 5, "version conflict: expected version 5, region is at version 7"),
            (b"ERROR conflict 7 version conflict\n", 7, 0, "version conflict"),
            (b"ERROR conflict 7 expected=x version conflict\n", 7, 0, "expected=x version conflict"),
            (b"ERROR conflict version conflict\n", 0, 0, "version conflict"),
        ]
        for line, current, expected, message in cases:
            rep, _ = proto.parse_reply(line)
            assert rep is not None
            err = rep.error()
            assert isinstance(err, shmgr.ConflictError), line
            self.assertEqual((err.current, err.expected, err.message), (current, expected, message), line)

    def test_malformed_replies(self) -> None:
        bad = [
            b"HELLO\n",
            b"PONG x\n",
            b"VALUE 1\nx\n",
            b"VALUE x 1\na\n",
            b"VALUE 1 -1\n\n",
            b"VALUE 18446744073709551616 1\na\n",
            b"VALUE 1 1\nab\n",
            b"JSON\n",
            b"EVENT bad/id 1 1\na\n",
            b"EVENT r1 1\n",
            b"DELTA r1 1 4 5 0\n\n",
            b"DELTA r1 1 4 2 3\nabc\n",
        ]
        for b in bad:
            with self.assertRaises(shmgr.ProtocolError, msg=repr(b)):
                proto.parse_reply(b)
        with self.assertRaises(shmgr.TooLargeError):
            proto.parse_reply(b"x" * 100, max_line=10)
        with self.assertRaises(shmgr.TooLargeError):
            proto.parse_reply(b"VALUE 1 100\n", max_payload=10)

    def test_meta_checks(self) -> None:
        good = {"proto": "shmgr/1", "shm_id": "r", "size": 4096, "layout": "utf8", "lock_offset": 0, "len_offset": 1, "data_offset": 5, "max_data_size": 4091, "nonce": "a41f09c3e2b87d65"}
        proto.check_meta(dict(good))
        raw = dict(good, layout="raw", lock_offset=-1, len_offset=-1, data_offset=0, max_data_size=4096)
        proto.check_meta(raw)
        bad = [
            dict(good, proto="http/1"),
            dict(good, shm_id="bad/id"),
            dict(good, size=0),
            dict(good, size=True),
            dict(good, layout="zip"),
            dict(good, data_offset=6),
            dict(good, max_data_size=4096),
            dict(good, size=4, max_data_size=-1),
            dict(good, nonce="xyz"),
            dict(raw, lock_offset=0),
        ]
        for m in bad:
            with self.assertRaises(shmgr.ProtocolError, msg=repr(m)):
                proto.check_meta(m)
        for line in (b"", b"[1]\n", b"{not json\n", b"ERROR limit too many connections\n"):
            with self.assertRaises(shmgr.ProtocolError, msg=repr(line)):
                proto.parse_meta(line)

    def test_ids(self) -> None:
        for ok in ("a", "default", "A.b_c-d", "9" * 64):
            self.assertTrue(proto.valid_id(ok), ok)
        for bad in ("", "-a", ".a", "a/b", "a b", "é", "a" * 65, "a\n"):
            self.assertFalse(proto.valid_id(bad), bad)
            with self.assertRaises(shmgr.BadIDError):
                proto.check_id(bad)


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def go_unquote(s: str) -> bytes:
    """Decodes a Go double-quoted string literal (as %q writes them)."""
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise ValueError("not a Go string literal: %r" % s)
    out = bytearray()
    body = s[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES:
            out += _ESCAPES[e].encode("ascii")
            i += 2
        elif e == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(body[i + 2:i + 2 + n], 16)).encode("utf-8")
            i += 2 + n
        elif e in "01234567":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            raise ValueError("unknown escape \\%s in %r" % (e, s))
    return bytes(out)


def transcript() -> List[Tuple[bytes, bytes]]:
    pairs: List[Tuple[bytes, bytes]] = []
    c = None
    with open(TRANSCRIPT, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("C "):
                c = go_unquote(line[2:])
            elif line.startswith("S "):
                assert c is not None, "S line before its C line"
                pairs.append((c, go_unquote(line[2:])))
                c = None
    return pairs


class TestClientBytes(HostCase):
    """What the client itself sends, captured by a proxy: the documented
    requests, every write with the connection's client id and the
    sequence numbers 1, 2, 3..."""

    def test_requests_on_the_wire(self) -> None:
        p = CutProxy(self.host.addr)
        self.addCleanup(p.close)
        with shmgr.connect(p.addr, "default", mode="tcp") as r:
            cid = r._conn.client_id.encode()
            v1 = r.write("hi")
            with self.assertRaises(shmgr.ConflictError):
                r.write_if(b"ho", v1 - 1)
            self.assertEqual(r.read_version(), (b"hi", v1))
            with shmgr.Client(p.addr) as c:
                c.create("wire", size=64, layout="raw")
                c.list()
                c.info()
                c.info("wire")
                c.delete("wire")
        want = (
            proto.set_(b"default", b"hi", cid=cid, seq=1)
            + proto.set_(b"default", b"ho", ifver=v1 - 1, cid=cid, seq=2)
            + proto.get(b"default")
            + proto.create(b"wire", size=64, layout="raw")
            + proto.list_()
            + proto.info()
            + proto.info(b"wire")
            + proto.delete(b"wire")
            + proto.quit()  # the Client's
            + proto.quit()  # the Region's
        )
        # The proxy relays (and records) the closing QUITs on its own threads.
        wait_for(lambda: len(p.sent) >= len(want), what="the proxy to relay the QUITs")
        self.assertEqual(bytes(p.sent), want)
        self.assertTrue(re.fullmatch(rb"py[0-9a-f]{16}", cid) and proto.valid_id(cid), cid)


class TestTranscript(HostCase):
    """cmd/shmgr/testdata/protocol.golden against a fresh host, through
    the Python reply parser: every reply, byte for byte."""

    def test_transcript(self) -> None:
        pairs = transcript()
        self.assertGreater(len(pairs), 10)
        host, port = self.host.addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            buf = bytearray()

            def fill() -> None:
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError("host closed the connection")
                buf.extend(chunk)

            while b"\n" not in buf:
                fill()
            i = buf.index(b"\n") + 1
            meta = proto.parse_meta(bytes(buf[:i]))
            del buf[:i]
            self.assertEqual(meta["shm_id"], "default")
            self.assertEqual(meta["host_id"], shmgr.host_id(), "this client computes host_id as the host does")
            for req, want in pairs:
                s.sendall(req)
                while True:
                    rep, n = proto.parse_reply(buf)
                    if rep is not None:
                        break
                    fill()
                self.assertEqual(bytes(buf[:n]), want, "reply to %r" % req)
                del buf[:n]
                if rep.kind == proto.ERROR:
                    code = want.split(b" ")[1].decode()
                    self.assertIsInstance(rep.error(), errors.CODES[code])
            self.assertEqual(bytes(buf), b"")

    def test_info_json_matches_metadata(self) -> None:
        # USE's JSON object describes the region as the metadata line does.
        c = shmgr.Client(self.host.addr)
        self.addCleanup(c.close)
        d = c.default
        i = c.info(d.shm_id)
        for k in ("shm_id", "size", "layout", "os_name", "ctl_name", "nonce", "host_id"):
            self.assertEqual(i.raw[k], d.raw[k], k)
        self.assertTrue(re.fullmatch(r"[0-9a-f]{16}", json.loads(json.dumps(d.raw))["nonce"]))


if __name__ == "__main__":
    unittest.main()
