"""The README's install command, offline: ``python -m pip install
--no-index ./python`` in a fresh virtual environment, on Python 3.8 and on
the newest interpreter present (and this one); the sdist the backend
builds installs the same way. Interpreters that are absent are skipped,
saying so."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from typing import Dict, List, Tuple

from support import PYDIR


def interpreters() -> Dict[Tuple[int, int], str]:
    """Python 3 interpreters on this machine by version: this one, python3
    on PATH, and pyenv's."""
    cands: List[str] = [sys.executable]
    for name in ("python3", "python3.8"):
        p = shutil.which(name)
        if p:
            cands.append(p)
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    cands += sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3")))
    found: Dict[Tuple[int, int], str] = {}
    for c in cands:
        try:
            out = subprocess.run([c, "-c", "import sys; print('%d %d' % sys.version_info[:2])"], capture_output=True, timeout=30).stdout.split()
        except OSError:
            continue
        if len(out) == 2:
            v = (int(out[0]), int(out[1]))
            if v >= (3, 8):
                found.setdefault(v, c)
    return found


def wanted() -> List[Tuple[Tuple[int, int], str]]:
    found = interpreters()
    if not found:
        return []
    pick = {(3, 8), max(found), tuple(sys.version_info[:2])}
    return [(v, found[v]) for v in sorted(found) if v in pick]


class TestInstall(unittest.TestCase):
    def install(self, python: str, what: str) -> None:
        d = tempfile.mkdtemp(prefix="shmgr-venv-")
        self.addCleanup(shutil.rmtree, d, True)
        p = subprocess.run([python, "-m", "venv", os.path.join(d, "venv")], capture_output=True, timeout=300)
        if p.returncode != 0:
            self.skipTest("%s cannot make a venv (Debian: apt-get install python3-venv): %s" % (python, p.stderr.decode()[-300:]))
        vpy = os.path.join(d, "venv", "bin", "python")
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        env.pop("PYTHONPATH", None)
        p = subprocess.run([vpy, "-m", "pip", "install", "--no-index", what], capture_output=True, env=env, timeout=300, cwd=d)
        self.assertEqual(p.returncode, 0, "pip install --no-index %s with %s:\n%s%s" % (what, python, p.stdout.decode(), p.stderr.decode()))
        check = (
            "import os, shmgr, shmgr.region; "
            "d = os.path.dirname(shmgr.__file__); "
            "assert 'site-packages' in d, d; "
            "assert os.path.exists(os.path.join(d, 'py.typed')); "
            "print(shmgr.__version__)"
        )
        p = subprocess.run([vpy, "-c", check], capture_output=True, env=env, timeout=60, cwd=d)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        p2 = subprocess.run([vpy, "-m", "shmgr", "--help"], capture_output=True, env=env, timeout=60, cwd=d)
        self.assertEqual(p2.returncode, 0, p2.stderr.decode())
        self.assertIn(b"read", p2.stdout)

    def test_install_offline(self) -> None:
        pys = wanted()
        self.assertTrue(pys, "no Python 3.8+ interpreter found")
        if (3, 8) not in dict(pys):
            print("\nnote: no Python 3.8 on this machine; tested %s" % [v for v, _ in pys])
        for v, py in pys:
            with self.subTest(python="%d.%d" % v):
                self.install(py, PYDIR)

    def test_sdist_installs_offline(self) -> None:
        d = tempfile.mkdtemp(prefix="shmgr-sdist-")
        self.addCleanup(shutil.rmtree, d, True)
        code = "import sys; sys.path.insert(0, '_build'); import shmgr_build as b; print(b.build_sdist(sys.argv[1]))"
        p = subprocess.run([sys.executable, "-c", code, d], cwd=PYDIR, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        sdist = os.path.join(d, p.stdout.decode().strip())
        self.install(max(wanted())[1], sdist)


if __name__ == "__main__":
    unittest.main()
