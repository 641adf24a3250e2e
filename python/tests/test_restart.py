"""Reconnection: a watch across host restarts resumes from its last
version; writes reconnect with backoff; a write whose reply is lost is
applied exactly once on the same host session, and is reported as an
unknown outcome when the host crashed before answering."""

from __future__ import annotations

import unittest

from support import CutProxy, start_host

import shmgr


class TestRestart(unittest.TestCase):
    def test_watch_across_host_restart(self) -> None:
        h = start_host(self)
        with shmgr.connect(h.addr, "default", timeout=30) as r:
            v0 = r.write("before")
            w = r.watch(keepalive=1.0)
            self.addCleanup(w.close)
            self.assertEqual(w.next(timeout=10), shmgr.Event(v0, b"before", 0))

            # A graceful restart; two commits while the watcher is away.
            h.stop()
            h.restart()
            v1 = r.write("while away 1")  # reconnects with backoff
            v2 = r.write("while away 2")
            self.assertEqual(v1, v0 + 1)
            ev = w.next(timeout=30)
            self.assertEqual(ev, shmgr.Event(v2, b"while away 2", 1))
            v3 = r.write("after")
            self.assertEqual(w.next(timeout=10), shmgr.Event(v3, b"after", 0))

            # A crash (SIGKILL) and a restart: the watch resumes again.
            h.kill()
            h.restart()
            v4 = r.write("after the crash")
            ev = w.next(timeout=30)
            self.assertEqual((ev.content, ev.version, ev.skipped), (b"after the crash", v4, v4 - v3 - 1))
            self.assertGreater(v4, v3)

    def test_watch_waits_for_a_host_that_is_down(self) -> None:
        h = start_host(self)
        with shmgr.connect(h.addr, "default") as r:
            w = r.watch(keepalive=0.5)
            self.addCleanup(w.close)
            v0 = w.next(timeout=10).version
            h.stop()
            with self.assertRaises(shmgr.TimeoutError):
                w.next(timeout=1.0)
            h.restart()
            r.write("back")
            ev = w.next(timeout=30)
            self.assertEqual((ev.version, ev.content), (v0 + 1, b"back"))

    def test_lost_reply_applied_once(self) -> None:
        h = start_host(self)
        p = CutProxy(h.addr)
        self.addCleanup(p.close)
        with shmgr.connect(p.addr, "default", mode="tcp") as r, shmgr.connect(h.addr, "default", mode="tcp") as direct:
            v1 = r.write("one")
            p.cut_next_reply()
            v2 = r.write("two")  # the reply is lost; the retry is answered from the host's memory
            self.assertEqual(p.cuts, 1)
            self.assertEqual(v2, v1 + 1)
            self.assertEqual(direct.read_version(), (b"two", v2))
            p.cut_next_reply()
            with self.assertRaises(shmgr.ConflictError) as cm:
                r.write_if("three", v1)  # the repeat gets the same ERROR again
            self.assertEqual(cm.exception.current, v2)
            self.assertEqual(direct.read_version(), (b"two", v2))

    def test_lost_reply_then_host_crash_is_unknown_outcome(self) -> None:
        h = start_host(self)
        p = CutProxy(h.addr)
        self.addCleanup(p.close)

        def crash() -> None:
            h.kill()
            h.restart()

        with shmgr.connect(p.addr, "default", mode="tcp") as r:
            v1 = r.write("one")
            p.cut_next_reply(on_cut=crash)
            with self.assertRaises(shmgr.UnknownOutcomeError):
                r.write("two")
            # It had been applied: the host committed before its reply was lost.
            data, v = r.read_version()
            self.assertEqual(data, b"two")
            self.assertGreater(v, v1)

    def test_lost_create_reply_is_unknown_outcome(self) -> None:
        h = start_host(self)
        p = CutProxy(h.addr)
        self.addCleanup(p.close)
        with shmgr.Client(p.addr) as c:
            p.cut_next_reply(marker=b"CREATE ")
            with self.assertRaises(shmgr.UnknownOutcomeError):
                c.create("made")
            self.assertEqual(c.info("made").shm_id, "made")  # not retried: made once


if __name__ == "__main__":
    unittest.main()
