"""TensorBoard event files beside a run's CSV/JSON logs, so curves can be watched while it trains.

`tensorboard --logdir .m3el/results/sample` (or a run's own folder) shows, per optimiser step,
`train/loss`, `train/lr`, `train/temperature` (CLIP's softmax temperature, 1 / logit_scale),
`train/logit_scale`, `train/batch_accuracy` and `train/grad_norm`, and per epoch (at its last
step) `val/acc_<task>` for each of the 9 tasks validated, `val/acc_selected_mean` and
`val/acc_all_mean`. The CSV/JSON logs stay the record of a run; these files are for watching.

Written with `torch.utils.tensorboard` by the main process only. A resumed run purges the events
past the step it resumes from, so steps redone after a crash are not drawn twice.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

# The train-row fields drawn as curves (the rest of a row is bookkeeping: step, epoch, timings).
TRAIN_SCALARS = ("loss", "lr", "logit_scale", "batch_accuracy", "grad_norm")


class TensorBoardLog:
    """One run's event files: `train(row)` per logged step, `validation(row)` per epoch."""

    def __init__(self, log_dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=resume_step)

    def train(self, row: Mapping[str, Any]) -> None:
        step = int(row["step"])
        for name in TRAIN_SCALARS:
            if name in row:
                self.writer.add_scalar(f"train/{name}", float(row[name]), step)
        if row.get("logit_scale"):
            self.writer.add_scalar("train/temperature", 1.0 / float(row["logit_scale"]), step)

    def validation(self, row: Mapping[str, Any]) -> None:
        step = int(row["step"])
        for name, value in row.items():
            if name.startswith("acc_"):
                self.writer.add_scalar(f"val/{name}", float(value), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
