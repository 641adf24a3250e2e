"""Tokens and TLS with certificate pinning, as the Go client uses them."""

from __future__ import annotations

import unittest

import subprocess

from support import HostCase, binary

import shmgr
from shmgr.conn import normalize_fingerprint

ADMIN = "py-admin-token-0123456789"


class TestTokens(HostCase):
    host_args = ["--token", ADMIN]

    def test_token_required(self) -> None:
        with self.assertRaises(shmgr.AuthError):
            shmgr.connect(self.host.addr, "default")
        with self.assertRaises(shmgr.AuthError):
            shmgr.connect(self.host.addr, "default", token="wrong-token-0123456789")
        with shmgr.connect(self.host.addr, "default", token=ADMIN) as r:
            self.assertEqual(r.mode, "local")
            v = r.write("authorized")
            self.assertEqual(r.read_version(), (b"authorized", v))
            w = r.watch()
            self.addCleanup(w.close)
            self.assertEqual(w.next(timeout=10).content, b"authorized")
        with shmgr.Client(self.host.addr, token=ADMIN) as c:
            self.assertIn("default", [i.shm_id for i in c.list()])

    def test_read_only_and_region_tokens(self) -> None:
        ro = "py-read-only-token-0123456789"
        one = "py-one-region-token-0123456789"
        for args in (["ro", "--read-only", "--secret", ro], ["one", "--regions", "default", "--secret", one]):
            p = subprocess.run([binary(), "token", "add"] + args + ["--data-dir", self.host.data_dir], capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
        with shmgr.Client(self.host.addr, token=ADMIN) as c:
            c.create("other")
        with shmgr.connect(self.host.addr, "default", token=ro) as r:
            r.read()
            with self.assertRaises(shmgr.ForbiddenError):
                r.write("no")
        with shmgr.connect(self.host.addr, "default", token=one) as r:
            r.write("yes")
        with self.assertRaises(shmgr.ForbiddenError):
            shmgr.connect(self.host.addr, "other", token=one, mode="tcp")


class TestTLS(HostCase):
    host_args = ["--tls", "--token", ADMIN]

    def fingerprint(self) -> str:
        fp = self.host.banner_field("tls sha256")
        self.assertTrue(fp, self.host.banner)
        return fp

    def test_pinned(self) -> None:
        fp = self.fingerprint()
        self.assertEqual(len(normalize_fingerprint(fp)), 64)
        with shmgr.connect(self.host.addr, "default", token=ADMIN, tls_fingerprint=fp, mode="tcp") as r:
            v = r.write("over tls")
            self.assertEqual(r.read_version(), (b"over tls", v))
            w = r.watch()
            self.addCleanup(w.close)
            self.assertEqual(w.next(timeout=10).version, v)
            v2 = r.write("pushed over tls")
            self.assertEqual(w.next(timeout=10), shmgr.Event(v2, b"pushed over tls", 0))
        with shmgr.connect(self.host.addr, "default", token=ADMIN, tls_fingerprint=fp.replace(":", "").lower()) as r:
            self.assertEqual(r.mode, "local")
            self.assertEqual(r.read(), b"pushed over tls")

    def test_wrong_pin_and_no_tls(self) -> None:
        fp = self.fingerprint()
        wrong = ("00" if not fp.startswith("00") else "11") + fp[2:]
        with self.assertRaisesRegex(shmgr.TLSError, "not the pinned one"):
            shmgr.connect(self.host.addr, "default", token=ADMIN, tls_fingerprint=wrong)
        with self.assertRaises(shmgr.TLSError):
            shmgr.connect(self.host.addr, "default", token=ADMIN, tls=True)  # self-signed: not in the system's roots
        with self.assertRaises(shmgr.Error):
            shmgr.connect(self.host.addr, "default", token=ADMIN, connect_timeout=3)  # plain TCP to a TLS host
        with self.assertRaises(ValueError):
            shmgr.connect(self.host.addr, "default", tls_fingerprint="abc")

    def test_tls_without_token_is_refused(self) -> None:
        with self.assertRaises(shmgr.AuthError):
            shmgr.connect(self.host.addr, "default", tls_fingerprint=self.fingerprint())


if __name__ == "__main__":
    unittest.main()
