"""Attach to a shmgr region by its OS name, as a program that knows only
the documented layout would, and print what it sees as one JSON object.

Usage: python3 attach.py OS_NAME

IMPORTANT: before Python 3.13, SharedMemory registers every segment it
opens with multiprocessing's resource_tracker, which UNLINKS it when this
process exits. We only borrow the segment: pass track=False (3.13+) or
unregister it right after attaching.
"""

import json
import sys
from multiprocessing import shared_memory


def attach(name):
    try:
        return shared_memory.SharedMemory(name=name, track=False)  # 3.13+
    except TypeError:
        shm = shared_memory.SharedMemory(name=name)
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


def main():
    shm = attach(sys.argv[1])
    try:
        head = bytes(shm.buf[0:5])
        lock = head[0]
        length = int.from_bytes(head[1:5], "little")
        data = bytes(shm.buf[5 : 5 + length])
        size = shm.size
    finally:
        shm.close()
    json.dump({"size": size, "lock": lock, "length": length, "data_hex": data.hex()}, sys.stdout)


if __name__ == "__main__":
    main()
