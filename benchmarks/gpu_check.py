"""The GPU check of the full profile (issue 14): one run, under 8 minutes on one H200, offline.

Measures, with CLIP ViT-B/32 at random initialisation (the device has no internet, and speed and
memory do not depend on the weights), bf16 autocast:
1. the engine's training step against a bare open_clip step on the same batch (ratio), at the
   release's batch size (the full preset's 128), pictures per second, peak GPU memory;
2. the full preset's own training loop on a synthetic release (all 9 pairings, hard negatives,
   entity-view alignment, DataLoader workers decoding JPEGs): seconds per step, pictures per
   second, the share of the step spent waiting on data;
3. the data pipeline alone with 8+ workers: pictures per second it delivers;
4. evaluation throughput (embedding mentions and entities, candidates and full-KB ranking).

Writes `benchmarks/results/gpu_check-<device>.json` (with provenance) and prints every figure.
`--smoke` runs the same code on the CPU at tiny sizes (to test the script, not to measure).

    benchmarks/gpu_check.sh [--smoke] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import pipeline_throughput  # noqa: E402

FULL = {"model": "ViT-B-32", "device": "cuda", "batch": 128, "rounds": 8, "scale": 0.02, "train_steps": 30,
        "workers": max(8, min(16, os.cpu_count() or 8)), "pipeline_batches": 40}
SMOKE = {"model": "m3el-tiny-random", "device": "cpu", "batch": 8, "rounds": 2, "scale": 0.002, "train_steps": 3,
         "workers": 2, "pipeline_batches": 4}


def _gpu_memory(device: str) -> dict[str, float]:
    import torch

    if not device.startswith("cuda"):
        return {}
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}


def _reset_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def make_release(workdir: Path, scale: float) -> str:
    """A synthetic release, registered under this run's M3EL_HOME: the registered record folder."""
    from m3el_lib.data.synth_release import write_synth_release
    from m3el_lib.data.registry import register

    archive = write_synth_release(workdir / "synth", scale=scale, seed=0)["path"]
    return str(register("m3el-release", archive))


def step_check(p: dict, workdir: Path) -> dict[str, float]:
    """Engine step vs bare open_clip step (benchmarks/bench_training.py's comparison)."""
    from bench_training import step_ratio

    _reset_memory(p["device"])
    engine, bare = step_ratio(p["model"], p["device"], p["batch"], p["rounds"], workdir)
    return {"batch": p["batch"], "engine_step_s": engine, "bare_step_s": bare, "ratio": engine / bare,
            "engine_pictures_per_s": p["batch"] / engine, "bare_pictures_per_s": p["batch"] / bare,
            **_gpu_memory(p["device"])}


def full_config(p: dict, release: str, out: Path):
    from m3el_lib.training.config import preset

    return preset("full", dataset=release, model=p["model"], pretrained="", device=p["device"],
                  # the documented record has no split field: train on the unsplit records
                  train_split="", validate_every_epoch=False, max_steps=p["train_steps"], batch_size=p["batch"],
                  num_workers=p["workers"], checkpoint_every=0, progress=False, output_dir=str(out))


def training_check(p: dict, release: str, workdir: Path) -> dict[str, float]:
    """The full preset's own loop: step time, pictures per second, data wait share."""
    from m3el_lib.training.engine import Trainer

    _reset_memory(p["device"])
    trainer = Trainer(full_config(p, release, workdir / "train"))
    result = trainer.fit()
    rows = result.history["train"]
    steady = rows[1:] or rows
    seconds = sum(r["step_seconds"] for r in steady)
    # a DataLoader (its workers) starts with each epoch: this check's epochs are ~12 steps, the
    # release's ~370, so the wait after each epoch's first step is reported beside the overall one
    starts = [r for i, r in enumerate(rows) if i and r["epoch"] != rows[i - 1]["epoch"]]
    within = [r for i, r in enumerate(rows) if i and r["epoch"] == rows[i - 1]["epoch"]] or steady
    return {
        "steps": len(rows), "examples_per_step": p["batch"], "train_examples": len(trainer.examples),
        "median_step_s": statistics.median(r["step_seconds"] for r in steady),
        "first_step_s": rows[0]["step_seconds"],
        "pictures_per_step": statistics.mean(r["pictures"] for r in steady),
        "pictures_per_s": sum(r["pictures"] for r in steady) / seconds,
        "compute_pictures_per_s": sum(r["pictures"] for r in steady) / sum(r["step_seconds"] - r["data_seconds"] for r in steady),
        "data_wait_share": sum(r["data_seconds"] for r in steady) / seconds,
        "epochs": len(starts) + 1,
        "data_wait_share_within_epoch": sum(r["data_seconds"] for r in within) / sum(r["step_seconds"] for r in within),
        "epoch_first_step_s": statistics.median(r["step_seconds"] for r in starts) if starts else float("nan"),
        "workers": p["workers"], **_gpu_memory(p["device"]),
    }


