"""A training run's folder: the one place that knows which file is which.

    best.pt              the export for evaluation (best validation epoch), with provenance
    last.pt              the resume state (model, optimiser, scheduler, RNG, data position)
    history.json         config, per-step and per-epoch logs, the data checksum
    train_summary.json   what the run did (steps, best metric, timings), with provenance
    train_log.csv        one row per logged optimiser step
    val_log.csv          one row per validation
    MODEL_CARD.md        written after training (`reports.model_card`)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as paths
from .config import TrainConfig


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def for_config(cls, config: TrainConfig) -> "RunDir":
        """`config.output_dir`, else `results_dir(profile)/<run_name>`."""
        folder = Path(config.output_dir) if config.output_dir else paths.results_dir(config.profile) / config.run_name
        return cls(folder)

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def history_file(self) -> Path:
        return self.path / "history.json"

    @property
    def summary_file(self) -> Path:
        return self.path / "train_summary.json"

    @property
    def train_log(self) -> Path:
        return self.path / "train_log.csv"

    @property
    def val_log(self) -> Path:
        return self.path / "val_log.csv"

    @property
    def model_card(self) -> Path:
        return self.path / "MODEL_CARD.md"

    def history(self) -> dict[str, Any]:
        return json.loads(self.history_file.read_text(encoding="utf-8"))

    def summary(self) -> dict[str, Any]:
        return json.loads(self.summary_file.read_text(encoding="utf-8"))

    def finished_for(self, config: TrainConfig) -> bool:
        """A run of exactly this config (result-neutral options aside) has finished here."""
        if not (self.summary_file.is_file() and self.history_file.is_file() and self.best.is_file()):
            return False
        saved = self.history()
        return not config.differences(saved.get("config", {})) and bool(saved.get("stopped"))
