"""Construction time per instance at 1x, 2x and 4x the M³EL-mini size (offline snapshot).

1x is M³EL-mini itself (5 topics, every pictured or same-name entity). The larger runs take all six
snapshot topics and any entity (`homonyms_only_for_text` off), as many per topic as give 2x and 4x
its entities; the added ones are mostly text-only (the pictured entities are already in 1x).
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


def timed_build(source: SnapshotSource, overrides: dict) -> tuple[float, dict]:
    best = float("inf")
    manifest: dict = {}
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="m3el-bench-") as tmp:
            start = time.perf_counter()
            manifest = build_dataset(source, Path(tmp) / "out", progress=False, **{**SAMPLE_PARAMETERS, **overrides})
            best = min(best, time.perf_counter() - start)
    return best, manifest


def main() -> int:
    source = SnapshotSource()
    seconds, manifest = timed_build(source, {})
    base_entities = sum(manifest["entities"]["selected_by_topic"].values())
    figures = [(1, seconds, manifest["counts"]["instances"])]
    print(f"1x: M³EL-mini, {base_entities} entities -> {figures[0][2]:>5} instances in {seconds:6.2f} s"
          f"  = {1000 * seconds / figures[0][2]:.3f} ms/instance")
    for factor in (2, 4):
        topics = source.topics()
        per_topic = per_topic_for(source, topics, factor * base_entities)
        seconds, manifest = timed_build(source, {"topics": topics, "per_topic": per_topic, "homonyms_only_for_text": False})
        instances = manifest["counts"]["instances"]
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