def pipeline_check(p: dict, release: str, workdir: Path) -> dict[str, float]:
    """The data pipeline alone (no model step): pictures per second delivered."""
    from m3el_lib.training.engine import Trainer

    pictures, seconds, batches = pipeline_throughput(Trainer(full_config(p, release, workdir / "pipeline")), p["pipeline_batches"])
    return {"workers": p["workers"], "batches": batches, "pictures": pictures, "seconds": seconds,
            "pictures_per_s": pictures / seconds}


def evaluation_check(p: dict, release: str) -> dict[str, float]:
    """Embedding (cold, not kept) and ranking throughput of the evaluation, full-KB included."""
    from m3el_lib.evaluation.metrics import evaluate
    from m3el_lib.data.io import load_dataset
    from m3el_lib.models.loading import load_model
    from m3el_lib.evaluation.scoring import model_scorer

    dataset = load_dataset(release)
    model = load_model(p["model"], device=p["device"])
    scorer = model_scorer(model, batch_size=256, persist_cache=False)
    _reset_memory(p["device"])
    started = time.perf_counter()
    evaluate(scorer, dataset, split="all", full_kb=True, n_bootstrap=100)
    total = time.perf_counter() - started
    cache = scorer.cache
    embed = sum(cache.seconds.values())
    return {
        "instances": len(dataset), "kb_entities": int(len(scorer.entities.kb_rows)), "seconds": total,
        "instances_per_s": len(dataset) / total,
        "pictures": cache.encoded["I"], "pictures_per_s": cache.encoded["I"] / max(cache.seconds["I"], 1e-9),
        "texts": cache.encoded["T"], "texts_per_s": cache.encoded["T"] / max(cache.seconds["T"], 1e-9),
        "ranking_seconds": total - embed, **_gpu_memory(p["device"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: tests the script, measures nothing")
    parser.add_argument("--out", type=Path, default=None, help="where the results go (default: benchmarks/results, "
                                                               "or a temp folder with --smoke)")
    args = parser.parse_args()
    import torch

    p = dict(SMOKE if args.smoke else FULL)
    if p["device"] == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --smoke to test the script on the CPU", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    os.environ["M3EL_HOME"] = str(workdir / "home")  # nothing touches the user's data or caches
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device_name = torch.cuda.get_device_name() if p["device"] == "cuda" else f"cpu ({os.cpu_count()} cores)"
    print(f"device {device_name}; torch {torch.__version__}; model {p['model']} (random init); batch {p['batch']}; "
          f"bf16 autocast {'on' if p['device'] == 'cuda' else 'off (CPU)'}", flush=True)
    started = time.perf_counter()
    results: dict = {"device": device_name, "smoke": args.smoke, "parameters": p}
    release = make_release(workdir, p["scale"])
    for name, check in (("step", lambda: step_check(p, workdir)),
                        ("training", lambda: training_check(p, release, workdir)),
                        ("pipeline", lambda: pipeline_check(p, release, workdir)),
                        ("evaluation", lambda: evaluation_check(p, release))):
        begun = time.perf_counter()
        results[name] = check()
        results[name]["check_seconds"] = round(time.perf_counter() - begun, 1)
        print(f"{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in results[name].items()),
              flush=True)
    pipe, train = results["pipeline"], results["training"]
    results["pipeline_over_step"] = pipe["pictures_per_s"] / train["compute_pictures_per_s"]
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"engine step / bare open_clip step: {results['step']['ratio']:.3f}x (batch {p['batch']})")
    print(f"data pipeline ({pipe['workers']} workers) / training step, pictures per second: {results['pipeline_over_step']:.2f}x")
    print(f"total {results['total_seconds']} s")

    from m3el_lib.data.provenance import write_result

    out = args.out or (workdir if args.smoke else HERE / "results")
    tag = "smoke" if args.smoke else device_name.replace(" ", "-").replace("/", "-")
    path = write_result(Path(out) / f"gpu_check-{tag}.json", results, parameters=p, model=p["model"], profile="full")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
