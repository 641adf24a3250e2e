"""Every API of the package against a real host, in both modes: the same
tests run with mode="local" (reads from the mapping) and mode="tcp"."""

from __future__ import annotations

import unittest

from support import HostCase

import shmgr


class RegionAPI(HostCase):
    """The tests; subclasses set mode. Each test uses its own region."""

    mode = ""
    _n = 0

    @classmethod
    def setUpClass(cls) -> None:
        if not cls.mode:
            raise unittest.SkipTest("the base of TestLocal and TestTCP")
        super().setUpClass()

    def region(self, layout: str = "utf8", size: int = 4096) -> "shmgr.Region":
        case = self
        RegionAPI._n += 1
        sid = "r%d-%s" % (RegionAPI._n, self.mode)
        c = shmgr.Client(self.host.addr)
        case.addCleanup(c.close)
        c.create(sid, size=size, layout=layout)
        r = shmgr.connect(self.host.addr, sid, mode=self.mode)
        case.addCleanup(r.close)
        return r

    def test_mode(self) -> None:
        r = self.region()
        self.assertEqual(r.mode, self.mode)
        if self.mode == "local":
            self.assertEqual(r.why_not_local, "")
            self.assertIn("none needed", r.fence)
        else:
            self.assertEqual(r.why_not_local, "TCP mode was requested")
            self.assertEqual(r.fence, "")

    def test_write_read(self) -> None:
        r = self.region()
        self.assertEqual(r.read(), b"")
        v1 = r.write("hello 共享")
        self.assertEqual(r.read(), "hello 共享".encode("utf-8"))
        self.assertEqual(r.read_text(), "hello 共享")
        self.assertEqual(r.read_version(), ("hello 共享".encode("utf-8"), v1))
        v2 = r.write(b"bytes\nwith newline")
        self.assertEqual(v2, v1 + 1)
        self.assertEqual(r.read_version(), (b"bytes\nwith newline", v2))
        v3 = r.write(bytearray(b"ba"))
        self.assertEqual(r.read_version(), (b"ba", v3))
        with self.assertRaises(TypeError):
            r.write(42)  # type: ignore[arg-type]

    def test_raw_region(self) -> None:
        r = self.region(layout="raw", size=64)
        blob = bytes(range(256))[:40]
        v = r.write(blob)
        data, got = r.read_version()
        self.assertEqual(got, v)
        self.assertEqual(len(data), 64)
        self.assertEqual(data[:40], blob)
        self.assertEqual(r.info.layout, "raw")

    def test_write_if(self) -> None:
        r = self.region()
        v = r.write("one")
        v2 = r.write_if(b"two", v)
        self.assertEqual(v2, v + 1)
        with self.assertRaises(shmgr.ConflictError) as cm:
            r.write_if(b"three", v)
        self.assertEqual(cm.exception.current, v2)
        self.assertEqual(cm.exception.expected, v)
        self.assertEqual(r.read_version(), (b"two", v2))
        self.assertEqual(r.write_if("three", cm.exception.current), v2 + 1)
        with self.assertRaises(ValueError):
            r.write_if(b"x", -1)

    def test_refused_writes_change_nothing(self) -> None:
        r = self.region(size=16)
        v = r.write("keep")
        with self.assertRaises(shmgr.TooLargeError):
            r.write(b"x" * 12)
        with self.assertRaises(shmgr.InvalidUTF8Error):
            r.write(b"ab\xff")
        self.assertEqual(r.read_version(), (b"keep", v))

    def test_sees_other_writers(self) -> None:
        r = self.region()
        self.host.cli("write", "--id", r.shm_id, "from the Go CLI")
        self.assertEqual(r.read_text(), "from the Go CLI")

    def test_watch(self) -> None:
        r = self.region()
        v0 = r.write("start")
        with r.watch() as w:
            ev = w.next(timeout=10)
            self.assertEqual(ev, shmgr.Event(v0, b"start", 0))
            v1 = r.write("next")
            ev = w.next(timeout=10)
            self.assertEqual((ev.version, ev.content, ev.skipped, ev.text), (v1, b"next", 0, "next"))
            # A commit made in the mapping by another process is pushed too.
            self.host.cli("write", "--id", r.shm_id, "--mode", "local", "mapped")
            ev = w.next(timeout=10)
            self.assertEqual((ev.version, ev.content), (v1 + 1, b"mapped"))
            with self.assertRaises(shmgr.TimeoutError):
                w.next(timeout=0.2)

    def test_watch_deltas(self) -> None:
        # A small write into a large region crosses as a DELTA frame; the
        # watcher's content is the whole region all the same.
        r = self.region(layout="raw", size=64 << 10)
        v0 = r.write(b"a" * (64 << 10))
        with r.watch() as w:
            self.assertEqual(w.next(timeout=10).version, v0)
            self.host.cli("write", "--id", r.shm_id, "--offset", "1000", "xyz")
            ev = w.next(timeout=10)
            want = bytearray(b"a" * (64 << 10))
            want[1000:1003] = b"xyz"
            self.assertEqual((ev.version, ev.content), (v0 + 1, bytes(want)))
            self.assertEqual(w.deltas, 1)
            self.assertEqual(r.read(), bytes(want))

    def test_watch_from_skips(self) -> None:
        r = self.region()
        v0 = r.write("a")
        r.write("b")
        v2 = r.write("c")
        w = r.watch(from_version=v0)
        self.addCleanup(w.close)
        self.assertIs(iter(w), w)
        ev = w.next(timeout=10)
        self.assertEqual(ev, shmgr.Event(v2, b"c", 1))
        self.assertEqual(w.last_version, v2)

    def test_deleted_and_recreated(self) -> None:
        r = self.region()
        r.write("old")
        c = shmgr.Client(self.host.addr)
        self.addCleanup(c.close)
        w = r.watch()
        self.addCleanup(w.close)
        self.assertEqual(w.next(timeout=10).content, b"old")
        c.delete(r.shm_id)
        with self.assertRaises(shmgr.NotFoundError):
            r.read()
        with self.assertRaises(shmgr.NotFoundError):
            w.next(timeout=10)
        c.create(r.shm_id, size=4096)
        c_r = shmgr.connect(self.host.addr, r.shm_id, mode="tcp")
        self.addCleanup(c_r.close)
        c_r.write("new")
        self.assertEqual(r.read(), b"new")
        self.assertEqual(r.mode, self.mode)

    def test_errors(self) -> None:
        with self.assertRaises(shmgr.NotFoundError):
            shmgr.connect(self.host.addr, "nope", mode=self.mode)
        with self.assertRaises(shmgr.BadIDError):
            shmgr.connect(self.host.addr, "bad/id", mode=self.mode)
        with self.assertRaises(ValueError):
            shmgr.connect(self.host.addr, "default", mode="fast")
        with self.assertRaises(shmgr.ConnectError):
            shmgr.connect("127.0.0.1:1", "default", mode=self.mode, connect_timeout=2)
        r = self.region()
        r.close()
        with self.assertRaises(shmgr.ClosedError):
            r.write("x")
        with self.assertRaises(shmgr.ClosedError):
            r.read()

    def test_client(self) -> None:
        with shmgr.Client(self.host.addr) as c:
            sid = "client-%s" % self.mode
            info = c.create(sid, size=128, layout="raw")
            self.assertEqual((info.shm_id, info.size, info.layout, info.max_data_size, info.version), (sid, 128, "raw", 128, 0))
            with self.assertRaises(shmgr.ExistsError):
                c.create(sid)
            ids = [i.shm_id for i in c.list()]
            self.assertIn(sid, ids)
            self.assertIn("default", ids)
            self.assertEqual(ids, sorted(ids))
            hi = c.info()
            self.assertEqual(hi["default"], "default")
            self.assertGreater(hi["pid"], 0)
            self.assertEqual(c.info(sid).size, 128)
            self.assertEqual(c.default.shm_id, "default")
            with c.open(sid, mode=self.mode) as r:
                self.assertEqual(r.mode, self.mode)
                v = r.write(b"\x01\x02")
                self.assertEqual(r.read_version()[1], v)
            c.ping()  # the Region's close left the connection open
            c.delete(sid)
            with self.assertRaises(shmgr.NotFoundError):
                c.delete(sid)
            with self.assertRaises(shmgr.NotFoundError):
                c.info(sid)
            with self.assertRaises(shmgr.ForbiddenError):
                c.delete("default")
            with self.assertRaises(shmgr.BadIDError):
                c.create("bad id")
            with self.assertRaises(shmgr.LimitError):
                c.create("huge", size=(1 << 62))

    def test_create_max_write(self) -> None:
        """A raw region created with max_write reserves that much undo
        area (footprint), takes writes of up to max_write bytes (locally
        too: the control block is mapped at its bounded size) and refuses
        larger ones with TooLargeError naming the limit."""
        with shmgr.Client(self.host.addr) as c:
            sid = "mw-%s" % self.mode
            info = c.create(sid, size=65536, layout="raw", max_write=512)
            self.assertEqual((info.raw["max_write"], info.raw["footprint"]), (512, 65536 + 4096 + 512 + 8))
            self.assertEqual(c.info(sid).raw["max_write"], 512)
            with c.open(sid, mode=self.mode) as r:
                self.assertEqual(r.mode, self.mode)
                v = r.write(b"\x07" * 512)
                self.assertEqual(r.read_version(), (b"\x07" * 512 + bytes(65536 - 512), v))
                with self.assertRaises(shmgr.TooLargeError) as cm:
                    r.write(b"\x01" * 513)
                self.assertIn("max write is 512 bytes", str(cm.exception))
                self.assertEqual(r.read_version()[1], v)
            with self.assertRaises(ValueError):
                c.create("mw-zero", size=64, layout="raw", max_write=0)
            with self.assertRaises(shmgr.ProtocolError):
                c.create("mw-utf8", size=64, max_write=8)
            c.delete(sid)


class TestLocal(RegionAPI):
    mode = "local"


class TestTCP(RegionAPI):
    mode = "tcp"


class TestAuto(HostCase):
    def test_auto_maps_on_this_machine(self) -> None:
        with shmgr.connect(self.host.addr, "default") as r:
            self.assertEqual(r.mode, "local")
            self.assertEqual(r.info.shm_id, "default")
            self.assertIn("local", repr(r))


if __name__ == "__main__":
    unittest.main()
