"""Run the benchmarks: ``python -m bench`` runs every ``bench/bench_*.py``; ``python -m bench rules store``
runs only ``bench_rules`` and ``bench_store``. Each module's ``main()`` prints lines like
``<name>: <figure> <unit> (target >= <floor>)``."""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules, without the ``bench_`` prefix."""
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def main(names: list[str]) -> int:
    known = available()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"no benchmark called {', '.join(unknown)}; available: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or known:
        print(f"== bench_{name} ==", flush=True)
        began = time.perf_counter()
        try:
            importlib.import_module(f"bench.bench_{name}").main()
        except Exception:  # noqa: BLE001 - report and go on with the other benchmarks
            traceback.print_exc()
            failed.append(name)
        print(f"   ({time.perf_counter() - began:.1f} s)", flush=True)
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
