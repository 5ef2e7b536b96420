"""bench/memprobe.py and the soak's memory report: the probe answers its signals inside another
process, and the report names what grew between the warm-up snapshot and the end (issue 9)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bench import memprobe
from bench.soak import memory_report, probe_lines, slope_per_minute

# A stand-in worker: "--worker" in argv, a list that grows between the second and the third snapshot.
WORKER = """
import os, signal, sys, time
from bench import memprobe
grown = []
def wait(n):
    while len(open(sys.argv[1] + f"/{os.getpid()}.jsonl").read().splitlines() if os.path.exists(
            sys.argv[1] + f"/{os.getpid()}.jsonl") else []) < n:
        time.sleep(0.02)
os.kill(os.getpid(), memprobe.SNAPSHOT); wait(1)
os.kill(os.getpid(), memprobe.SNAPSHOT); wait(2)
grown.extend(bytearray(1000) for _ in range(3000))  # ~3 MB that stays alive
os.kill(os.getpid(), memprobe.FINAL); wait(3)
print(os.getpid())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
async def test_probe_snapshots_name_what_grew(tmp_path: Path) -> None:
    out = tmp_path / "probe"
    out.mkdir()
    root = Path(__file__).parents[2]
    env = {**os.environ, memprobe.ENV_DIR: str(out), memprobe.ENV_FRAMES: "4",
           "PYTHONPATH": os.pathsep.join([str(memprobe.shim(tmp_path / "shim")), str(root)])}
    worker = await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, str(out), "--worker", "0/1", env=env,
                                                  cwd=root, stdout=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(worker.communicate(), 60)
    assert worker.returncode == 0
    pid = int(stdout.decode().strip())
    lines = await probe_lines(out, pid, 3, timeout=1)
    assert [line["snapshot"] for line in lines] == [True, True, True]
    assert "rss_after_malloc_trim_kb" in lines[2] and lines[2]["traced_kb"] - lines[1]["traced_kb"] > 2500
    report = memory_report([(0, 1000), (60, 2000), (120, 2000), (180, 2000)], 60, out, pid, lines)
    assert report["rss_warmup_growth_kb"] == 1000 and report["rss_steady_growth_kb"] == 0
    assert report["rss_steady_kb_per_minute"] == 0
    top = report["growers_after_warmup"]["by_traceback"][0]
    assert int(top.split()[0]) > 2500 and top.split(": ", 1)[1].startswith("<string>:11")  # the stand-in's line


def test_slope_is_kb_per_minute() -> None:
    assert slope_per_minute([(0, 100), (30, 150), (60, 200)]) == pytest.approx(100)
    assert slope_per_minute([(0, 100)]) is None
