"""Consistent (linearizable) reads: read(consistent=True) and
Conn.get(..., consistent=True), against a single host and a three-host
cluster of real host processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import unittest
from typing import Dict, List

from support import Host, HostCase, start_host, wait_for

import shmgr
from shmgr import errors, proto


class TestConsistentEncoding(unittest.TestCase):
    def test_get(self) -> None:
        self.assertEqual(proto.get(b"r1"), b"GET r1\n")
        self.assertEqual(proto.get(b"r1", consistent=True), b"GET r1 consistent\n")
        self.assertEqual(proto.get(b"r1", 5, 10, consistent=True), b"GET r1 5 10 consistent\n")
        self.assertEqual(proto.get(b"r1", 0, 0), b"GET r1 0 0\n")


class TestConsistentSingleHost(HostCase):
    """On a single host consistent=True is a plain read, in both modes."""

    def test_read_consistent(self) -> None:
        c = shmgr.Client(self.host.addr)
        self.addCleanup(c.close)
        c.create("cons", size=4096)
        for mode in ("local", "tcp"):
            r = shmgr.connect(self.host.addr, "cons", mode=mode)
            self.addCleanup(r.close)
            v = r.write("single %s" % mode)
            self.assertEqual(r.read(consistent=True), ("single %s" % mode).encode())
            self.assertEqual(r.read_version(consistent=True), (("single %s" % mode).encode(), v))
            self.assertEqual(r.read_text(consistent=True), "single %s" % mode)
        # The host is no cluster node: the word is not even sent.
        self.assertFalse(c._conn.replicated)

    def test_cli_consistent(self) -> None:
        self.host.cli("write", "for the python cli")
        env = dict(os.environ, SHMGR_HOST="", SHMGR_DATA_DIR="")
        p = subprocess.run([sys.executable, "-m", "shmgr", "read", "--consistent", "--host", self.host.addr], capture_output=True, env=env, timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.rstrip(b"\n"), b"for the python cli")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _stopped(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 1:].split()[0] == "T"


class TestConsistentCluster(unittest.TestCase):
    """Three host processes form a cluster: a write through the leader is
    what read(consistent=True) returns on each follower at once, mapped
    and over TCP; a follower cut off from both others raises
    UnavailableError for a consistent read and still serves a plain one."""

    def setUp(self) -> None:
        if not os.path.isdir("/proc/self"):
            raise unittest.SkipTest("needs /proc to see that a process has stopped")
        names = ["a", "b", "c"]
        peers = ",".join("%s=127.0.0.1:%d" % (n, _free_port()) for n in names)
        self.hosts: Dict[str, Host] = {n: start_host(self, "--node", n, "--peers", peers) for n in names}

    def status(self, h: Host) -> Dict:
        return json.loads(h.cli("cluster", "status", "--json").stdout)

    def test_consistent_reads(self) -> None:
        leader: List[str] = []

        def has_leader() -> bool:
            l = self.status(self.hosts["a"]).get("leader", "")
            if l:
                leader[:] = [l]
            return bool(l)

        wait_for(has_leader, timeout=30, what="a cluster leader")
        ln = leader[0]
        followers = [n for n in self.hosts if n != ln]
        regions = {}
        for f in followers:
            for mode in ("local", "tcp"):
                r = shmgr.connect(self.hosts[f].addr, mode=mode)
                self.addCleanup(r.close)
                self.assertEqual(r.mode, mode)
                regions[(f, mode)] = r
        w = shmgr.connect(self.hosts[ln].addr, mode="tcp")
        self.addCleanup(w.close)
        for i in range(3):
            want = ("linearizable %d" % i).encode()
            v = w.write(want)
            for (f, mode), r in regions.items():
                self.assertEqual(r.read_version(consistent=True), (want, v), "follower %s (%s) right after the leader acknowledged" % (f, mode))

        # Cut one follower off: both other hosts stopped.
        f = followers[0]
        others = [self.hosts[ln], self.hosts[followers[1]]]
        pids = [h.proc.pid for h in others if h.proc is not None]

        def resume() -> None:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

        self.addCleanup(resume)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        for pid in pids:
            wait_for(lambda: _stopped(pid), timeout=10, what="a stopped host")
        for mode in ("local", "tcp"):
            r = regions[(f, mode)]
            with self.assertRaises(errors.UnavailableError) as cm:
                r.read(consistent=True)
            self.assertIn("cannot reach the cluster's leader", str(cm.exception))
            self.assertEqual(r.read(), b"linearizable 2", "plain read of the cut-off follower's copy (%s)" % mode)
        resume()

        last: List[str] = []

        def consistent_ok() -> bool:
            try:
                regions[(f, "tcp")].read(consistent=True)
                return True
            except errors.UnavailableError as e:
                last[:] = [str(e)]
                return False

        try:
            wait_for(consistent_ok, timeout=60, what="a consistent read on the healed follower")
        except AssertionError as e:
            raise AssertionError("%s; the last refusal: %s; its status: %s" % (e, last, self.status(self.hosts[f]))) from None
        # A write through whichever host leads now is what every follower's
        # consistent read returns at once.
        nl = self.status(self.hosts[f])["leader"]
        w2 = shmgr.connect(self.hosts[nl].addr, mode="tcp")
        self.addCleanup(w2.close)
        v = w2.write("after healing")
        for (n, mode), r in regions.items():
            if n != nl:
                self.assertEqual(r.read_version(consistent=True), (b"after healing", v), "host %s (%s) after healing" % (n, mode))


if __name__ == "__main__":
    unittest.main()
