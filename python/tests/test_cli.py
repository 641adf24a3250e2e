"""python3 -m shmgr read|write|watch|ls against a real host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest
from typing import Dict, Optional

from support import PYDIR, HostCase

import shmgr


def cli(*args: str, input: bytes = b"", env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[bytes]":
    e = dict(os.environ, PYTHONPATH=PYDIR, SHMGR_HOST="", SHMGR_TOKEN="", SHMGR_TLS_FINGERPRINT="")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "shmgr"] + list(args), input=input, capture_output=True, env=e, timeout=60)


class TestCLI(HostCase):
    def test_write_read_ls(self) -> None:
        h = ["--host", self.host.addr]
        p = cli("write", "hello 共享", *h)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"^version \d+\n$")
        p = cli("read", *h)
        self.assertEqual((p.returncode, p.stdout), (0, "hello 共享\n".encode()))
        p = cli("write", *h, input=b"from stdin")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = cli("read", "--json", "--mode", "tcp", *h)
        got = json.loads(p.stdout)
        self.assertEqual((got["content"], got["mode"], got["shm_id"]), ("from stdin", "tcp", "default"))
        p = cli("write", "--if-version", str(got["version"] - 1), "stale", *h)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ConflictError", p.stderr.decode())
        p = cli("ls", "--json", env={"SHMGR_HOST": self.host.addr})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("default", [r["shm_id"] for r in json.loads(p.stdout)])
        p = cli("read", "--id", "nope", *h)
        self.assertEqual(p.returncode, 1)
        self.assertIn("NotFoundError", p.stderr.decode())
        p = cli("frob")
        self.assertEqual(p.returncode, 2)

    def test_watch(self) -> None:
        with shmgr.connect(self.host.addr, "default", mode="tcp") as r:
            v0 = r.write("w0")
            r.write("w1")
            p = cli("watch", "--from", str(v0), "--count", "1", "--json", "--host", self.host.addr)
            self.assertEqual(p.returncode, 0, p.stderr)
            ev = json.loads(p.stdout)
            self.assertEqual((ev["version"], ev["content"], ev["skipped"]), (v0 + 1, "w1", 0))


if __name__ == "__main__":
    unittest.main()
