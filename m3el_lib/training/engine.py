"""The CLIP_ND trainer: AdamW, warmup + cosine, clipping, accumulation, bf16 on GPU, validation
each epoch with early stopping, atomic resumable checkpoints, logs, one or many processes.

`Trainer(config).fit(resume=PATH)` is the whole run; `m3el train` and `python -m
m3el_lib.training` call it, and so does `torchrun --nproc_per_node N -m m3el_lib.training`.
The library parts it drives live beside it: `data` (what an epoch shows), `towers` (what learns),
`loss` (the objective), `checkpoint`, `distributed`.

Exactness: the data an optimiser step sees depends only on (seed, epoch, step), every RNG state is
saved with the step, and the DataLoader gets its own generator (so creating one does not draw from
the global RNG). A resumed run therefore repeats the uninterrupted run's losses exactly.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import config as paths
from ..evaluation.metrics import instance_metrics, rank_counts
from ..fsutil import atomic_write_csv, atomic_write_json
from ..data.schema import TASK_NAMES
from .tensorboard_log import TensorBoardLog
from . import checkpoint as ckpt
from .config import TrainConfig
from .data import (
    ImageStore, MicroBatchDataset, TextStore, TrainExample, batch_loader, build_examples,
    entity_key, epoch_plan, instance_pictures, mention_key, micro_batches, rank_micro_batches, to_device,
)
from .distributed import DistInfo, all_reduce_sum, barrier, broadcast_flag, cleanup, init_distributed
from .loss import ModalityAugmentedLoss, modality_embeddings
from .runs import RunDir
from .towers import Towers, freeze_batchnorm, set_trainable
from ..timing import timed

MODALITY_INDEX = {"T": 0, "I": 1, "TI": 2}


@dataclass
class TrainResult:
    """What a finished run leaves: its folder, checkpoints, the history and the stopping reason."""

    output_dir: Path
    best_path: Path
    last_path: Path
    history: dict[str, Any]
    global_step: int
    epochs_run: int
    stopped: str  # "completed" | "early_stopping" | "max_steps"
    best_metric: float | None
    wall_seconds: float
    setup_seconds: float


@dataclass
class RunState:
    """Where the run is: the resumable counters and early-stopping bookkeeping."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: str = ""
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    val_rows: list[dict[str, Any]] = field(default_factory=list)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup over `warmup` steps, then cosine decay to `min_ratio` at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only; biases, norms, embeddings' scales and the temperature go free."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        plain = param.ndim < 2 or "logit_scale" in name or "bn" in name or "ln" in name or "norm" in name.lower()
        (no_decay if plain else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    """One CLIP_ND training run (see the module docstring)."""

    def __init__(self, config: TrainConfig, loaded: Any = None, dataset: Any = None, info: DistInfo | None = None) -> None:
        started = time.perf_counter()
        self.config = config
        self.profile = paths.get_profile(config.profile)
        self.info = info or init_distributed(paths.resolve_device(config.device or None, self.profile))
        self.device = torch.device(self.info.device)
        ckpt.seed_everything(config.seed)
        self.loaded = loaded if loaded is not None else self._load_model()
        self.model: nn.Module = self.loaded.model.to(self.device)
        self.model_name = getattr(self.loaded, "name", paths.model_choice(self.profile, config.model)[0])
        text_blocks = None if config.unlocked_text_blocks < 0 else config.unlocked_text_blocks
        image_split, text_split = set_trainable(self.model, config.trainable, config.unlocked_blocks, text_blocks)
        self.towers = Towers(self.model, image_split, text_split, precomputed=config.precompute_frozen)
        self.autocast_dtype = self._autocast_dtype()
        self.dataset = dataset if dataset is not None else self._load_dataset()
        self._build_data()
        self.objective = ModalityAugmentedLoss(self.towers, entity_alignment=config.entity_alignment)
        self.module: nn.Module = self.objective
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # A micro-batch may need no pictures (or no texts): those parameters then get no
            # gradient on that process, which DDP must be told to expect.
            self.module = DistributedDataParallel(self.objective, device_ids=device_ids, find_unused_parameters=True)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, config.weight_decay), lr=config.lr, betas=tuple(config.betas), eps=config.eps
        )
        self.steps_per_epoch = self._steps_per_epoch()
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, config.warmup_steps, self.total_steps, config.min_lr_ratio)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.state = RunState()
        self.run = RunDir.for_config(config)
        self.output_dir = self.run.path
        self.board: TensorBoardLog | None = None  # opened by fit()
        self.setup_seconds = time.perf_counter() - started

    # ------------------------------------------------------------ set-up

    def _load_model(self) -> Any:
        from ..models.loading import load_model

        name, pretrained = paths.model_choice(self.profile, self.config.model, self.config.pretrained)
        checkpoint = self.config.init_checkpoint or None
        return load_model(name, pretrained=pretrained, checkpoint=checkpoint, device="cpu")

    def _load_dataset(self) -> Any:
        from ..data.datasets import open_dataset

        return open_dataset(self.config.dataset or None, self.profile.name)

    def _build_data(self) -> None:
        c = self.config
        train = self.dataset.split(c.train_split)
        val = self.dataset.split(c.val_split) if c.validate_every_epoch else []
        if c.max_train_instances:
            train = train[: c.max_train_instances]
        if c.max_val_instances:
            val = val[: c.max_val_instances]
        texts = {mention_key(inst) for inst in train + val}
        texts |= {entity_key(cand) for inst in train + val for cand in inst.candidates}
        image_prefix, text_prefix = self.towers.prefix_fns()
        pictures = instance_pictures(self.dataset, train + val)
        self._eval_mode()
        started = time.perf_counter()
        shared = self._shared_store()
        reused = {"texts": 0, "pictures": 0}
        if shared is not None:
            reused = {"texts": shared.text_table.held(sorted(texts)), "pictures": shared.pictures.held([Path(p) for p in set(pictures)])}
        with self._autocast():
            self.texts = TextStore(texts, self.loaded.tokenizer, prefix=_on(text_prefix, self.device),
                                   cache=None if shared else self._prefix_cache("text", sorted(texts)),
                                   stored=shared.text_rows if shared else None)
            self.images = ImageStore(
                pictures, self.loaded.preprocess, mode=c.image_cache,
                prefix=self._image_prefix_fn(image_prefix), progress=self._progress_fn("caching pictures"),
                cache=self._prefix_cache("image", sorted(pictures)) if c.image_cache == "memory" and not shared else None,
                stored=shared.picture_rows if shared else None,
            )
        self.store_seconds = time.perf_counter() - started
        self.examples = build_examples(self.dataset, train, c.pairings, unusable=self.images.failed)
        if not self.examples:
            raise ValueError(f"no {c.train_split!r} instance of {self.dataset.root} qualifies for pairings {c.pairings}")
        self.val_examples = build_examples(self.dataset, val, TASK_NAMES, unusable=self.images.failed)
        self.data_report = {
            "train_instances": len(train),
            "train_examples": len(self.examples),
            "val_examples": len(self.val_examples),
            "distinct_texts": len(self.texts.keys),
            "distinct_pictures": len(self.images.keys),
            "pictures_failed_to_decode": sorted(self.images.failed),
            "store_seconds": round(self.store_seconds, 2),
            "stores_from_disk_cache": bool(self.texts.from_cache and (self.images.from_cache or not self.images.keys))
            or (shared is not None and reused["texts"] == len(self.texts.keys) and reused["pictures"] == len(self.images.keys)),
            "shared_store": shared is not None,
            "texts_from_shared_store": reused["texts"],
            "pictures_from_shared_store": reused["pictures"],
            "precomputed_frozen_prefix": self.towers.precomputed,
        }

    def _image_prefix_fn(self, image_prefix: Any) -> Any:
        """On the CPU, the frozen image prefix runs as evaluation runs it (channels-last for a
        convolutional tower: `loading.run_image_tower`), so the two can share its outputs."""
        if image_prefix is None or self.device.type != "cpu":
            return _on(image_prefix, self.device)
        from ..models.loading import run_image_tower

        return lambda pixels: run_image_tower(self.model.visual, image_prefix, pixels, "cpu")

    def _shared_store(self) -> Any:
        """The frozen-prefix store shared with evaluation and every model cut alike
        (`suffix_encoder.SuffixEncoder` on this model), or None where the stores stay the run's own:
        off the CPU (other precision, other kernels), across processes, or without stored prefixes.
        The image prefix runs as evaluation runs it, so the two share its outputs."""
        c = self.config
        if not (self.towers.precomputed and c.cache_prefix and c.image_cache == "memory" and self.device.type == "cpu"
                and self.info.world_size == 1 and self.towers.text.blocks == 0):
            return None
        from .suffix_encoder import SuffixEncoder

        return SuffixEncoder(self.loaded, c)

    def _prefix_cache(self, kind: str, keys: list[str]) -> Path | None:
        """Where the frozen prefix outputs of these texts/pictures are kept (None: not kept).

        The name hashes everything they depend on: the model's weights, where the tower is cut,
        the image transform, the device's precision, and the texts (or the pictures' paths, sizes
        and modification times)."""
        if not (self.config.cache_prefix and self.towers.precomputed):
            return None
        import hashlib

        split = self.towers.image if kind == "image" else self.towers.text
        digest = hashlib.sha256()
        for part in (kind, getattr(self.loaded, "weights_id", ""), type(split).__name__, str(split.blocks),
                     repr(self.loaded.preprocess) if kind == "image" else "", str(self.autocast_dtype)):
            digest.update(part.encode() + b"\0")
        for key in keys:
            digest.update(key.encode() + b"\0")
            if kind == "image":
                stat = os.stat(key)
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode() + b"\0")
        return paths.cache_dir() / "training" / f"{kind}-prefix-{digest.hexdigest()[:32]}.pt"

    def _steps_per_epoch(self) -> int:
        per_step = self.config.batch_size * self.config.grad_accum * self.info.world_size
        steps = (len(self.examples) // self.config.batch_size) // (self.config.grad_accum * self.info.world_size)
        if steps < 1:
            raise ValueError(
                f"{len(self.examples)} training examples do not fill one global batch of {per_step} "
                f"(batch_size x grad_accum x processes); lower batch_size"
            )
        return steps

    def _autocast_dtype(self) -> torch.dtype | None:
        if self.device.type != "cuda" or self.config.precision == "fp32":
            return None  # bf16 autocast is for GPUs; on the CPU it is slower and less exact
        return torch.float16 if self.config.precision == "fp16" else torch.bfloat16

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)

    def _progress_fn(self, desc: str) -> Any:
        if not (self.config.progress and self.info.is_main):
            return None
        from tqdm import tqdm

        return lambda items: tqdm(items, desc=desc, file=sys.stderr, leave=False)

    def _train_mode(self) -> None:
        self.objective.train()
        if self.config.freeze_batchnorm:
            freeze_batchnorm(self.objective)

    def _eval_mode(self) -> None:
        self.model.eval()

    # ------------------------------------------------------------ one step

    def _loader(self, epoch: int, first_step: int) -> Iterable[Any]:
        plan = epoch_plan(self.examples, self.config.seed, epoch, self.config.hard_negatives)
        batches = micro_batches(plan, self.config.batch_size)
        mine = [
            batches[i]
            for step in range(first_step, self.steps_per_epoch)
            for i in rank_micro_batches(step, self.config.grad_accum, self.info.world_size, self.info.rank)
        ]
        workers = self.config.num_workers if self.images.mode == "stream" else 0
        dataset = MicroBatchDataset(mine, self.examples, self.texts, self.images, both_entity_views=self.config.entity_alignment > 0)
        return batch_loader(dataset, workers, pin_memory=self.device.type == "cuda")

    def train_step(self, batches: Sequence[Any]) -> dict[str, float]:
        """One optimiser step over this process's micro-batches (already on the device)."""
        accum = len(batches)
        losses, accuracies = [], []
        for index, batch in enumerate(batches):
            last = index == accum - 1
            sync = contextlib.nullcontext() if (last or not self.info.distributed) else self.module.no_sync()
            with sync:
                with self._autocast():
                    out = self.module(batch)
                self.scaler.scale(out.loss / accum).backward()
            losses.append(out.loss.detach().float())
            accuracies.append(out.accuracy.float())
        if self.config.kill_at_step and self.state.global_step + 1 == self.config.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection: die mid-step, before the update
        # A parameter no micro-batch reached gets a zero gradient, as DDP gives it: the same
        # AdamW update (moments, weight decay) whether the step ran on one process or many.
        for param in self.trainable:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        self.scaler.unscale_(self.optimizer)
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(100.0))
        stats = torch.stack([torch.stack(losses).mean(), torch.stack(accuracies).mean()]).to(self.device)
        stats = all_reduce_sum(stats, self.info) / self.info.world_size
        return {
            "loss": float(stats[0]),
            "batch_accuracy": float(stats[1]),
            "grad_norm": float(grad_norm),
            "lr": float(self.scheduler.get_last_lr()[0]),
            "logit_scale": float(self.model.logit_scale.detach().exp()),
        }

    # ------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, examples: Sequence[TrainExample] | None = None) -> dict[str, float]:
        """Acc@1 per task on the validation examples (candidates ranked; the evaluation's tie rule).

        This is the in-loop signal for early stopping and the curves; the reported test numbers
        come from `m3el_lib.evaluation.metrics` on the exported checkpoint.
        """
        examples = self.val_examples if examples is None else examples
        mine = list(examples)[self.info.rank :: self.info.world_size]
        self._eval_mode()
        correct = torch.zeros(len(TASK_NAMES), dtype=torch.float64)
        total = torch.zeros(len(TASK_NAMES), dtype=torch.float64)
        text_emb = self._encode_keys(
            sorted({mention_key(e.instance) for e in mine} | {entity_key(c) for e in mine for c in e.instance.candidates}),
            self.texts, self.towers.encode_text,
        )
        picture_keys = sorted({e.mention_image for e in mine if e.mention_image} | {p for e in mine for p in e.entity_images.values()})
        image_emb = self._encode_keys(picture_keys, self.images, self.towers.encode_image)
        for example in mine:
            inst = example.instance
            m_text = text_emb.get(mention_key(inst))
            m_image = image_emb.get(example.mention_image) if example.mention_image else None
            c_text = torch.stack([text_emb[entity_key(c)] for c in inst.candidates])
            has_pictures = len(example.entity_images) == len(inst.candidates)
            c_image = torch.stack([image_emb[example.entity_images[c.qid]] for c in inst.candidates]) if has_pictures else None
            mention = _modalities(m_text, m_image)
            entities = _modalities(c_text, c_image)
            gold = inst.gold_index
            for task in example.pairings:
                q = mention[MODALITY_INDEX[task.mention.value]]
                e = entities[MODALITY_INDEX[task.entity.value]]
                scores = (e @ q).double().cpu().numpy()[None, :]
                above, ties, _ = rank_counts(scores, np.ones_like(scores, dtype=bool), np.array([gold]))
                index = TASK_NAMES.index(task.name)
                correct[index] += float(instance_metrics(above, ties)["acc@1"][0])
                total[index] += 1
        correct = all_reduce_sum(correct.to(self.device), self.info).cpu()
        total = all_reduce_sum(total.to(self.device), self.info).cpu()
        self._train_mode()
        metrics = {f"acc_{name}": float(correct[i] / total[i]) for i, name in enumerate(TASK_NAMES) if total[i] > 0}
        chosen = self.config.pairings if self.config.select_on == "trained" else TASK_NAMES
        picked = [metrics[f"acc_{n}"] for n in chosen if f"acc_{n}" in metrics]
        metrics["acc_selected_mean"] = sum(picked) / len(picked) if picked else float("nan")
        every = [metrics[f"acc_{n}"] for n in TASK_NAMES if f"acc_{n}" in metrics]
        metrics["acc_all_mean"] = sum(every) / len(every) if every else float("nan")
        return metrics

    def _encode_keys(self, keys: list[str], store: Any, encode: Any, chunk: int = 256) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            with self._autocast():
                emb = encode(to_device(store.gather(part), self.device)).float()
            found.update(zip(part, emb))
        return found

    # ------------------------------------------------------------ checkpoints and logs

    @property
    def last_path(self) -> Path:
        return self.run.last

    @property
    def best_path(self) -> Path:
        return self.run.best

    def save_last(self) -> None:
        if self.info.is_main:
            ckpt.atomic_torch_save(
                {
                    "state_dict": self.model.state_dict(),
                    "model_name": self.model_name,
                    "config": self.config.to_dict(),
                    "resume": {
                        "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(),
                        "scaler": self.scaler.state_dict(),
                        "rng": ckpt.rng_state(),
                        "state": self.state.__dict__,
                        "world_size": self.info.world_size,
                    },
                },
                self.last_path,
            )
            self.write_logs()
        barrier(self.info)

    def save_best(self, metric: float | None) -> None:
        if self.info.is_main:
            pretrained = paths.model_choice(self.profile, self.config.model, self.config.pretrained)[1]
            ckpt.atomic_torch_save(
                ckpt.export_state(self.model, self.model_name, pretrained, self.config.to_dict(),
                                  self.state.global_step, self.state.epoch, metric),
                self.best_path,
            )
        barrier(self.info)

    def resume_from(self, path: Path | str, saved: dict[str, Any] | None = None) -> None:
        saved = saved if saved is not None else ckpt.load_resume_state(path)
        changed = self.config.differences(saved["config"])
        if changed:
            raise ValueError(f"{path}: the run was started with other {', '.join(changed)}; resume with its own config")
        # A different number of processes is fine: the global batch (so the result) is the same.
        try:
            self.model.load_state_dict(saved["state_dict"])
            self.optimizer.load_state_dict(saved["resume"]["optimizer"])
            self.scheduler.load_state_dict(saved["resume"]["scheduler"])
            self.scaler.load_state_dict(saved["resume"]["scaler"])
            ckpt.set_rng_state(saved["resume"]["rng"])
            self.state = RunState(**saved["resume"]["state"])
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ckpt.CheckpointError(f"{path}: does not fit this run ({first[:200]})") from None

    def write_logs(self) -> None:
        """train_log.csv, val_log.csv and history.json, rewritten whole (so a resume never duplicates rows)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(self.run.train_log, self.state.train_rows)
        atomic_write_csv(self.run.val_log, self.state.val_rows)
        atomic_write_json(self.run.history_file, self.history())
        if self.board is not None:
            self.board.flush()

    def history(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "model": self.model_name,
            "data": self.data_report,
            "data_checksum": getattr(self.dataset, "checksum", ""),
            "world_size": self.info.world_size,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "train": self.state.train_rows,
            "val": self.state.val_rows,
            "best_metric": self.state.best_metric,
            "best_epoch": self.state.best_epoch,
            "stopped": self.state.stopped,
        }

    # ------------------------------------------------------------ the run

    @timed('train')
    def fit(self, resume: Path | str | None = None, saved: dict[str, Any] | None = None) -> TrainResult:
        started = time.perf_counter()
        if resume:
            self.resume_from(resume, saved)
        c, s = self.config, self.state  # after resume_from, which replaces the state
        if c.tensorboard and self.info.is_main:
            self.board = TensorBoardLog(self.output_dir, resume_step=s.global_step + 1 if resume else None)
        self._train_mode()
        bar = None
        if c.progress and self.info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=s.global_step, desc=c.run_name, file=sys.stderr, mininterval=1.0)
        while not s.stopped and s.epoch < c.epochs:
            loader = iter(self._loader(s.epoch, s.step_in_epoch))
            while s.step_in_epoch < self.steps_per_epoch and s.global_step < self.total_steps:
                step_start = time.perf_counter()
                batches = []
                for _ in range(c.grad_accum):
                    batches.append(next(loader).to(self.device))
                data_seconds = time.perf_counter() - step_start
                stats = self.train_step(batches)
                s.global_step += 1
                s.step_in_epoch += 1
                row = {"step": s.global_step, "epoch": s.epoch, **stats,
                       "step_seconds": time.perf_counter() - step_start, "data_seconds": data_seconds,
                       "pictures": sum(b.pictures for b in batches)}
                if s.global_step % c.log_every == 0 or s.step_in_epoch == self.steps_per_epoch:
                    s.train_rows.append({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
                    if self.board is not None:
                        self.board.train(row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss']:.4f}", epoch=s.epoch)
                if c.checkpoint_every and s.global_step % c.checkpoint_every == 0 and s.step_in_epoch < self.steps_per_epoch:
                    self.save_last()
            epoch_done = s.step_in_epoch >= self.steps_per_epoch
            if epoch_done:
                self._end_epoch()
            if s.global_step >= self.total_steps and not s.stopped:
                s.stopped = "completed" if epoch_done and s.epoch >= c.epochs else "max_steps"
            self.save_last()
        if bar is not None:
            bar.close()
        if s.best_epoch < 0:
            self.save_best(s.best_metric)  # no validation ran: the last weights are the export
        barrier(self.info)
        result = TrainResult(
            output_dir=self.output_dir, best_path=self.best_path, last_path=self.last_path, history=self.history(),
            global_step=s.global_step, epochs_run=s.epoch, stopped=s.stopped, best_metric=s.best_metric,
            wall_seconds=time.perf_counter() - started, setup_seconds=self.setup_seconds,
        )
        if self.info.is_main:
            self._write_summary(result)
        if self.board is not None:
            self.board.close()
            self.board = None
        return result

    def _end_epoch(self) -> None:
        c, s = self.config, self.state
        improved = False
        if c.validate_every_epoch and self.val_examples:
            metrics = self.validate()
            s.val_rows.append({"epoch": s.epoch, "step": s.global_step, **{k: round(v, 6) for k, v in metrics.items()}})
            if self.board is not None:
                self.board.validation(s.val_rows[-1])
            metric = metrics["acc_selected_mean"]
            improved = s.best_metric is None or metric > s.best_metric + c.early_stopping_min_delta
            if improved:
                s.best_metric, s.best_epoch, s.bad_epochs = metric, s.epoch, 0
            else:
                s.bad_epochs += 1
        s.epoch += 1
        s.step_in_epoch = 0
        if improved:
            self.save_best(s.best_metric)
        stop = bool(c.early_stopping_patience and s.bad_epochs >= c.early_stopping_patience)
        if broadcast_flag(stop, self.info):
            s.stopped = "early_stopping"
        elif s.epoch >= c.epochs and s.global_step >= self.total_steps:
            s.stopped = "completed"

    def _write_summary(self, result: TrainResult) -> None:
        from ..data.provenance import write_provenance, write_result

        summary = {
            "run": self.config.run_name,
            "model": self.model_name,
            "profile": self.profile.name,
            "global_step": result.global_step,
            "epochs_run": result.epochs_run,
            "stopped": result.stopped,
            "best_metric": result.best_metric,
            "best_epoch": self.state.best_epoch,
            "select_on": self.config.select_on,
            "wall_seconds_this_process": round(result.wall_seconds, 2),
            "setup_seconds": round(result.setup_seconds, 2),
            "data": self.data_report,
            "trainable_parameters": sum(p.numel() for p in self.trainable),
            "total_parameters": sum(p.numel() for p in self.model.parameters()),
            "world_size": self.info.world_size,
            "device": str(self.device),
            "best_checkpoint": self.best_path.name,
        }
        kwargs = dict(parameters=self.config.to_dict(), data_checksum=getattr(self.dataset, "checksum", ""),
                      profile=self.profile.name, model=self.model_name)
        write_result(self.run.summary_file, summary, **kwargs)
        write_provenance(self.best_path, **kwargs)
        self.write_logs()


def _modalities(text: torch.Tensor | None, image: torch.Tensor | None) -> list[torch.Tensor | None]:
    """[T, I, TI] normalised embeddings (None where the item lacks the modality)."""
    if text is not None and image is not None:
        return list(modality_embeddings(text, image))
    norm = torch.nn.functional.normalize
    return [norm(text, dim=-1) if text is not None else None, norm(image, dim=-1) if image is not None else None, None]


def _on(fn: Any, device: torch.device) -> Any:
    """A prefix function that runs on `device` and hands back CPU tensors for the store."""
    if fn is None:
        return None
    def run(x: torch.Tensor) -> Any:
        return to_device(fn(x.to(device)), "cpu")

    return run


def train(config: TrainConfig, resume: Path | str | None = None, loaded: Any = None, dataset: Any = None) -> TrainResult:
    """Build a Trainer and run it; under torchrun every process calls this."""
    # Read (weights-only) and check the checkpoint first: a bad one fails before any model or data loads.
    saved = ckpt.load_resume_state(resume) if resume else None
    trainer = Trainer(config, loaded=loaded, dataset=dataset)
    try:
        return trainer.fit(resume=resume, saved=saved)
    finally:
        cleanup(trainer.info)
