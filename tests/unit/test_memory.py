"""bot.memory: freed heap memory goes back to the OS (the soak's steady RSS creep, issue 9)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from bot.memory import _TRIM, release_freed_memory


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(_TRIM is None or not Path("/proc/self/status").exists(), reason="glibc on Linux only")
def test_freed_chunks_below_live_ones_are_returned() -> None:
    """What a worker's heap looks like after a while: large blocks (malloc, not pymalloc) freed
    around a few that stay alive, which pins them in glibc's heap until malloc_trim."""
    blocks = [bytearray(2048) for _ in range(40_000)]  # ~80 MB from malloc's main heap
    kept = blocks[::40]  # one live block every 80 KB: no free run reaches the top of the heap
    del blocks
    gc.collect()
    before = rss_kb()
    assert release_freed_memory()
    after = rss_kb()
    assert before - after > 40_000, (before, after)  # most of the ~78 MB freed is resident no more
    assert len(kept) == 1000
