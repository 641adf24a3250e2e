"""The read fence a seqlock reader needs on this CPU, if any.

A seqlock read is: load the seq word, copy, load it again. The copy's
loads must not move after the second seq load, nor before the first.
x86 never reorders a load with a later load (TSO), so plain loads do.
arm64, POWER and RISC-V may: there a reader needs an acquire fence between
the loads, and pure Python has none. The C runtime's ``libatomic`` exports
``atomic_thread_fence`` (GCC's libatomic, Debian ``libatomic1``), called
through ctypes: one foreign call per fence. Where it is missing, a local reader
cannot be made safe, and the client reads over TCP instead, saying why.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from typing import Callable, NamedTuple, Optional

#: CPUs whose loads stay in order: no fence needed.
ORDERED = frozenset({"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"})

#: C11's memory_order_acquire, the argument of atomic_thread_fence.
MEMORY_ORDER_ACQUIRE = 2


class Fence(NamedTuple):
    """How reads are ordered on this CPU.

    ``call`` is None when no fence is needed, else the function to call
    between the loads; ``how`` says which, for Region.fence. ``usable`` is
    False when the CPU needs a fence this process cannot get (then
    ``how`` says why and local reads are refused)."""

    usable: bool
    call: Optional[Callable[[], None]]
    how: str


def _load_libatomic() -> Optional[Callable[[int], None]]:
    names = [ctypes.util.find_library("atomic"), "libatomic.so.1", "libatomic.dylib"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            fn = lib.atomic_thread_fence
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        return fn
    return None


def choose(machine: Optional[str] = None, load: Callable[[], Optional[Callable[[int], None]]] = _load_libatomic) -> Fence:
    """Returns the read fence for a CPU (default: this one, as
    platform.machine() names it). load finds libatomic's fence; tests pass
    their own to see both outcomes."""
    m = (machine or platform.machine()).lower()
    if m in ORDERED:
        return Fence(True, None, "none needed (%s keeps loads in order)" % m)
    found = load()
    if found is None:
        return Fence(False, None, "%s needs a read fence and libatomic's atomic_thread_fence is not available (install libatomic1)" % m)

    fn: Callable[[int], None] = found

    def acquire() -> None:
        fn(MEMORY_ORDER_ACQUIRE)

    return Fence(True, acquire, "libatomic atomic_thread_fence(acquire) via ctypes (%s)" % m)
