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
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fsutil import atomic_write_with


def atomic_torch_save(obj: Any, path: Path | str) -> Path:
    return atomic_write_with(path, lambda handle: torch.save(obj, handle))


def rng_state() -> dict[str, Any]:
    """Every random generator the run uses (python, numpy, torch CPU and CUDA), as plain values
    and tensors only, so that a weights-only load reads it back."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _as_tuples(value: Any) -> Any:
    """`random.setstate` wants the tuples `random.getstate` gave (a round trip may hand back lists)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one line naming the file."""


def load_tensors_file(path: Path | str) -> Any:
    """`torch.load(weights_only=True)`: tensors and plain values only, so a crafted file runs no code.

    Anything else (a pickle of other objects, a truncated or garbage file, a folder, a pipe) is a
    CheckpointError naming the file.
    """
    import pickle
    import stat
    import zipfile

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise CheckpointError(f"{path}: no such checkpoint file ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's remarks on odd pickles: the error says enough
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        unsupported = [line for line in lines if "Unsupported global" in line or "GLOBAL" in line]
        if unsupported:  # a pickle of other objects: loading it could run code
            what = unsupported[0].split(". Please")[0].split("error: ")[-1]  # not torch's how-to-allow-it advice
            raise CheckpointError(f"{path}: refused: not a weights-only checkpoint (it would unpickle other Python "
                                  f"objects, which is never done: {what[:160]})") from None
        detail = [line for line in lines if "error" in line.lower() and "weights_only" not in line]
        raise CheckpointError(f"{path}: not a readable checkpoint (not a torch file{': ' + detail[0][:160] if detail else ''})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            UnicodeDecodeError, zipfile.BadZipFile, MemoryError, OverflowError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first[:200]})") from None


def load_resume_state(path: Path | str) -> dict[str, Any]:
    """A `last.pt`, read weights-only: it holds plain values and tensors, never other objects."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    state = load_tensors_file(path)
    if not isinstance(state, dict) or not isinstance(state.get("resume"), dict):
        raise CheckpointError(f"{path}: not a resumable CLIP_ND checkpoint (no 'resume' section); use last.pt")
    missing = [k for k in ("optimizer", "scheduler", "scaler", "rng", "state") if k not in state["resume"]]
    if missing or not isinstance(state.get("state_dict"), dict) or not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path}: an incomplete resumable checkpoint (missing {', '.join(missing) or 'state_dict/config'})")
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
