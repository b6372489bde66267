"""Helpers shared by the benchmarks: peak memory, timing, a scaled release-format dataset."""
from __future__ import annotations

import json
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "release" / "published_example.json"


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@contextmanager
def timed() -> Iterator[dict]:
    box: dict = {}
    start = time.perf_counter()
    yield box
    box["seconds"] = time.perf_counter() - start


def write_scaled_release(path: Path, n: int) -> Path:
    """n release-format records made from the published-shape fixture, with distinct ids."""
    template = json.loads(FIXTURE.read_text())[0]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            record = json.loads(json.dumps(template))
            offset = 10 * i
            for j, candidate in enumerate(record["candidates"]):
                candidate["Qid"] = f"Q{offset + j + 1}"
            record["Qid"] = record["candidates"][1]["Qid"]
            record["sentence"] = f"{record['sentence']} (variant {i})"
            record["topic"] = ("movies", "nature", "geography", "science", "people")[i % 5]
            record["split"] = ("train", "val", "test")[i % 3]
            handle.write(json.dumps(record) + "\n")
    return path


def verdict(name: str, value: float, limit: float, unit: str) -> bool:
    ok = value <= limit
    print(f"{name:<44} {value:8.2f} {unit:<4} target <= {limit:g} {unit}  ratio {value / limit:.2f}  {'met' if ok else 'MISSED'}")
    return ok


def pipeline_throughput(trainer, batches: int) -> tuple[int, float, int]:
    """(pictures, seconds, batches) the trainer's data pipeline delivers after its first batch
    (worker start-up is not throughput), with no model step in between."""
    import time

    started, pictures, seen = time.perf_counter(), 0, 0
    for batch in trainer._loader(0, 0):
        pictures += batch.pictures
        seen += 1
        if seen == 1:
            started, pictures = time.perf_counter(), 0
        if seen > batches:
            break
    return pictures, time.perf_counter() - started, seen - 1

