"""Run every `benchmarks/bench_*.py` in its own process (so peak memory is its own) and report.

Each benchmark prints its figures and ratios against its target and exits non-zero when a target
is missed; this runner prints a one-line verdict per benchmark at the end.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The book benchmark times a build from nothing (and prints its profile) only with --fresh.
ARGUMENTS = {"bench_book": ["--fresh"]}


def main(selected: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if selected:
        scripts = [s for s in scripts if any(name in s.stem for name in selected)]
    verdicts = []
    for script in scripts:
        print(f"\n=== {script.stem}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *ARGUMENTS.get(script.stem, [])], cwd=HERE.parent)
        verdicts.append((script.stem, code, time.perf_counter() - start))
    print("\n=== summary")
    for name, code, seconds in verdicts:
        print(f"{name:<32} {'met' if code == 0 else 'MISSED'}  ({seconds:.0f} s)")
    return 0 if all(code == 0 for _, code, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
