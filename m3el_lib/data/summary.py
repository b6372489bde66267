"""A quick summary of a loaded dataset: what `m3el validate` prints.

The full statistics (figures, distributions, comparisons) live in `m3el_lib.statistics.core`.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from .io import Dataset
from .schema import SPLITS, TASK_NAMES


def summarize(dataset: Dataset) -> dict[str, Any]:
    """Counts a reader checks first: instances, entities, topics, tasks x splits, images."""
    instances = dataset.instances
    topics = Counter(inst.topic or "(none)" for inst in instances)
    splits = Counter(inst.split or "(none)" for inst in instances)
    tasks = {name: {split: 0 for split in (*SPLITS, "(none)")} for name in TASK_NAMES}
    for inst in instances:
        for task in inst.tasks():
            tasks[task.name][inst.split or "(none)"] += 1
    candidate_counts = Counter(len(inst.candidates) for inst in instances)
    entities = {c.qid for inst in instances for c in inst.candidates}
    n = len(instances) or 1
    return {
        "path": str(dataset.root),
        "files": [str(f) for f in dataset.files],
        "checksum": dataset.checksum,
        "instances": len(instances),
        "rejected": len(dataset.rejected),
        "quarantine": str(dataset.quarantine_path) if dataset.quarantine_path else None,
        "entities": len(entities),
        "gold_entities": len({inst.qid for inst in instances}),
        "topics": dict(sorted(topics.items())),
        "splits": dict(sorted(splits.items())),
        "tasks": {name: {k: v for k, v in per.items() if v or k != "(none)"} | {"total": sum(per.values())}
                  for name, per in tasks.items()},
        "candidates_per_instance": {str(k): v for k, v in sorted(candidate_counts.items())},
        "image_coverage": {
            "mention": sum(inst.has_mention_image for inst in instances) / n,
            "gold_entity": sum(inst.gold.has_image for inst in instances) / n,
            "all_candidates": sum(all(c.has_image for c in inst.candidates) for inst in instances) / n,
        },
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as plain text for a terminal."""
    lines = [
        f"dataset     {summary['path']}",
        f"checksum    {summary['checksum']}",
        f"instances   {summary['instances']:,}   rejected {summary['rejected']:,}"
        + (f"   (quarantine: {summary['quarantine']})" if summary["quarantine"] else ""),
        f"entities    {summary['entities']:,}   gold entities {summary['gold_entities']:,}",
        "topics      " + ", ".join(f"{k} {v:,}" for k, v in summary["topics"].items()),
        "splits      " + ", ".join(f"{k} {v:,}" for k, v in summary["splits"].items()),
        "candidates  " + ", ".join(f"{k} per instance: {v:,}" for k, v in summary["candidates_per_instance"].items()),
        "images      " + ", ".join(f"{k} {v:.1%}" for k, v in summary["image_coverage"].items()),
        "tasks (instances per split; our reading: mention modality - entity modality)",
    ]
    for name, per in summary["tasks"].items():
        lines.append(f"  {name:<6} " + "  ".join(f"{k} {v:,}" for k, v in per.items()))
    return "\n".join(lines)
