"""`make bench`: run every benchmark module's `main()` in turn at its default size.

A benchmark is any `bench/<name>.py` (except `common` and this file) that defines
`main(argv=None)`; each prints its own JSON lines. Discovery keeps `make bench` complete when
someone adds a benchmark, without editing this file. `python -m bench name ...` runs only those.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path

SKIP = {"common", "__main__"}


def discover() -> list[str]:
    """Names of the benchmark modules, alphabetically."""
    folder = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.name not in SKIP and not m.ispkg)


def main(argv: list[str] | None = None) -> int:
    wanted = list(sys.argv[1:] if argv is None else argv)
    failed = 0
    for name in discover():
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if not callable(run):
            continue
        start = time.perf_counter()
        try:
            run([])
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed += 1
            traceback.print_exc()
            print(json.dumps({"bench": name, "metric": "error", "value": None, "unit": "",
                              "error": f"{exc.__class__.__name__}: {exc}"}), flush=True)
        print(json.dumps({"bench": name, "metric": "wall_seconds", "value": round(time.perf_counter() - start, 1),
                          "unit": "s"}), file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
