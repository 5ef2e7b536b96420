"""Hand memory that glibc's malloc keeps after `free` back to the OS, once a minute.

Why: in the soak (issue 9, `python -m bench.soak --memprobe 0`) a worker's RSS kept creeping about
1 MB a minute after its warm-up while what the process holds stayed flat (pymalloc's blocks, gc
objects, malloc's bytes in use; tracemalloc's traced total +0.4 MB in 3 minutes, bounded caches).
The growth was free memory inside glibc's main heap: chunks freed below live ones (connection
buffers, large strings and dicts, allocated and freed all the time) stay resident, and glibc gives
back only the top of the heap by itself. `malloc_trim(0)` also returns the whole free pages in the
middle (madvise), so RSS follows what is in use. It returned 110 MB in 15 ms in a test; a worker's
minute of frees is a few MB (about 1 ms). Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

TRIM_EVERY = 60.0  # seconds


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """One malloc_trim(0); True when it ran (glibc)."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


async def release_freed_memory_forever(every: float = TRIM_EVERY) -> None:
    """The process's background loop (bot.app starts one per process, worker or not)."""
    if _TRIM is None:
        return
    while True:
        await asyncio.sleep(every)
        release_freed_memory()
