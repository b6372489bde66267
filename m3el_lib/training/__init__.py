"""CLIP_ND: modality-augmented contrastive fine-tuning of a CLIP-style dual encoder on M³EL.

The library half (as open_clip keeps its library apart from its trainer): `config` (TrainConfig
and the `sample`/`full` presets), `data` (what an epoch shows; input stores), `towers` (what
learns; frozen prefixes computed once), `loss` (modality-augmented InfoNCE), `checkpoint`,
`distributed` (torchrun/DDP). The trainer: `engine.Trainer` / `engine.train`. Entry points:
`m3el train --profile sample|full [--config FILE] [--resume PATH]`, and the same arguments to
`python -m m3el_lib.training` or `torchrun --nproc_per_node N -m m3el_lib.training`.
"""
from .config import PRESETS, TrainConfig, load_config, preset

__all__ = ["PRESETS", "TrainConfig", "load_config", "preset", "train"]


def train(*args, **kwargs):
    """`engine.train` (imported on first use: torch and open_clip load only when training)."""
    from .engine import train as _train

    return _train(*args, **kwargs)
