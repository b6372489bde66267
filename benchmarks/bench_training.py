"""Benchmark: one CLIP_ND engine step against a bare open_clip step, and how long steps wait on data.

Targets (issue 6):
1. One optimiser step of the engine (`Trainer.train_step`: modality-augmented loss, clipping,
   zero-fill of unreached gradients, AdamW, schedule, temperature clamp, logged statistics)
   costs at most 1.15x a bare open_clip step on the same batch: `encode_image` + `encode_text`,
   open_clip's own `ClipLoss`, backward and an AdamW step. Same model copy, same pictures and
   token ids (the engine's batch is the I-T pairing with no extra candidates, so both encode the
   same B pictures and B texts), steps interleaved, median of each.
2. The training loop waits on data (building the next micro-batch; with workers, waiting for
   them) for at most 10% of a step's time, measured in the engine's own loop (`data_seconds` /
   `step_seconds` of its log) in both data paths: the sample preset (frozen-prefix stores in
   memory) and the full profile's path (every parameter trains; DataLoader workers decode the
   pictures). The first step of a run (worker start-up) is reported but not in the ratio.

GPU-capable: `--device cuda` (the default when CUDA is present) runs the same code with bf16
autocast in both steps. `gpu_check.sh` runs this comparison on a GPU (H200 figures:
`results/gpu_check-NVIDIA-H200.json`).

    python benchmarks/bench_training.py [--device cpu|cuda] [--model NAME] [--batch N] [--rounds N]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import verdict  # noqa: E402

STEP_RATIO_TARGET = 1.15
DATA_SHARE_TARGET = 0.10


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_ratio(model_name: str, device: str, batch: int, rounds: int, workdir: Path) -> tuple[float, float]:
    """(median engine step s, median bare step s) on the same batch."""
    import torch
    from open_clip.loss import ClipLoss

    from m3el_lib.data.io import load_dataset
    from m3el_lib.models.loading import load_model
    from m3el_lib.data.synthetic import write_synthetic_dataset
    from m3el_lib.training.config import TrainConfig
    from m3el_lib.training.engine import Trainer, parameter_groups

    data = load_dataset(write_synthetic_dataset(workdir / "steps", n=3 * batch + 3, image_every=1))
    loaded = load_model(model_name, device="cpu")
    bare_model = copy.deepcopy(loaded.model).to(device).train()
    config = TrainConfig(
        profile="sample", model=model_name, trainable="all", precompute_frozen=False, pairings=["I-T"],
        hard_negatives=0, entity_alignment=0.0, batch_size=batch, epochs=1, validate_every_epoch=False,
        progress=False, device=device, output_dir=str(workdir / "run"), warmup_steps=0, precision="auto",
        freeze_batchnorm=False,
    )
    trainer = Trainer(config, loaded=loaded, dataset=data)
    trainer._train_mode()
    micro = next(iter(trainer._loader(0, 0))).to(trainer.device)
    pixels, tokens = micro.mention_image, micro.entity_text
    assert pixels.shape[0] == batch and tokens.shape[0] == batch  # the same B pictures and B texts
    optimizer = torch.optim.AdamW(parameter_groups(bare_model, config.weight_decay), lr=config.lr,
                                  betas=tuple(config.betas), eps=config.eps)
    clip_loss = ClipLoss()
    autocast = trainer._autocast

    def bare_step() -> None:
        with autocast():
            image = bare_model.encode_image(pixels, normalize=True)
            text = bare_model.encode_text(tokens, normalize=True)
            loss = clip_loss(image, text, bare_model.logit_scale.exp())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the engine reads its loss back too

    def engine_step() -> None:
        trainer.train_step([micro])

    for _ in range(2):  # warm-up: allocator, kernels, optimiser state
        bare_step()
        engine_step()
    bare, engine = [], []
    for _ in range(rounds):
        for fn, box in ((bare_step, bare), (engine_step, engine)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            box.append(time.perf_counter() - start)
    return statistics.median(engine), statistics.median(bare)


def data_share(config, dataset=None) -> dict[str, float]:
    """Share of step time spent waiting on data in the engine's own loop (first step apart)."""
    from m3el_lib.training.engine import Trainer

    trainer = Trainer(config, dataset=dataset)
    result = trainer.fit()
    rows = result.history["train"]
    steady = rows[1:] if len(rows) > 1 else rows
    return {
        "steps": len(rows),
        "first step s": rows[0]["step_seconds"],
        "first step data s": rows[0]["data_seconds"],
        "median step s": statistics.median(r["step_seconds"] for r in steady),
        "share": sum(r["data_seconds"] for r in steady) / sum(r["step_seconds"] for r in steady),
    }


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="m3el-mini-dual")
    parser.add_argument("--batch", type=int, default=0, help="pictures and texts per step (default: 16 on CPU, 128 on GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    batch = args.batch or (128 if args.device.startswith("cuda") else 16)
    workdir = Path(tempfile.mkdtemp(prefix="bench_training_"))
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else f'{os.cpu_count()} CPU cores'}), "
          f"model {args.model}, batch {batch}, torch threads {torch.get_num_threads()}")

    engine, bare = step_ratio(args.model, args.device, batch, args.rounds, workdir)
    print(f"bare open_clip step (fwd+bwd+AdamW)   median {bare:.3f} s")
    print(f"CLIP_ND engine step                   median {engine:.3f} s")
    ok = verdict("engine step / bare step", engine / bare, STEP_RATIO_TARGET, "x")

    from m3el_lib.data.datasets import open_dataset
    from m3el_lib.training.config import preset

    sample = open_dataset(profile="sample")
    common = dict(validate_every_epoch=False, progress=False, device=args.device, checkpoint_every=0)
    paths = {
        "sample preset (frozen prefixes in memory)": preset(
            "sample", output_dir=str(workdir / "sample"), max_steps=30, **common),
        "full path (all parameters, 2 DataLoader workers decode pictures)": preset(
            "full", profile="sample", model=args.model, pretrained="", output_dir=str(workdir / "stream"),
            batch_size=8 if args.device == "cpu" else 128, num_workers=2 if args.device == "cpu" else 8,
            max_steps=8 if args.device == "cpu" else 40, warmup_steps=1, **common),
    }
    for label, config in paths.items():
        found = data_share(config, dataset=sample)
        print(f"{label}: {found['steps']} steps, median step {found['median step s']:.3f} s; "
              f"first step {found['first step s']:.2f} s of which data {found['first step data s']:.2f} s (start-up, not counted)")
        ok &= verdict(f"data wait share, {label.split(' (')[0]}", found["share"], DATA_SHARE_TARGET, "")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
