"""Local mode's safety: torn reads against a Go writer running flat out,
the offset-0 flag of programs outside shmgr, the nonce, the control block
format, the host id, and the read fence per CPU."""

from __future__ import annotations

import json
import mmap
import os
import re
import subprocess
import threading
import time
import unittest
from typing import Dict, Tuple
from unittest import mock

from support import REPO, HostCase, gohelper, wait_for

import shmgr
from shmgr import ctlblock, fence, local


def torn_run(case: HostCase, sid: str, seconds: float, patch_machine: str = "") -> Tuple[int, int, int, int]:
    """Reads region sid locally while the Go helper rewrites all of it flat
    out; returns (reads, torn, distinct versions seen, retries)."""
    helper = subprocess.Popen(
        [gohelper(), "writer", "-host", case.host.addr, "-id", sid, "-mode", "local", "-duration", "%gs" % (seconds + 30)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    case.addCleanup(helper.wait)
    case.addCleanup(helper.kill)
    assert helper.stdout is not None
    first = helper.stdout.readline()
    case.assertEqual(first.strip(), b"ready", helper.stderr.read() if helper.stderr and not first else first)
    ctx = mock.patch("platform.machine", return_value=patch_machine) if patch_machine else None
    if ctx:
        ctx.start()
    try:
        r = shmgr.connect(case.host.addr, sid, mode="local")
    finally:
        if ctx:
            ctx.stop()
    case.addCleanup(r.close)
    if patch_machine:
        case.assertIn("libatomic", r.fence)
    reads = torn = 0
    versions = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data, v = r.read_version()
        reads += 1
        versions.add(v)
        # Every 8-byte word of one write holds the same counter.
        if data[:8] * (len(data) // 8) != data[: len(data) // 8 * 8]:
            torn += 1
    helper.terminate()
    out, err = helper.communicate(timeout=30)
    case.assertEqual(helper.returncode, 0, err)
    stats = json.loads(out.decode().strip().splitlines()[-1])
    case.assertEqual(stats["mode"], "local")
    case.assertGreater(stats["writes"], len(versions) // 2)
    return reads, torn, len(versions), r.local_retries


class TestTornReads(HostCase):
    def setUp(self) -> None:
        self.c = shmgr.Client(self.host.addr)
        self.addCleanup(self.c.close)

    def test_torn_reads_raw_1mib(self) -> None:
        self.c.create("torn", size=1 << 20, layout="raw")
        reads, torn, distinct, retries = torn_run(self, "torn", 3.0)
        print("\ntorn-read check, 1 MiB raw region, Go writer flat out: %d reads accepted, %d torn, %d distinct versions, %d retries" % (reads, torn, distinct, retries))
        self.assertEqual(torn, 0)
        self.assertGreater(distinct, 1, "the writer never raced the reader")

    def test_detector_sees_torn_copies(self) -> None:
        # The check above can fail: a plain copy of the same mapping, with
        # no seqlock, tears under the same writer.
        info = self.c.create("tornplain", size=1 << 20, layout="raw").raw
        helper = subprocess.Popen([gohelper(), "writer", "-host", self.host.addr, "-id", "tornplain", "-mode", "local", "-duration", "60s"], stdout=subprocess.PIPE)
        self.addCleanup(helper.wait)
        self.addCleanup(helper.kill)
        assert helper.stdout is not None
        self.addCleanup(helper.stdout.close)
        self.assertEqual(helper.stdout.readline().strip(), b"ready")
        fd = os.open("/dev/shm/" + info["os_name"], os.O_RDONLY)
        self.addCleanup(os.close, fd)
        m = mmap.mmap(fd, 1 << 20, prot=mmap.PROT_READ)
        self.addCleanup(m.close)
        torn, end = 0, time.monotonic() + 10
        while not torn and time.monotonic() < end:
            data = m[:]
            torn += data[:8] * (len(data) // 8) != data
        self.assertGreater(torn, 0, "no torn copy in 10s: the writer is not racing the reader")

    def test_torn_reads_utf8(self) -> None:
        self.c.create("torn8", size=(64 << 10) + 5, layout="utf8")
        reads, torn, distinct, retries = torn_run(self, "torn8", 2.0)
        print("\ntorn-read check, 64 KiB utf8 region: %d reads, %d torn, %d distinct versions, %d retries" % (reads, torn, distinct, retries))
        self.assertEqual(torn, 0)
        self.assertGreater(distinct, 1)

    def test_torn_reads_with_fence(self) -> None:
        # The arm64 path (libatomic's fence through ctypes), run here: it
        # must be as correct, only slower.
        self.c.create("tornf", size=1 << 20, layout="raw")
        reads, torn, distinct, retries = torn_run(self, "tornf", 2.0, patch_machine="aarch64")
        print("\ntorn-read check with the libatomic fence: %d reads, %d torn, %d distinct versions, %d retries" % (reads, torn, distinct, retries))
        self.assertEqual(torn, 0)
        self.assertGreater(distinct, 1)


def writable(path: str) -> Tuple[int, mmap.mmap]:
    fd = os.open(path, os.O_RDWR)
    return fd, mmap.mmap(fd, os.fstat(fd).st_size)


class TestLocalChecks(HostCase):
    def setUp(self) -> None:
        self.c = shmgr.Client(self.host.addr)
        self.addCleanup(self.c.close)

    def region(self, sid: str) -> Dict:
        return self.c.create(sid, size=4096).raw

    def patch(self, path: str, off: int, data: bytes) -> None:
        """Writes data at off of a real object, as a program outside
        shmgr would, and puts the old bytes back at cleanup."""
        fd, m = writable(path)
        old = m[off:off + len(data)]
        m[off:off + len(data)] = data

        def restore() -> None:
            m[off:off + len(old)] = old
            m.close()
            os.close(fd)

        self.addCleanup(restore)

    def test_offset0_flag_held_by_an_outside_program(self) -> None:
        info = self.region("flag")
        with shmgr.connect(self.host.addr, "flag", mode="local") as r:
            v = r.write("content")
            fd, m = writable("/dev/shm/" + info["os_name"])
            self.addCleanup(os.close, fd)
            self.addCleanup(m.close)
            m[0] = 1
            # The mapping is never trusted while the flag is set: the read
            # gives up after its retries and asks the host, which waits for
            # the flag; the outside program clears it once the read has
            # given up.
            def release() -> None:
                wait_for(lambda: r.local_fallbacks == 1, what="the local read to give up")
                m[0] = 0

            t = threading.Thread(target=release)
            t.start()
            self.addCleanup(t.join)
            self.assertEqual(r.read_version(), (b"content", v))
            self.assertEqual(r.local_fallbacks, 1)
            self.assertEqual(r.local_retries, local.MAX_TRIES)

    def test_unknown_control_block_format(self) -> None:
        info = self.region("fmt")
        unknown = max(ctlblock.FORMATS) + 1
        self.patch("/dev/shm/" + info["ctl_name"], ctlblock.FORMAT_OFFSET, unknown.to_bytes(4, "little"))
        with shmgr.connect(self.host.addr, "fmt") as r:
            self.assertEqual(r.mode, "tcp")
            self.assertIn("control block format %d is not one this client knows" % unknown, r.why_not_local)
            r.write("still works")
            self.assertEqual(r.read(), b"still works")
        with self.assertRaises(shmgr.NotLocalError):
            shmgr.connect(self.host.addr, "fmt", mode="local")

    def test_nonce_mismatch(self) -> None:
        info = self.region("nonce")
        other = dict(info, nonce="%016x" % (int(info["nonce"], 16) ^ 1))
        with self.assertRaisesRegex(ValueError, "belongs to another region"):
            local.LocalMap(other, fence.choose())
        local.LocalMap(info, fence.choose()).close()

    def test_other_machine(self) -> None:
        self.region("elsewhere")
        with mock.patch("shmgr.region.host_id", return_value="0000000000000000"):
            with shmgr.connect(self.host.addr, "elsewhere") as r:
                self.assertEqual(r.mode, "tcp")
                self.assertEqual(r.why_not_local, "the host runs on another machine")

    def test_cpu_needs_fence_without_libatomic(self) -> None:
        self.region("nofence")
        unusable = fence.choose("aarch64", load=lambda: None)
        with mock.patch("shmgr.region.fence_mod.choose", return_value=unusable):
            with shmgr.connect(self.host.addr, "nofence") as r:
                self.assertEqual(r.mode, "tcp")
                self.assertIn("needs a read fence", r.why_not_local)
                r.write("over tcp")
                self.assertEqual(r.read(), b"over tcp")

    def test_reads_while_host_is_down(self) -> None:
        # A mapped region keeps serving reads with the host stopped; writes
        # wait for it (and reconnect).
        self.region("down")
        with shmgr.connect(self.host.addr, "down", mode="local", timeout=20) as r:
            v = r.write("before")
            self.host.stop()
            try:
                self.assertEqual(r.read_version(), (b"before", v))
            finally:
                self.host.restart()
            self.assertEqual(r.write("after"), v + 1)
            self.assertEqual(r.read(), b"after")


class TestFormatInStep(unittest.TestCase):
    """ctlblock.FORMATS knows the format this tree's Go code writes, at the
    offsets internal/region uses: a format bump that forgets the Python
    client fails here, not in a user's read."""

    def test_matches_internal_region(self) -> None:
        with open(os.path.join(REPO, "internal", "region", "layout.go"), encoding="utf-8") as f:
            src = f.read()
        consts = dict(re.findall(r"^\s*(ctlFormat|offLayout|offSize|offNonce|offSeq|offRetired)\s*=\s*(\d+)\s*$", src, re.M))
        self.assertEqual(len(consts), 6, "internal/region/layout.go no longer names these constants: %s" % consts)
        fmt = int(consts["ctlFormat"])
        self.assertIn(fmt, ctlblock.FORMATS, "control block format %d: add it to python/shmgr/ctlblock.py" % fmt)
        want = ctlblock.Offsets(
            layout=int(consts["offLayout"]),
            size=int(consts["offSize"]),
            nonce=int(consts["offNonce"]),
            seq=int(consts["offSeq"]),
            retired=int(consts["offRetired"]),
        )
        self.assertEqual(ctlblock.FORMATS[fmt], want)
        magic = re.search(r'ctlMagic\s*=\s*"([^"]+)"', src)
        assert magic is not None
        self.assertEqual(magic.group(1), (ctlblock.MAGIC_PREFIX + str(fmt).encode()).decode())


class TestFence(unittest.TestCase):
    def test_choose(self) -> None:
        self.assertTrue(fence.choose("x86_64").usable)
        self.assertIsNone(fence.choose("x86_64").call)
        arm = fence.choose("aarch64")
        if arm.call is None:
            self.skipTest("libatomic (Debian libatomic1) is not installed: %s" % arm.how)
        self.assertTrue(arm.usable)
        arm.call()
        self.assertIn("atomic_thread_fence", arm.how)
        no = fence.choose("aarch64", load=lambda: None)
        self.assertFalse(no.usable)
        self.assertIn("libatomic", no.how)

    def test_header_parse(self) -> None:
        hdr = bytearray(ctlblock.HEADER_SIZE)
        hdr[0:8] = b"SHMGRCB1"
        hdr[8:12] = (1).to_bytes(4, "little")
        hdr[12:16] = (2).to_bytes(4, "little")
        hdr[16:24] = (64).to_bytes(8, "little")
        hdr[24:32] = (0xA41F09C3E2B87D65).to_bytes(8, "little")
        h = ctlblock.parse_header(bytes(hdr))
        self.assertEqual((h.format, h.layout, h.size, h.nonce), (1, "raw", 64, "a41f09c3e2b87d65"))
        for bad, msg in (
            (b"NOTSHMGR" + bytes(hdr[8:]), "magic"),
            (bytes(hdr[:8]) + (9).to_bytes(4, "little") + bytes(hdr[12:]), "format 9"),
            (b"SHMGRCB3" + bytes(hdr[8:]), "does not match"),
            (bytes(hdr[:12]) + (7).to_bytes(4, "little") + bytes(hdr[16:]), "unknown layout"),
            (bytes(hdr[:100]), "shorter"),
        ):
            with self.assertRaisesRegex(ValueError, msg):
                ctlblock.parse_header(bad)


if __name__ == "__main__":
    unittest.main()
