"""The Python client side by side with its baselines, in one run.

    python3 python/bench/compare.py [--shmgr PATH] [--rounds 7] [--json]

Local, a 4 KiB utf8 region on this machine:
  - shmgr r.read() (mode local: seqlock read of the mapping);
  - bytes(mm[5:5+n]) from a plain mmap of the same object (no checks at
    all: the floor; goal: r.read() within 2x of it);
  - the original design's read: multiprocessing.shared_memory and its
    check-then-set lock flag at offset 0 (goal: r.read() faster).
TCP, one connection, 4 KiB values:
  - shmgr r.read() / r.write() (mode tcp) against redis-py GET / SET on a
    redis-server started here (goal: at least 1.0x redis-py's rate).

Each round runs every case once, in turn, so that the machine's noise
falls on all of them alike; the table shows the median of the rounds and
the ratio of medians. It starts its own host and redis-server on loopback
port 0 and removes them, and the host's objects, at the end.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYDIR)
sys.path.insert(0, PYDIR)

import shmgr  # noqa: E402

SIZE = 4096


def per_op(fn: Callable[[], object], n: int) -> float:
    """Seconds per call of fn over n calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


class Procs:
    """The processes and files this run made, removed by close."""

    def __init__(self) -> None:
        self.procs: List[subprocess.Popen] = []
        self.dirs: List[str] = []
        self.shm_prefix = ""

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.shm_prefix:
            for n in os.listdir("/dev/shm"):
                if n.startswith(self.shm_prefix):
                    os.unlink("/dev/shm/" + n)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def start_host(procs: Procs, binary: str) -> str:
    d = tempfile.mkdtemp(prefix="shmgr-pybench-")
    procs.dirs.append(d)
    p = subprocess.Popen([binary, "host", "--listen", "127.0.0.1:0", "--data-dir", d, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    procs.procs.append(p)
    addr = ""
    assert p.stdout is not None
    for raw in p.stdout:
        line = raw.decode()
        if line.startswith("listening:"):
            addr = line.split()[1]
        if line.startswith("connect:"):
            break
    with open(os.path.join(d, "registry.json")) as f:
        procs.shm_prefix = "shmgr-%s-" % json.load(f)["instance"]
    if not addr:
        raise SystemExit("the host did not start")
    return addr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(procs: Procs) -> Optional[int]:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    port = free_port()
    d = tempfile.mkdtemp(prefix="shmgr-pybench-redis-")
    procs.dirs.append(d)
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.procs.append(p)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.02)
    return None


def original_reader(os_name: str) -> Tuple[Callable[[], bytes], Callable[[], None]]:
    """The original design's read (shared_memory_utils.shm_read): take the
    offset-0 flag by check-then-set with a 5 s timeout, read the length,
    copy the data, release the flag."""
    from multiprocessing import shared_memory

    try:
        shm = shared_memory.SharedMemory(name=os_name, track=False)  # type: ignore[call-arg]
    except TypeError:  # before 3.13: the tracker would unlink it at exit
        shm = shared_memory.SharedMemory(name=os_name)
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    buf = shm.buf

    def read() -> bytes:
        deadline = time.time() + 5.0
        while buf[0] != 0:
            if time.time() > deadline:
                raise TimeoutError("lock")
            time.sleep(0.001)
        buf[0] = 1
        try:
            n = struct.unpack_from("<I", buf, 1)[0]
            return bytes(buf[5:5 + n])
        finally:
            buf[0] = 0

    def close() -> None:
        nonlocal buf
        del buf
        shm.close()

    return read, close


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shmgr", default=os.environ.get("SHMGR_BIN"), help="the shmgr binary (default: go build it)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--local-n", type=int, default=200000, help="calls per local case per round")
    ap.add_argument("--tcp-n", type=int, default=3000, help="calls per TCP case per round")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the Python section of docs/PERFORMANCE.md")
    a = ap.parse_args()
    procs = Procs()
    try:
        binary = a.shmgr
        if not binary:
            d = tempfile.mkdtemp(prefix="shmgr-pybench-bin-")
            procs.dirs.append(d)
            binary = os.path.join(d, "shmgr")
            subprocess.run(["go", "build", "-o", binary, "./cmd/shmgr"], cwd=REPO, check=True)
        addr = start_host(procs, binary)
        value = b"x" * SIZE
        with shmgr.Client(addr) as c:
            info = c.create("bench4k", size=SIZE + 5)
        local = shmgr.connect(addr, "bench4k", mode="local")
        tcp = shmgr.connect(addr, "bench4k", mode="tcp")
        local.write(value)
        assert local.read() == value and local.mode == "local"
        fd = os.open("/dev/shm/" + info.os_name, os.O_RDONLY)
        mm = mmap.mmap(fd, SIZE + 5, prot=mmap.PROT_READ)
        n = SIZE
        orig_read, orig_close = original_reader(info.os_name)
        assert orig_read() == value

        cases: Dict[str, Tuple[Callable[[], object], int]] = {
            "local r.read()": (local.read, a.local_n),
            "bytes(mm[5:5+n])": (lambda: bytes(mm[5:5 + n]), a.local_n),
            "original shared_memory + check-then-set": (orig_read, a.local_n),
            "tcp r.read()": (tcp.read, a.tcp_n),
            "tcp r.write()": (lambda: tcp.write(value), a.tcp_n),
        }
        redis_why = ""
        rc = None
        try:
            import redis  # type: ignore

            port = start_redis(procs)
            if port is None:
                redis_why = "redis-server not found"
            else:
                rc = redis.Redis(host="127.0.0.1", port=port)
                rc.set("bench4k", value)
                cases["redis-py GET"] = (lambda: rc.get("bench4k"), a.tcp_n)  # type: ignore[union-attr]
                cases["redis-py SET"] = (lambda: rc.set("bench4k", value), a.tcp_n)  # type: ignore[union-attr]
        except ImportError:
            redis_why = "redis-py not importable by %s (Debian: python3-redis, for /usr/bin/python3)" % sys.executable
        for fn, k in cases.values():  # warm up
            per_op(fn, max(1, k // 10))
        res: Dict[str, List[float]] = {k: [] for k in cases}
        for _ in range(a.rounds):
            for name, (fn, k) in cases.items():
                res[name].append(per_op(fn, k))
        med = {k: statistics.median(v) for k, v in res.items()}
        best = {k: min(v) for k, v in res.items()}
        rows = []

        def row(name: str, base: str, goal: str, faster_is: str) -> None:
            if name not in med or base not in med:
                return
            ratio = med[name] / med[base]
            rows.append((name, med[name], base, med[base], ratio, best[name] / best[base], goal))

        row("local r.read()", "bytes(mm[5:5+n])", "within 2x: <= 2.0", "time")
        row("local r.read()", "original shared_memory + check-then-set", "faster: < 1.0", "time")
        row("tcp r.read()", "redis-py GET", ">= 1.0x the rate: <= 1.0", "time")
        row("tcp r.write()", "redis-py SET", ">= 1.0x the rate: <= 1.0", "time")
        out = {
            "python": sys.version.split()[0],
            "rounds": a.rounds,
            "median_ns": {k: round(v * 1e9, 1) for k, v in med.items()},
            "best_ns": {k: round(v * 1e9, 1) for k, v in best.items()},
            "ratios": [{"case": r[0], "baseline": r[2], "time_ratio": round(r[4], 3), "best_ratio": round(r[5], 3), "goal": r[6]} for r in rows],
        }
        if redis_why:
            out["redis"] = "skipped: " + redis_why
        if a.json:
            print(json.dumps(out, indent=2))
        else:
            if a.markdown:
                load = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "unknown"
                print(SECTION % {"python": out["python"], "rounds": a.rounds, "local_n": a.local_n, "tcp_n": a.tcp_n, "load": load})
            else:
                print("Python %s, %d rounds, 4 KiB content, median per call" % (out["python"], a.rounds))
            print()
            print("| case | per call | baseline | per call | time ratio (medians) | time ratio (best rounds) | goal | |")
            print("|---|---|---|---|---|---|---|---|")
            for name, t, base, tb, ratio, bratio, goal in rows:
                limit = 2.0 if "2.0" in goal else 1.0
                ok = ratio < limit if "< 1.0" in goal else ratio <= limit
                print("| %s | %s | %s | %s | %.2fx | %.2fx | %s | %s |" % (name, fmt(t), base, fmt(tb), ratio, bratio, goal, "goal met" if ok else "**goal missed**"))
            if redis_why:
                print("\nRedis rows skipped: " + redis_why)
        orig_close()
        mm.close()
        os.close(fd)
        local.close()
        tcp.close()
        if rc is not None:
            rc.close()
        return 0
    finally:
        procs.close()


SECTION = """## Python

The Python client (`python/`) against its baselines, measured by
`python3 python/bench/compare.py` (run by `go run ./scripts/compare`): Python
%(python)s, %(rounds)d interleaved rounds of %(local_n)d local and %(tcp_n)d TCP
calls per case, median per call, one connection, 4 KiB of content. The
time ratio is this case's time over its baseline's: the ratio of the
medians, and of the best rounds (the least disturbed by the machine's
other work). Load average at the start: %(load)s.

- `local r.read()`: `shmgr.connect(..., mode="local")` on this machine: the
  seqlock read of the mapping (seq word, offset-0 flag and length, retired
  flag, the copy, the re-check).
- `bytes(mm[5:5+n])`: a bare copy from a plain `mmap` of the same object,
  with no check at all: the floor (goal: within 2x).
- `original shared_memory + check-then-set`: the original design's read,
  `multiprocessing.shared_memory` with its lock flag taken by check-then-set
  around the copy (goal: faster).
- `tcp r.read()` / `tcp r.write()`: `mode="tcp"` (GET and SET with an
  idempotency key) against redis-py `GET` / `SET` on a Redis started on
  loopback by the script (goal: at least redis-py's rate, a time ratio of at
  most 1.0)."""


def fmt(sec: float) -> str:
    if sec < 1e-6:
        return "%.0f ns" % (sec * 1e9)
    return "%.1f us" % (sec * 1e6)


if __name__ == "__main__":
    sys.exit(main())
