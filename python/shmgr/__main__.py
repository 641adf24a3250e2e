"""Command line: ``python3 -m shmgr read|write|watch|ls``.

    python3 -m shmgr read --host 127.0.0.1:9410 --id default
    python3 -m shmgr write "hello"            (or -f FILE, or stdin)
    python3 -m shmgr watch --count 3
    python3 -m shmgr ls --json

The host comes from --host, else SHMGR_HOST, else 127.0.0.1:9410; the
token from --token, else SHMGR_TOKEN; a TLS pin from --tls-fingerprint,
else SHMGR_TLS_FINGERPRINT. Exit codes: 0 success, 1 failure, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, List, Optional, Sequence

from . import errors
from .region import Client, connect


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default=os.environ.get("SHMGR_HOST") or "127.0.0.1:9410", help="host address HOST[:PORT] (env SHMGR_HOST)")
    common.add_argument("--token", default=os.environ.get("SHMGR_TOKEN") or None, help="token for a host that requires one (env SHMGR_TOKEN)")
    common.add_argument("--tls", action="store_true", help="connect with TLS")
    common.add_argument("--tls-fingerprint", default=os.environ.get("SHMGR_TLS_FINGERPRINT") or None, help="accept only the host certificate with this SHA-256 fingerprint (env SHMGR_TLS_FINGERPRINT)")
    common.add_argument("--tls-ca", default=None, help="verify the host certificate against this CA bundle (PEM)")
    common.add_argument("--timeout", type=float, default=10.0, help="give up after this many seconds")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    region = argparse.ArgumentParser(add_help=False)
    region.add_argument("--id", default=None, help="region shm_id (default: the host's default region)")
    region.add_argument("--mode", default="auto", choices=["auto", "local", "tcp"], help="how to read the region")

    p = argparse.ArgumentParser(prog="python3 -m shmgr", description="Read, write, watch and list shmgr regions.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    rd = sub.add_parser("read", parents=[common, region], help="print a region's content")
    rd.add_argument("--consistent", action="store_true", help="on a cluster host: a linearizable read, confirmed with the leader (refused if it cannot be reached)")
    w = sub.add_parser("write", parents=[common, region], help="replace a region's content")
    w.add_argument("text", nargs="?", help="the content (default: standard input)")
    w.add_argument("-f", "--file", help="write the content of this file")
    w.add_argument("--if-version", type=int, default=None, help="write only if the region is still at this version")
    wa = sub.add_parser("watch", parents=[common, region], help="print each new version of a region")
    wa.add_argument("--count", type=int, default=0, help="exit after this many versions (0: run until interrupted)")
    wa.add_argument("--from", dest="from_version", type=int, default=None, help="print only versions after this one")
    sub.add_parser("ls", parents=[common], help="list the host's regions")
    return p


def _tls(a: argparse.Namespace) -> Any:
    return dict(tls=a.tls, tls_fingerprint=a.tls_fingerprint, tls_ca=a.tls_ca, timeout=a.timeout, connect_timeout=min(a.timeout, 5.0))


def _out(s: str) -> None:
    sys.stdout.write(s)
    sys.stdout.flush()


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line argv and returns the exit code."""
    try:
        a = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else 2
    try:
        if a.cmd == "ls":
            with Client(a.host, a.token, **_tls(a)) as c:
                regions = c.list()
            if a.json:
                _out(json.dumps([r.raw for r in regions]) + "\n")
            else:
                _out("".join("%s\t%s\t%d\tv%d\n" % (r.shm_id, r.layout, r.size, r.version) for r in regions))
            return 0
        with connect(a.host, a.id, a.token, a.mode, **_tls(a)) as r:
            if a.cmd == "read":
                data, v = r.read_version(consistent=a.consistent)
                if a.json:
                    _out(json.dumps({"shm_id": r.shm_id, "version": v, "mode": r.mode, "content": data.decode("utf-8", "replace")}) + "\n")
                else:
                    sys.stdout.buffer.write(data + b"\n")
                    sys.stdout.flush()
                return 0
            if a.cmd == "write":
                if a.file is not None:
                    with open(a.file, "rb") as f:
                        data = f.read()
                elif a.text is not None:
                    data = a.text.encode("utf-8")
                else:
                    data = sys.stdin.buffer.read()
                v = r.write(data) if a.if_version is None else r.write_if(data, a.if_version)
                _out((json.dumps({"shm_id": r.shm_id, "version": v}) if a.json else "version %d" % v) + "\n")
                return 0
            n = 0
            with r.watch(a.from_version) as w:
                for ev in w:
                    if a.json:
                        _out(json.dumps({"shm_id": r.shm_id, "version": ev.version, "skipped": ev.skipped, "content": ev.content.decode("utf-8", "replace")}) + "\n")
                    else:
                        _out("%d\t%s\n" % (ev.version, ev.content.decode("utf-8", "replace")))
                    n += 1
                    if a.count and n >= a.count:
                        break
            return 0
    except errors.Error as e:
        sys.stderr.write("shmgr: %s: %s\n" % (type(e).__name__, e))
        return 1
    except KeyboardInterrupt:
        return 1
    except (OSError, ValueError) as e:
        sys.stderr.write("shmgr: %s\n" % e)
        return 1


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of ``python3 -m shmgr``."""
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
