"""Conditional writes racing between a Python and a Go client: both
increment one counter with read-version / write-if loops; no increment
may be lost and no two may share a version."""

from __future__ import annotations

import json
import subprocess
import time
import unittest
from typing import List

from support import HostCase, gohelper, wait_for

import shmgr



class TestRace(HostCase):
    def race(self, sid: str, py_mode: str, go_mode: str, n_py: int, n_go: int) -> None:
        with shmgr.Client(self.host.addr) as c:
            c.create(sid, size=64)
        r = shmgr.connect(self.host.addr, sid, mode=py_mode)
        self.addCleanup(r.close)
        r.write("0")
        go = subprocess.Popen([gohelper(), "incr", "-host", self.host.addr, "-id", sid, "-n", str(n_go), "-mode", go_mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(go.wait)
        self.addCleanup(go.kill)
        # Start once the Go client is writing, so that the loops overlap.
        wait_for(lambda: r.read() != b"0" or go.poll() is not None, what="the Go client's first increment")
        versions: List[int] = []
        conflicts = 0
        # At least n_py increments, and on until the Go client is done, so
        # that Python writes race every one of Go's.
        deadline = time.monotonic() + 120
        while len(versions) < n_py or go.poll() is None:
            self.assertLess(time.monotonic(), deadline, "the race did not finish in 120 s")
            data, v = r.read_version()
            try:
                versions.append(r.write_if(str(int(data) + 1), v))
            except shmgr.ConflictError as e:
                conflicts += 1
                self.assertGreater(e.current, v)
        out, err = go.communicate(timeout=120)
        self.assertEqual(go.returncode, 0, err)
        stats = json.loads(out)
        self.assertEqual(r.read(), str(len(versions) + n_go).encode())
        self.assertEqual(len(set(versions)), len(versions))
        print("\nrace py=%s go=%s: %d+%d increments, %d Python conflicts, %d Go conflicts" % (py_mode, stats["mode"], len(versions), n_go, conflicts, stats["conflicts"]))

    def test_race_local_reads_and_mapped_go_writes(self) -> None:
        # The Go client writes through its mapping, far faster than a
        # Python round trip: it makes more increments to overlap longer.
        self.race("race-local", "local", "local", 300, 100000)

    def test_race_tcp(self) -> None:
        self.race("race-tcp", "tcp", "tcp", 200, 200)


if __name__ == "__main__":
    unittest.main()
