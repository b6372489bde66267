"""M³EL-mini, the embedded sample: built from the committed snapshot on first use.

`ensure_sample()` returns the sample's folder (`config.dataset_dir("m3el-mini")`), building it
when it is missing, when the snapshot changed (a cheap checksum of `snapshot.json` and
`entities.jsonl.gz`) or when the sample's parameters changed. Notebooks and tests in the sample
profile just call it.

The sample's parameters are ours: the snapshot's first five topics (people, which its picture
sources almost never show, is left out), every entity of a topic that has a picture or shares its
exact name with another entity (the homonyms that make the candidates hard; M³EL's candidates
share the mention's name), 3 negatives, up to 4 mentions an entity (one per other picture of it),
an augmented view for 40% of the single-picture entities (the rest get a text-only mention, so
distinct pictures stay at least 85% of mention pictures), seed 0, and a 55/10/35 split by entity;
the larger test share is what gives every picture task at least 400 test instances and every
topic at least 40 on every task (measured in the statistics chapter and pinned by the tests).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import config
from .build import build_dataset
from .snapshot import SNAPSHOT_TOPICS, SnapshotSource, snapshot_checksum

SAMPLE_PARAMETERS: dict[str, Any] = {
    "topics": list(SNAPSHOT_TOPICS[:5]),
    "per_topic": None,
    "candidates": 3,
    "seed": 0,
    "max_mentions": 4,
    "split_ratios": {"train": 0.55, "val": 0.1, "test": 0.35},
    "augmented_share": 0.4,
    "homonyms_only_for_text": True,
}


def sample_is_current(path: Path, snapshot: Path = config.SNAPSHOT_DIR) -> bool:
    """True when `path` holds a sample built from this snapshot with these parameters."""
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    built_from = manifest.get("source", {}).get("versions", {}).get("snapshot_checksum")
    params = manifest.get("parameters", {})
    same_params = all(params.get(key) == value for key, value in SAMPLE_PARAMETERS.items())
    return built_from == snapshot_checksum(snapshot) and same_params


def build_sample(out_dir: Path | None = None, progress: bool = False, snapshot: Path = config.SNAPSHOT_DIR) -> dict[str, Any]:
    """Build M³EL-mini (into the sample dataset folder by default) and return its manifest."""
    target = out_dir or config.dataset_dir(config.SAMPLE_DATASET_NAME)
    return build_dataset(SnapshotSource(snapshot), target, progress=progress, **SAMPLE_PARAMETERS)


def ensure_sample(progress: bool = False) -> Path:
    """The M³EL-mini folder, (re)built from the snapshot when missing or out of date."""
    target = config.dataset_dir(config.SAMPLE_DATASET_NAME)
    if not sample_is_current(target):
        build_sample(target, progress=progress)
    return target
