"""Test support: the real Go-built host as a child process.

The shmgr binary comes from $SHMGR_BIN (scripts/test.sh builds it once),
else it is built here with ``go build`` into a temporary directory that
is removed when the test process exits; the Go helper of the torn-read
and race tests likewise from $SHMGR_GOHELPER. Every host runs on
127.0.0.1 port 0 with its own data directory; its cleanup kills it,
removes its shared-memory objects and checks that none is left.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import IO, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYDIR)

if PYDIR not in sys.path:
    sys.path.insert(0, PYDIR)

_built: Dict[str, str] = {}
_build_dir: List[str] = []


def _build(env: str, pkg: str, name: str) -> str:
    path = os.environ.get(env)
    if path:
        return path
    if name in _built:
        return _built[name]
    if shutil.which("go") is None:
        raise unittest.SkipTest("%s is not set and go is not on PATH: cannot build %s" % (env, pkg))
    if not _build_dir:
        _build_dir.append(tempfile.mkdtemp(prefix="shmgr-pytest-bin-"))
        atexit.register(shutil.rmtree, _build_dir[0], True)
    out = os.path.join(_build_dir[0], name)
    subprocess.run(["go", "build", "-o", out, pkg], cwd=REPO, check=True, timeout=600)
    _built[name] = out
    return out


def binary() -> str:
    """The shmgr binary."""
    return _build("SHMGR_BIN", "./cmd/shmgr", "shmgr")


def gohelper() -> str:
    """The Go helper (python/tests/gohelper)."""
    return _build("SHMGR_GOHELPER", "./python/tests/gohelper", "gohelper")


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Polls cond until it holds, failing after timeout seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def shm_objects(prefix: str) -> List[str]:
    """The names in /dev/shm that start with prefix."""
    try:
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))
    except FileNotFoundError:
        return []


class Host:
    """A ``shmgr host`` process on 127.0.0.1 with its own data directory."""

    def __init__(self, *args: str, data_dir: Optional[str] = None) -> None:
        self.args = list(args)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="shmgr-pytest-")
        self.addr = ""
        self.banner = ""
        self.proc: Optional[subprocess.Popen] = None
        self._err: Optional[IO[bytes]] = None
        self.start("127.0.0.1:0")

    def start(self, listen: str) -> None:
        """Starts the host and waits until it prints its banner."""
        env = dict(os.environ, SHMGR_HOST="", SHMGR_DATA_DIR="", SHMGR_TOKEN="")
        cmd = [binary(), "host", "--listen", listen, "--data-dir", self.data_dir, "--quiet"] + self.args
        if self._err is not None:
            self._err.close()
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, env=env)
        lines: "queue.Queue[Optional[str]]" = queue.Queue()
        proc = self.proc

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        banner = []
        deadline = time.monotonic() + 30
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError("host not ready after 30s: %s" % self.stderr())
            if line is None:
                proc.wait(10)
                self._reap(proc)
                raise OSError("host exited before it was ready (%s): %s" % (proc.returncode, self.stderr()))
            banner.append(line)
            if line.startswith("connect:"):
                break
        self.banner = "".join(banner)
        for l in banner:
            if l.startswith("listening:"):
                self.addr = l.split(None, 1)[1].strip()
        if not self.addr:
            raise AssertionError("no listening address in banner:\n" + self.banner)

    def banner_field(self, name: str) -> str:
        """The value of a "name: value" line of the banner ("" if none)."""
        for l in self.banner.splitlines():
            if l.startswith(name + ":"):
                return l.split(":", 1)[1].strip()
        return ""

    def stderr(self) -> str:
        """What the host logged."""
        if self._err is None:
            return ""
        try:
            self._err.seek(0)
            return self._err.read().decode("utf-8", "replace")
        except ValueError:
            return ""

    def _reap(self, p: subprocess.Popen) -> None:
        # The process is gone: its stdout reaches EOF, the pump ends.
        self._pump.join(10)
        if p.stdout is not None:
            p.stdout.close()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, and a graceful exit within 15 s."""
        p = self.proc
        if p is None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("host did not stop within 15s: " + self.stderr())
        self._reap(p)
        if p.returncode != 0:
            raise AssertionError("host exited with %s after SIGTERM: %s" % (p.returncode, self.stderr()))

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        p = self.proc
        if p is None:
            return
        p.kill()
        p.wait()
        self._reap(p)

    def restart(self) -> None:
        """Starts again on the same address and data directory, retrying
        for a few seconds while the port is not yet free."""
        deadline = time.monotonic() + 5
        while True:
            try:
                self.start(self.addr)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def instance(self) -> str:
        """The host's instance id: its objects are /dev/shm/shmgr-<id>-*."""
        try:
            with open(os.path.join(self.data_dir, "registry.json")) as f:
                return str(json.load(f).get("instance", ""))
        except (OSError, ValueError):
            return ""

    def cli(self, *args: str, input: Optional[bytes] = None, check: bool = True) -> subprocess.CompletedProcess:
        """Runs the Go CLI against this host."""
        env = dict(os.environ, SHMGR_HOST="", SHMGR_DATA_DIR="")
        p = subprocess.run([binary()] + list(args) + ["--host", self.addr], input=input, capture_output=True, env=env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("shmgr %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout.decode(), p.stderr.decode()))
        return p

    def close(self) -> None:
        """Kills the host, removes its objects and data directory, and
        checks that /dev/shm holds nothing of it."""
        self.kill()
        inst = self.instance()
        if inst:
            for n in shm_objects("shmgr-%s-" % inst):
                os.unlink("/dev/shm/" + n)
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._err is not None:
            self._err.close()
        if inst:
            left = shm_objects("shmgr-%s-" % inst)
            if left:
                raise AssertionError("objects left in /dev/shm: %s" % left)


def start_host(case: "unittest.TestCase", *args: str) -> Host:
    """Starts a host that the test's cleanup removes."""
    h = Host(*args)
    case.addCleanup(h.close)
    return h


class HostCase(unittest.TestCase):
    """A test case with one host for the whole class (``cls.host``)."""

    host_args: List[str] = []
    host: Host

    @classmethod
    def setUpClass(cls) -> None:
        cls.host = Host(*cls.host_args)
        cls.addClassCleanup(cls.host.close)


class CutProxy:
    """A loopback TCP proxy to a host that can lose one reply.

    After :meth:`cut_next_reply`, the next client request that contains
    ``marker`` reaches the host, but the host's answer is dropped: the
    proxy calls ``on_cut`` (a test may crash the host there) and closes
    both sides, as a network that fails at the worst moment would. Every
    later connection is relayed faithfully.
    """

    def __init__(self, target: str) -> None:
        import socket

        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.ln = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.ln.getsockname()[1]
        self._lock = threading.Lock()
        self._marker: Optional[bytes] = None
        self._on_cut: Optional[Callable[[], None]] = None
        self.cuts = 0
        #: Every byte clients sent through the proxy, in order.
        self.sent = bytearray()
        self._socks: List = []
        self._threads: List[threading.Thread] = []
        self._closed = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def cut_next_reply(self, marker: bytes = b"SET ", on_cut: Optional[Callable[[], None]] = None) -> None:
        """Arms the proxy to lose the reply to the next request with marker."""
        with self._lock:
            self._marker, self._on_cut = marker, on_cut

    def _accept(self) -> None:
        import socket

        # accept wakes every 50 ms to see whether close was called: closing
        # a listening socket does not interrupt a blocked accept.
        self.ln.settimeout(0.05)
        while True:
            try:
                c, _ = self.ln.accept()
            except socket.timeout:
                if self._closed:
                    return
                continue
            except OSError:
                return
            c.settimeout(None)
            try:
                h = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            h.settimeout(None)
            state = {"awaiting": False}
            with self._lock:
                if self._closed:
                    c.close()
                    h.close()
                    return
                self._socks += [c, h]
                for fn in (self._up, self._down):
                    t = threading.Thread(target=fn, args=(c, h, state), daemon=True)
                    t.start()
                    self._threads.append(t)

    def _pump(self, src, dst, c, h, keep: Callable[[bytes], bool]) -> None:
        """Relays src to dst while keep(chunk) says so; then, or at EOF or
        an error, closes both sides."""
        while True:
            try:
                b = src.recv(65536)
            except OSError:
                b = b""
            if not b or not keep(b):
                break
            try:
                dst.sendall(b)
            except OSError:
                break
        _close(c, h)

    def _up(self, c, h, state) -> None:  # client -> host
        def keep(b: bytes) -> bool:
            with self._lock:
                self.sent += b
                if self._marker is not None and self._marker in b:
                    state["awaiting"] = True
                    self._marker = None
            return True

        self._pump(c, h, c, h, keep)

    def _down(self, c, h, state) -> None:  # host -> client
        def keep(b: bytes) -> bool:
            if not state["awaiting"]:
                return True
            with self._lock:
                on_cut, self._on_cut = self._on_cut, None
                self.cuts += 1
            if on_cut is not None:
                on_cut()
            return False

        self._pump(h, c, c, h, keep)

    def close(self) -> None:
        """Stops the proxy and waits for its threads."""
        with self._lock:
            self._closed = True
            socks = list(self._socks)
        for s in socks:
            _close(s)
        for t in self._threads:
            t.join(10)
        self.ln.close()


def _close(*socks) -> None:
    import socket

    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass
