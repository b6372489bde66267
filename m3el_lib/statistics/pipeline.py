"""The statistics pipeline: resolve and load a dataset, compute every statistic (`core`), write the
tables, the figures and the comparison table, each with provenance. Called by `m3el stats` and
notebook 02.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .. import config
from ..data.datasets import resolve_dataset
from ..data.provenance import write_provenance, write_result
from ..data.schema import Instance
from ..fsutil import atomic_write_text
from ..reports import stats_figures as figs
from ..reports.style import save_figure
from .core import DatasetStats, compute_stats, example_instances, overview_table
from .mel_datasets import comparison_table

# What the sample's sentences are (see chapter 1); for other data we do not claim to know.
SAMPLE_CONTEXT = "Wikipedia lead paragraphs of Vital Articles (offline snapshot)"
SAMPLE_LABEL = "M³EL-mini (our sample)"


def _csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Tables indexed by topic (or split and topic) keep the index as columns in the CSV."""
    return table.reset_index() if table.index.name or any(table.index.names) else table


def write_stats(
    stats: DatasetStats,
    out_dir: Path | str,
    *,
    profile: str | None = None,
    parameters: dict[str, Any] | None = None,
    instances: Sequence[Instance] = (),
    root: Path | None = None,
    figures: bool = True,
    comparison: pd.DataFrame | None = None,
    max_candidates: int = 5,
) -> list[Path]:
    """Write every table as CSV (and figures as PNG + SVG), each with a provenance file beside it.

    `instances` and `root` feed the example gallery (one example per topic, pictures from root).
    """
    out_dir = Path(out_dir)
    parameters = {"out_dir": str(out_dir), **(parameters or {})}
    meta = {"profile": profile, "parameters": parameters, "data_checksum": stats.checksum}
    # Drawn before anything is written: a failure leaves the old outputs as they were.
    drawn = figs.all_figures(stats, example_instances(instances, root), root, max_candidates=max_candidates) if figures else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    frames = {"overview": overview_table(stats), **stats.tables}
    if comparison is not None:
        frames["mel_datasets"] = comparison
    for name, table in frames.items():
        path = atomic_write_text(out_dir / f"{name}.csv", _csv_frame(table).to_csv(index=False))
        write_provenance(path, **meta)
        written.append(path)
    written.append(write_result(out_dir / "stats.json", stats.overview, **meta))
    for name, fig in drawn.items():
        written += save_figure(fig, out_dir, name, provenance=meta)
    return written


def stats_dir(profile: str | None = None) -> Path:
    """Where a profile's statistics go: `results_dir(profile)/stats`."""
    return config.results_dir(profile) / "stats"


def run_stats(
    data: Path | str | None = None,
    out_dir: Path | str | None = None,
    *,
    profile: str | None = None,
    lenient: bool = False,
    figures: bool = True,
    check_files: bool = True,
) -> tuple[DatasetStats, list[Path]]:
    """Resolve the dataset (`data`, else the profile's), compute every statistic and write the
    tables, figures and comparison table. (stats, written paths)."""
    ref = resolve_dataset(data, profile)
    dataset = ref.load(strict=not lenient)
    is_sample = ref.name == config.SAMPLE_DATASET_NAME
    name = SAMPLE_LABEL if is_sample else ref.path.name
    stats = compute_stats(dataset, check_files=check_files, label=f"{ref.profile} profile · {name}")
    stats.rejection_summary = dataset.rejection_summary()
    target = Path(out_dir) if out_dir is not None else stats_dir(ref.profile)
    parameters = {"dataset_path": str(ref.path), "lenient": lenient, "check_files": check_files,
                  "figures": figures, "dataset_name": name}
    comparison = comparison_table(stats, dataset=name, profile=ref.profile,
                                  context_source=SAMPLE_CONTEXT if is_sample else "unknown")
    written = write_stats(stats, target, profile=ref.profile, parameters=parameters,
                          instances=dataset.instances, root=dataset.root, figures=figures, comparison=comparison)
    return stats, written
