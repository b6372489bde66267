"""Construction time per instance at 1x, 2x and 4x the M³EL-mini size (offline snapshot).

1x is M³EL-mini itself (5 topics x 400 entities). The larger runs add the sixth snapshot topic and
more entities per topic, which are mostly text-only (the pictured entities are already in 1x).
If candidate search were quadratic, the time per instance would grow with the run size; the
target is that it stays within 1.5x of the 1x figure. Each size is built twice; the faster counts.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from m3el_lib.construction.build import build_dataset  # noqa: E402
from m3el_lib.construction.sample import SAMPLE_PARAMETERS  # noqa: E402
from m3el_lib.construction.snapshot import SnapshotSource  # noqa: E402

LIMIT = 1.5


def per_topic_for(source: SnapshotSource, topics: list[str], entities: int) -> int:
    """The smallest per-topic count giving at least `entities` entities over `topics`."""
    sizes = [len(source.topic_entities(t)) for t in topics]
    if sum(sizes) < entities:
        raise SystemExit(f"the snapshot has only {sum(sizes)} entities in {topics}, {entities} asked")
    low, high = 1, max(sizes)
    while low < high:
        middle = (low + high) // 2
        if sum(min(middle, s) for s in sizes) >= entities:
            high = middle
        else:
            low = middle + 1
    return low


def timed_build(source: SnapshotSource, topics: list[str], per_topic: int) -> tuple[float, int]:
    best = float("inf")
    instances = 0
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="m3el-bench-") as tmp:
            params = {**SAMPLE_PARAMETERS, "topics": topics, "per_topic": per_topic}
            start = time.perf_counter()
            manifest = build_dataset(source, Path(tmp) / "out", progress=False, **params)
            best = min(best, time.perf_counter() - start)
            instances = manifest["counts"]["instances"]
    return best, instances


def main() -> int:
    source = SnapshotSource()
    base_topics = list(SAMPLE_PARAMETERS["topics"])
    base_entities = len(base_topics) * SAMPLE_PARAMETERS["per_topic"]
    runs = [(1, base_topics, SAMPLE_PARAMETERS["per_topic"])]
    for factor in (2, 4):
        topics = source.topics()
        runs.append((factor, topics, per_topic_for(source, topics, factor * base_entities)))
    figures = []
    for factor, topics, per_topic in runs:
        seconds, instances = timed_build(source, topics, per_topic)
        figures.append((factor, seconds, instances))
        print(f"{factor}x: {len(topics)} topics x {per_topic:>4} entities -> {instances:>5} instances in {seconds:6.2f} s"
              f"  = {1000 * seconds / instances:.3f} ms/instance")
    base = figures[0][1] / figures[0][2]
    ok = True
    for factor, seconds, instances in figures[1:]:
        ratio = (seconds / instances) / base
        met = ratio <= LIMIT
        ok &= met
        print(f"time per instance at {factor}x / at 1x = {ratio:.2f}  (target <= {LIMIT})  {'met' if met else 'MISSED'}")
    print(f"M³EL-mini (1x) built in {figures[0][1]:.2f} s (target < 60 s)  {'met' if figures[0][1] < 60 else 'MISSED'}")
    return 0 if ok and figures[0][1] < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
