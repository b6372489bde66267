"""Benchmark: every dataset statistic (figures excluded) on an 80,000-instance release-format dataset.

Target (issue 4): loading the dataset, computing all statistics and writing their CSV tables takes
under 15 s and under 2 GiB peak memory. The dataset is made by scaling 400 synthetic records
(`m3el_lib.data.synthetic`) to 80,000: each copy gets its own Qids and picture paths, so entities and
pictures are as distinct as in a real release. Pictures are listed but not written (text-only on
disk): every listed file is still looked up, and found missing. The measurement runs in a child
process, so its peak resident memory is that of loading plus statistics alone.

    python benchmarks/bench_stats.py [--instances N] [--candidates K]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 15.0
TARGET_BYTES = 2 * 1024**3
BASE_RECORDS = 400


def _shift(record: dict, copy: int, stride: int) -> dict:
    """The record with every Qid (and picture path) moved to copy `copy`'s own range."""
    def qid(value: str) -> str:
        return f"Q{int(value[1:]) + copy * stride}"

    def image(value: list[str] | None) -> list[str] | None:
        return None if value is None else [value[0], value[1], f"c{copy}/{value[2]}"]

    shifted = dict(record, Qid=qid(record["Qid"]), image=image(record["image"]), instance_id=f"{record['instance_id']}-{copy}")
    shifted["candidates"] = [dict(c, Qid=qid(c["Qid"]), image=image(c["image"])) for c in record["candidates"]]
    return shifted


def generate(out_dir: Path, instances: int, candidates: int) -> Path:
    """Write `instances` records to `out_dir/all.jsonl`, streaming (no picture files)."""
    from m3el_lib.data.io import instance_to_record
    from m3el_lib.data.synthetic import make_instances

    base, _ = make_instances(BASE_RECORDS, seed=0, candidates=candidates, image_every=2)
    records = [instance_to_record(inst) for inst in base]
    stride = BASE_RECORDS * candidates + 1
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "all.jsonl", "w", encoding="utf-8") as handle:
        for index in range(instances):
            record = _shift(records[index % BASE_RECORDS], index // BASE_RECORDS, stride)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out_dir


def measure(dataset: Path, out_dir: Path) -> dict:
    """Load, compute every statistic, write the CSV tables; times and peak memory of this process."""
    from m3el_lib.data.io import load_dataset
    from m3el_lib.statistics.core import compute_stats
    from m3el_lib.statistics.pipeline import write_stats

    start = time.perf_counter()
    data = load_dataset(dataset)
    loaded = time.perf_counter()
    stats = compute_stats(data, check_files=True, label="benchmark")
    computed = time.perf_counter()
    write_stats(stats, out_dir, profile="sample", parameters={"benchmark": True}, figures=False)
    written = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    return {
        "instances": stats.overview["instances"],
        "entities": stats.overview["entities"],
        "candidates": stats.overview["candidates_total"],
        "load_s": loaded - start,
        "stats_s": computed - loaded,
        "write_s": written - computed,
        "total_s": written - start,
        # CPU time of the whole child (imports included): what the wall time would be on an idle core.
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_bytes": peak_kib * 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=80_000)
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.measure.parent / "tables")))
        return 0
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="m3el-bench-stats-") as tmp:
        started = time.perf_counter()
        dataset = generate(Path(tmp) / "data", args.instances, args.candidates)
        print(f"generated {args.instances:,} records x {args.candidates} candidates in "
              f"{time.perf_counter() - started:.1f} s ({(dataset / 'all.jsonl').stat().st_size / 1e6:.0f} MB)")
        child = subprocess.run([sys.executable, __file__, "--measure", str(dataset)],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(child.stdout, child.stderr, sep="\n")
            return 1
        result = json.loads(child.stdout.strip().splitlines()[-1])
    seconds, peak = result["total_s"], result["peak_bytes"]
    print(f"instances {result['instances']:,}  entities {result['entities']:,}  candidates {result['candidates']:,}")
    print(f"load {result['load_s']:.1f} s + statistics {result['stats_s']:.1f} s + CSV tables {result['write_s']:.1f} s"
          f" = {seconds:.1f} s  (target < {TARGET_SECONDS:.0f} s: {seconds / TARGET_SECONDS:.0%} of it)")
    print(f"CPU time of the measuring process {result['cpu_s']:.1f} s (imports included); load average before: "
          f"{load:.1f} on {os.cpu_count()} cores (a busy machine inflates the wall time)")
    print(f"peak memory {peak / 1024**2:,.0f} MiB  (target < {TARGET_BYTES / 1024**3:.0f} GiB: {peak / TARGET_BYTES:.0%} of it)")
    met = seconds < TARGET_SECONDS and peak < TARGET_BYTES
    print("target met" if met else "TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
