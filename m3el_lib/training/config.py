"""The training configuration: one dataclass, two presets (`sample`, `full`), JSON/YAML files.

`TrainConfig` holds every choice a CLIP_ND run makes (data, model, what is trained, the optimiser,
schedule, batch geometry, modality augmentation, stopping, logging). A run is reproduced from its
config alone: it is saved inside every checkpoint and beside the results.

Batch geometry: a *micro-batch* (`batch_size` examples) is what one process encodes at once; an
optimiser step takes `grad_accum` micro-batches on each of `world_size` processes, so the global
batch is `batch_size * grad_accum * world_size` examples. In-batch negatives are per micro-batch
(as open_clip's `--local-loss`), which is what makes a 2-process run equal to a 1-process run with
`grad_accum=2` on the same global batch.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..data.schema import TASK_NAMES

TRAINABLE_CHOICES = ("all", "last", "heads")
# Options that do not change a run's result (so a run may be resumed or reused with them changed).
RESULT_NEUTRAL = frozenset({"output_dir", "progress", "kill_at_step", "log_every", "num_workers", "image_cache", "device",
                            "tensorboard"})
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything one CLIP_ND training run depends on (see the module docstring)."""

    # what is trained, on what
    profile: str = "sample"
    run_name: str = "clip_nd"
    dataset: str = ""  # a dataset path; "" = the profile's dataset
    model: str = ""  # a model name for m3el_lib.models.loading.load_model; "" = the profile's model
    pretrained: str | None = None  # None = the profile's pretrained tag
    init_checkpoint: str = ""  # start from these weights instead of the pretrained ones
    train_split: str = "train"
    val_split: str = "val"
    max_train_instances: int = 0  # 0 = all; a cap for quick runs, the first N by dataset order
    max_val_instances: int = 0

    # modality augmentation (our reading of the paper's "modality-augmented training strategy"):
    # each epoch every training instance is shown once, in one (mention, entity) modality pairing
    # drawn uniformly from the `pairings` it qualifies for.
    pairings: list[str] = field(default_factory=lambda: list(TASK_NAMES))
    hard_negatives: int = -1  # candidates of the instance added to the pool; -1 = all of them
    # Our addition, off by default: weight of an InfoNCE term aligning the text and picture views
    # of the micro-batch's entities (knowledge-base records only; never a mention's gold).
    entity_alignment: float = 0.0

    # which parameters learn
    trainable: str = "last"  # "all" | "last" (last `unlocked_blocks` of each tower + heads) | "heads"
    unlocked_blocks: int = 1  # for "last": trainable blocks at the end of the image tower ...
    unlocked_text_blocks: int = -1  # ... and of the text tower (-1: the same as unlocked_blocks)
    precompute_frozen: bool = True  # compute the frozen towers' outputs once (when the model allows it)
    cache_prefix: bool = True  # ... and keep them on disk (cache_dir/training), keyed by model, split and data
    freeze_batchnorm: bool = True  # BatchNorm statistics stay as pretrained (small batches)

    # optimisation
    epochs: int = 10
    max_steps: int = 0  # 0 = epochs decide; otherwise stop after at most this many optimiser steps
    batch_size: int = 32  # micro-batch per process
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 20
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    precision: str = "auto"  # "auto" = bf16 autocast on CUDA, fp32 on CPU

    # validation and stopping
    validate_every_epoch: bool = True
    early_stopping_patience: int = 3  # epochs without improvement before stopping; 0 = off
    early_stopping_min_delta: float = 0.0
    select_on: str = "trained"  # validation tasks the stopping metric averages: "trained" | "all"

    # data loading
    image_cache: str = "memory"  # "memory": pre-decoded tensors; "stream": DataLoader workers decode
    num_workers: int = 2  # for image_cache="stream"
    image_size: int = 0  # 0 = the model's own; a smaller size trades accuracy for CPU time

    # bookkeeping
    seed: int = 0
    output_dir: str = ""  # "" = results_dir(profile)/<run_name>
    checkpoint_every: int = 0  # optimiser steps between resumable checkpoints; 0 = each epoch only
    log_every: int = 1
    tensorboard: bool = True  # TensorBoard event files beside the CSV/JSON logs (main process only)
    device: str = ""  # "" = the profile's device (cuda when present for "full")
    progress: bool = True
    kill_at_step: int = 0  # fault injection for the kill-and-resume test: SIGKILL inside this step

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        self.pairings = list(self.pairings)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        unknown = [p for p in self.pairings if p not in TASK_NAMES]
        if unknown or not self.pairings:
            raise ValueError(f"pairings: {unknown or 'empty'}; expected a subset of {', '.join(TASK_NAMES)}")
        if self.trainable not in TRAINABLE_CHOICES:
            raise ValueError(f"trainable: {self.trainable!r}; expected one of {TRAINABLE_CHOICES}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: {self.precision!r}; expected one of {PRECISIONS}")
        if self.image_cache not in ("memory", "stream"):
            raise ValueError(f"image_cache: {self.image_cache!r}; expected 'memory' or 'stream'")
        if self.select_on not in ("trained", "all"):
            raise ValueError(f"select_on: {self.select_on!r}; expected 'trained' or 'all'")
        for name in ("batch_size", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.epochs < 1 or self.max_steps < 0:
            raise ValueError(f"epochs must be at least 1 and max_steps at least 0 (got {self.epochs}, {self.max_steps})")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def differences(self, other: dict[str, Any]) -> list[str]:
        """The result-changing options whose values differ from `other` (a saved config dict)."""
        mine = self.to_dict()
        return sorted(k for k in set(mine) | set(other) if k not in RESULT_NEUTRAL and mine.get(k) != other.get(k))


# Presets. `sample` fits the 2-core CPU budget (under 10 minutes with the frozen parts computed
# once; measured in notebook 05): the image tower learns its last stage, the text tower its
# projection only (one MiniLM layer costs ~1.5 s per 256 texts per step here), both towers'
# frozen outputs are computed once. `full` is the paper-scale run: CLIP ViT-B/32 (openai), every
# parameter, bf16 on GPUs, pictures decoded by DataLoader workers.
PRESETS: dict[str, dict[str, Any]] = {
    "sample": dict(
        profile="sample", trainable="last", unlocked_blocks=1, unlocked_text_blocks=0, precompute_frozen=True,
        entity_alignment=1.0, epochs=15, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_steps=20,
        hard_negatives=-1, early_stopping_patience=4, image_cache="memory", num_workers=0,
        checkpoint_every=0, device="cpu",
    ),
    "full": dict(
        profile="full", trainable="all", precompute_frozen=False, entity_alignment=1.0,
        epochs=10, batch_size=128, grad_accum=1, lr=1e-5, weight_decay=0.2, warmup_steps=500,
        min_lr_ratio=0.0, hard_negatives=-1, early_stopping_patience=2, image_cache="stream",
        num_workers=8, checkpoint_every=500, precision="auto", device="",
    ),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The `sample` or `full` preset, with `overrides` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; expected one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


def from_dict(data: dict[str, Any], base: TrainConfig | None = None, source: str = "config") -> TrainConfig:
    """A TrainConfig from a mapping (unknown keys are an error naming them and `source`)."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown training option(s) {', '.join(unknown)}")
    start = base.to_dict() if base is not None else {}
    try:
        return TrainConfig(**{**start, **data})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: {err}") from None


def load_config(path: Path | str, base: TrainConfig | None = None) -> TrainConfig:
    """Read a JSON (or YAML, `.yaml`/`.yml`) file of options on top of `base` (default: defaults)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only needed for YAML configs

        data = yaml.safe_load(text) or {}
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of training options, got {type(data).__name__}")
    if "preset" in data:  # a file may start from a preset
        base = preset(str(data.pop("preset")))
    return from_dict(data, base=base, source=str(path))
