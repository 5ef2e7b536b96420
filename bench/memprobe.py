"""Memory probe inside the soak's bot workers: what the Python heap holds, not just RSS.

Why: RSS alone cannot tell a leak from an allocator keeping freed memory (glibc's malloc and
pymalloc's arenas both keep pages after a peak). So at moments the benchmark chooses (signals),
the probe writes one line of figures to `<folder>/<pid>.jsonl` and, with tracemalloc on, a snapshot
`<folder>/<pid>-<label>.snap` that the benchmark compares between the end of the warm-up and the
end of the run (`compare_to(..., "traceback")`).

It runs only when CARECIRCLE_MEMPROBE names a folder; `bench.soak --memprobe` starts the workers
with a `sitecustomize` shim (`shim()`) that calls `start_from_env()`, so no bot code knows about it.
CARECIRCLE_MEMPROBE_FRAMES: tracemalloc frames per allocation (0 = no tracemalloc: figures only);
tracing starts at the first snapshot, so the traced total is what was allocated after it and is
still alive (tracing the imports would also slow a worker's start past a minute).

Figures: rss_kb and RSS by kind of mapping, pymalloc's arenas (used / free inside), glibc's
mallinfo2 (in use / free but kept / mmapped), blocks (sys.getallocatedblocks), objects (gc-tracked,
after a gc.collect), threads, traced_kb (tracemalloc's live total) and its own overhead. The probe
itself costs memory when tracing (its tables, and the snapshot while it is written), so RSS
figures of a run with tracemalloc are not the plain run's.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ENV_DIR = "CARECIRCLE_MEMPROBE"
ENV_FRAMES = "CARECIRCLE_MEMPROBE_FRAMES"
FIGURES = signal.SIGUSR1  # one line of figures
SNAPSHOT = signal.SIGUSR2  # figures and a tracemalloc snapshot (tracing starts at the first)
FINAL = signal.SIGRTMIN  # figures, a snapshot, then malloc_trim(0) and the RSS after it


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def rss_kb(pid: int | str = "self") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def pymalloc_kb() -> dict[str, int]:
    """pymalloc's arenas (1 MiB each, mmapped): in use by objects vs. free inside kept arenas.

    sys._debugmallocstats() writes to the C stderr, so fd 2 is pointed at a file for the moment
    (a log line another thread writes in that instant ends up there, not in the log)."""
    import tempfile

    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")

    def number(label: str) -> int:
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        return int(m.group(1).replace(",", "")) if m else 0
    arenas = number("# arenas allocated current")
    return {"pymalloc_arenas_kb": arenas * 1024, "pymalloc_used_kb": number("# bytes in allocated blocks") // 1024,
            "pymalloc_free_kb": arenas * 1024 - number("# bytes in allocated blocks") // 1024}


def mappings_kb() -> dict[str, int]:
    """RSS by kind of mapping: files (code, libraries), the brk heap (glibc's main arena), and
    anonymous mmaps (pymalloc arenas, glibc's per-thread arenas, large blocks, thread stacks)."""
    out = {"rss_files_kb": 0, "rss_brk_heap_kb": 0, "rss_anon_kb": 0}
    kind = "rss_anon_kb"
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            name = head[5] if len(head) > 5 else ""
            kind = ("rss_brk_heap_kb" if name == "[heap]" else "rss_files_kb" if name.startswith("/")
                    else "rss_anon_kb")
        elif line.startswith("Rss:"):
            out[kind] += int(line.split()[1])
    return out


def figures() -> dict[str, int | None]:
    """One sample of the process's memory, in KB (objects and blocks: counts)."""
    gc.collect()  # what is live, not what waits for the collector
    out: dict[str, int | None] = {"rss_kb": rss_kb(), "blocks": sys.getallocatedblocks(),
                                  "objects": len(gc.get_objects())}
    out.update(mappings_kb())
    if not tracemalloc.is_tracing():  # with tracemalloc's hooks in place pymalloc reports nothing
        out.update(pymalloc_kb())
    out["threads"] = len(os.listdir("/proc/self/task"))
    if tracemalloc.is_tracing():
        out["traced_kb"] = tracemalloc.get_traced_memory()[0] // 1024
        out["tracemalloc_overhead_kb"] = tracemalloc.get_tracemalloc_memory() // 1024
    libc = _libc()
    if libc is not None and hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        out["malloc_in_use_kb"] = info.uordblks // 1024
        out["malloc_free_kept_kb"] = info.fordblks // 1024
        out["malloc_mmapped_kb"] = info.hblkhd // 1024
    return out


class Probe:
    """Answers the signals from a thread of its own: a signal handler runs on the bot's event loop
    thread between two bytecodes, so it only queues the request."""

    def __init__(self, folder: Path, frames: int) -> None:
        self.folder = folder
        self.frames = frames
        self.requests: list[int] = []
        self.wake = threading.Event()
        self.count = 0

    def on_signal(self, signum: int, _frame: object) -> None:
        self.requests.append(signum)
        self.wake.set()

    def loop(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            while self.requests:
                signum = self.requests.pop(0)
                self.sample(snapshot=signum != FIGURES, trim=signum == FINAL)

    def sample(self, snapshot: bool, trim: bool) -> None:
        if snapshot and self.frames > 0 and not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
        label = f"{self.count:02d}"
        self.count += 1
        line: dict[str, object] = {"label": label, "time": time.time(), **figures()}
        line["snapshot"] = snapshot and tracemalloc.is_tracing()
        if line["snapshot"]:
            snap = tracemalloc.take_snapshot().filter_traces((
                tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)))
            snap.dump(str(self.folder / f"{os.getpid()}-{label}.snap"))
            del snap
        if trim:
            libc = _libc()
            if libc is not None:
                started = time.perf_counter()
                libc.malloc_trim(0)
                line["malloc_trim_ms"] = round((time.perf_counter() - started) * 1000, 2)
                line["rss_after_malloc_trim_kb"] = rss_kb()
        with open(self.folder / f"{os.getpid()}.jsonl", "a") as out:
            out.write(json.dumps(line) + "\n")


def start_from_env() -> None:
    """Called by the sitecustomize shim in every process the soak starts; only bot workers probe."""
    folder = os.environ.get(ENV_DIR)
    if not folder or "--worker" not in sys.argv:
        return
    probe = Probe(Path(folder), int(os.environ.get(ENV_FRAMES, "0")))
    for signum in (FIGURES, SNAPSHOT, FINAL):
        signal.signal(signum, probe.on_signal)
    threading.Thread(target=probe.loop, name="memprobe", daemon=True).start()


def shim(folder: Path) -> Path:
    """A folder holding a `sitecustomize.py` that starts the probe; put it first on PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import bench.memprobe\nbench.memprobe.start_from_env()\n")
    return folder
