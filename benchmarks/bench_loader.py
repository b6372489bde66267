"""Load + validate 80,000 release-format records: time per 10,000 records and peak memory.

Target (issue 2): the whole 80,000 in under 10 s and under 2 GiB on the 2-core machine.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_gib, timed, verdict, write_scaled_release  # noqa: E402

from m3el_lib.data.io import load_dataset  # noqa: E402

N = 80_000


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_scaled_release(Path(tmp) / "release.jsonl", N)
        baseline = peak_rss_gib()
        with timed() as t:
            dataset = load_dataset(path)
        assert len(dataset) == N
    print(f"loaded and validated {N:,} records in {t['seconds']:.2f} s "
          f"({t['seconds'] / (N / 10_000):.2f} s per 10,000); peak RSS {peak_rss_gib():.2f} GiB (before load {baseline:.2f})")
    ok = verdict("load+validate 80,000 records", t["seconds"], 10.0, "s")
    ok &= verdict("peak memory", peak_rss_gib(), 2.0, "GiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
