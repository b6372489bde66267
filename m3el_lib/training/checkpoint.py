"""Checkpoints: written atomically, resumable exactly, and loadable by `models.load_model`.

Two files per run:

- `last.pt`, the resumable state: model, optimiser, scheduler, grad scaler, every RNG state, the
  position in the data (epoch, step within it, global step), early-stopping state and the log
  history. Loading it and running on gives the same losses as never having stopped.
- `best.pt`, the export for evaluation: `{"state_dict", "model_name", "pretrained", "config",
  "step", "epoch", "metric"}` with plain tensors only, so `torch.load(weights_only=True)` and
  open_clip's checkpoint loading (which reads the `state_dict` key) accept it.

A write goes to a temporary file in the same folder, is flushed to disk and renamed over the
target, so a kill at any moment leaves the previous checkpoint whole.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fsutil import atomic_write_with


def atomic_torch_save(obj: Any, path: Path | str) -> Path:
    return atomic_write_with(path, lambda handle: torch.save(obj, handle))


def rng_state() -> dict[str, Any]:
    """Every random generator the run uses (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_resume_state(path: Path | str) -> dict[str, Any]:
    """A `last.pt` (our own file: it holds RNG states, so it is not a weights-only load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "resume" not in state:
        raise ValueError(f"{path}: not a resumable CLIP_ND checkpoint (no 'resume' section); use last.pt")
    return state


def export_state(model: torch.nn.Module, model_name: str, pretrained: str | None, config: dict[str, Any],
                 step: int, epoch: int, metric: float | None) -> dict[str, Any]:
    """The evaluation export (see the module docstring)."""
    return {
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_name": model_name,
        "pretrained": pretrained or "",
        "config": config,
        "step": int(step),
        "epoch": int(epoch),
        "metric": float(metric) if metric is not None else None,
        "format": "m3el-clip-nd-v1",
    }
