"""m3el_lib: the library behind the M³EL companion (arXiv 2410.18096).

The packages follow the paper and the book's chapters (see docs/ARCHITECTURE.md):
`data` (record format, loading, which dataset, registry, provenance), `construction` (chapter 1),
`statistics` (chapter 2), `models` and `evaluation` (chapter 3), `training` (chapter 4, CLIP_ND),
`reports` (tables, figures, model cards), `paper` (the paper's reference numbers), `book`
(the book runner) and `cli` (the `m3el` command line).

What a notebook or a script needs most is importable from here; names load on first use, so
`import m3el_lib` stays cheap:

    import m3el_lib as m3el
    dataset = m3el.open_dataset(profile="sample")          # builds M³EL-mini when missing
    result, _ = m3el.run_model_evaluation("m3el-mini-dual")  # every task, with intervals
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "get_profile": "config", "resolve_device": "config", "model_choice": "config",
    "Task": "data.schema", "TASKS": "data.schema", "TASK_NAMES": "data.schema", "Instance": "data.schema",
    "Entity": "data.schema", "Dataset": "data.io", "DatasetError": "data.io", "load_dataset": "data.io",
    "DatasetRef": "data.datasets", "resolve_dataset": "data.datasets", "open_dataset": "data.datasets",
    "ensure_sample": "construction.sample", "build_dataset": "construction.build",
    "compute_stats": "statistics.core", "run_stats": "statistics.pipeline",
    "load_model": "models.loading", "model_scorer": "evaluation.scoring", "evaluate": "evaluation.metrics",
    "run_model_evaluation": "evaluation.pipeline", "run_baselines": "evaluation.pipeline",
    "TrainConfig": "training.config", "train": "training.engine", "run_experiment": "training.experiments",
    "RunDir": "training.runs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'm3el_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
