"""The CLIP_ND runs the book shows (notebook 05) and what the full run would need.

- `SAMPLE_RUNS` / `FULL_RUNS`: the committed config files of CLIP_ND and its ablations.
- `run_experiment`: train one config (timed end to end: model, data, frozen-prefix stores and the
  epochs), or reuse a finished run of the same config.
- `plot_curves`: loss per step and validation accuracy per epoch from a run's history.
- `full_run_estimate`: GPU hours and memory of the full run, ESTIMATED from quantities measured
  here (FLOPs and saved activations of one ViT-B/32 training step, counted by PyTorch; the sample's
  encodes per example) and stated assumptions (GPU throughput, utilisation, release split).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as paths
from ..data.provenance import write_result
from ..reports.model_card import write_model_card
from ..paper import RELEASE_INSTANCES
from ..timing import timed
from .config import TrainConfig, load_config
from .engine import TrainResult, train
from .runs import RunDir

CONFIG_DIR = paths.PROJECT_ROOT / "configs"
SAMPLE_RUNS = {
    "CLIP_ND": CONFIG_DIR / "clip_nd_sample.json",
    "ablation: T-T pairing only": CONFIG_DIR / "ablation_tt_only_sample.json",
    "ablation: 9 pairings, no entity-view alignment": CONFIG_DIR / "ablation_no_entity_alignment_sample.json",
}
FULL_RUNS = {
    "CLIP_ND": CONFIG_DIR / "clip_nd_full.json",
    "ablation: T-T pairing only": CONFIG_DIR / "ablation_tt_only_full.json",
}


def runs_for(profile: str) -> dict[str, Path]:
    return SAMPLE_RUNS if paths.get_profile(profile).name == "sample" else FULL_RUNS


@dataclass
class ExperimentResult:
    """One finished run: where it is, its history, and how long it took (None when reused)."""

    label: str
    config: TrainConfig
    run: RunDir
    history: dict[str, Any]
    summary: dict[str, Any]
    wall_seconds: float | None


def train_run(config: TrainConfig, resume: Path | str | None = None) -> TrainResult:
    """Train (under torchrun: this process's share), then write the run's model card on rank 0."""
    result = train(config, resume=resume)
    if os.environ.get("RANK", "0") == "0":
        run = RunDir(result.output_dir)
        write_model_card(run.path, run.summary(), run.history())
    return result


def run_experiment(label: str, config: TrainConfig, retrain: bool = True, clear_prefix_cache: bool = False) -> ExperimentResult:
    """Train `config` (timed from model loading to the last checkpoint), or reuse its finished run.

    clear_prefix_cache: delete the stored frozen-prefix outputs first, so the time includes
    computing them (the honest cold-start figure).
    """
    run = RunDir.for_config(config)
    wall = None
    if retrain or not run.finished_for(config):
        if clear_prefix_cache:
            for stale in (paths.cache_dir() / "training").glob("*-prefix-*.pt"):
                stale.unlink()
        started = time.perf_counter()
        train_run(config)
        wall = time.perf_counter() - started
    history, summary = run.history(), run.summary()
    if wall is not None:
        summary["wall_seconds_end_to_end"] = round(wall, 1)
        write_result(run.summary_file, summary, parameters=config.to_dict(),
                     data_checksum=history.get("data_checksum", ""), profile=config.profile, model=summary.get("model"))
    return ExperimentResult(label, config, run, history, summary, wall)


def load_run(path: Path | str, profile: str | None = None) -> TrainConfig:
    """A committed config file, for `profile` (its dataset and device come from the profile)."""
    config = load_config(path)
    return config if profile is None else config.replace(profile=paths.get_profile(profile).name)


# ---------------------------------------------------------------- what the full run needs

# Assumptions (not measurements): stated beside every estimate.
GPU_PEAK_TFLOPS = {"A100 (bf16 dense)": 312.0, "H100 SXM (bf16 dense)": 989.0}  # vendor data sheets
ASSUMED_UTILISATION = 0.35  # share of peak a ViT-B/32 contrastive step sustains; an assumption


@timed("estimate")
def vit_b32_step_costs(batch: int = 4) -> dict[str, float]:
    """FLOPs and saved-activation bytes per picture and per text of one ViT-B/32 training step,
    counted by PyTorch on this machine (random weights; counts do not depend on the weights)."""
    import open_clip
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import logging

    torch.manual_seed(0)
    logging.disable(logging.WARNING)  # open_clip warns that no pretrained weights were loaded: intended
    try:
        model = open_clip.create_model("ViT-B-32", pretrained=None)
    finally:
        logging.disable(logging.NOTSET)
    model.train()
    pixels = torch.randn(batch, 3, 224, 224)
    tokens = torch.randint(1, 49407, (batch, 77))
    out: dict[str, float] = {"parameters": float(sum(p.numel() for p in model.parameters()))}
    for name, run in (("image", lambda: model.encode_image(pixels)), ("text", lambda: model.encode_text(tokens))):
        saved = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved.append(t.numel() * t.element_size())
            return t

        counter = FlopCounterMode(display=False)
        started = time.perf_counter()
        with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run().float().sum().backward()
        out[f"{name}_seconds_cpu"] = (time.perf_counter() - started) / batch
        out[f"{name}_train_flops"] = counter.get_total_flops() / batch
        out[f"{name}_activation_bytes_fp32"] = sum(saved) / batch
    return out


def encodes_per_example(history: dict[str, Any], examples: list[Any], hard_negatives: int = -1) -> dict[str, float]:
    """Mean pictures and texts one training example makes the model encode (from the sample's own
    epoch plan: its sampled pairings and micro-batch pools)."""
    from .data import IMAGE_MODALITIES, TEXT_MODALITIES, epoch_plan

    plan = epoch_plan(examples, history["config"]["seed"], 0, hard_negatives)
    pictures = texts = 0.0
    for p in plan:
        example = examples[p.example]
        pool = 1 + len(p.negatives)
        texts += p.task.mention in TEXT_MODALITIES
        pictures += p.task.mention in IMAGE_MODALITIES
        # with the entity-view alignment every pool entity is encoded both ways
        both = history["config"].get("entity_alignment", 0) > 0
        texts += pool if (both or p.task.entity in TEXT_MODALITIES) else 0
        pictures += pool if ((both and example.entity_images) or p.task.entity in IMAGE_MODALITIES) else 0
    return {"pictures": pictures / len(plan), "texts": texts / len(plan)}


def full_run_estimate(costs: dict[str, float], per_example: dict[str, float], epochs: int = 10, batch: int = 128,
                      train_share: float = 0.6) -> dict[str, Any]:
    """GPU hours and memory of the full run: an ESTIMATE (see the module docstring)."""
    train_examples = RELEASE_INSTANCES * train_share
    flops_per_example = per_example["pictures"] * costs["image_train_flops"] + per_example["texts"] * costs["text_train_flops"]
    total_flops = flops_per_example * train_examples * epochs
    hours = {gpu: total_flops / (peak * 1e12 * ASSUMED_UTILISATION) / 3600 for gpu, peak in GPU_PEAK_TFLOPS.items()}
    params = costs["parameters"]
    # fp32 weights + grads + two AdamW moments; activations saved for backward, per example, halved
    # under bf16 autocast (an approximation: some saved tensors stay fp32).
    state_gb = params * 16 / 1e9
    activations_gb = batch * (per_example["pictures"] * costs["image_activation_bytes_fp32"]
                              + per_example["texts"] * costs["text_activation_bytes_fp32"]) / 1e9
    cpu_days = (per_example["pictures"] * costs["image_seconds_cpu"] + per_example["texts"] * costs["text_seconds_cpu"]) \
        * train_examples * epochs / 86400
    return {
        "assumptions": {
            "release instances (paper)": RELEASE_INSTANCES, "train share (ours, as in the sample)": train_share,
            "epochs": epochs, "global batch": batch, "GPU utilisation of peak": ASSUMED_UTILISATION,
        },
        "train FLOPs per example (measured)": flops_per_example,
        "total train FLOPs": total_flops,
        "GPU hours (estimate)": hours,
        "GPU memory GB, fp32 activations (estimate)": round(state_gb + activations_gb, 1),
        "GPU memory GB, bf16 activations (estimate)": round(state_gb + activations_gb / 2, 1),
        "this 2-core CPU, days (extrapolated from measured seconds)": round(cpu_days, 1),
    }


# ---------------------------------------------------------------- what the full run needs, from measurements

RESULTS_DIR = paths.PROJECT_ROOT / "benchmarks" / "results"


def _latest(folder: Path, pattern: str, accept: Any) -> tuple[Path, dict[str, Any]] | None:
    found = []
    for path in sorted(folder.glob(pattern)):
        if path.name.endswith(".provenance.json"):
            continue
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if accept(body):
            found.append((path.stat().st_mtime, path, body))
    return (found[-1][1], found[-1][2]) if found else None


def _row(quantity: str, value: float, unit: str, basis: str) -> dict[str, Any]:
    return {"quantity": quantity, "value": round(value, 2), "unit": unit, "basis": basis}


def _extrapolate(scales: dict[str, dict[str, Any]], stage: str) -> float:
    """A stage's seconds at the release's size from its measured scales.

    Work units: instances, or mentions x knowledge-base entities for full-KB ranking (which grows
    with the square). With two or more scales, a fixed cost (start-up, model loading) plus a cost
    per unit fitted through the two largest; with one, the cost per unit alone (an upper bound).
    """
    def units(sizes: dict[str, float], instances: float) -> float:
        if "full-KB" in stage:  # entities grow with instances in the same proportion
            return instances * sizes["entities"] * instances / sizes["instances"]
        return instances

    measured = sorted((float(k), v) for k, v in scales.items() if stage in v)
    points = [(units(v["sizes"], v["sizes"]["instances"]), v[stage]["seconds"]) for _, v in measured]
    target = units(measured[-1][1]["sizes"], RELEASE_INSTANCES)
    if len(points) >= 2 and points[-1][0] > points[-2][0]:
        (u1, s1), (u2, s2) = points[-2], points[-1]
        per_unit = (s2 - s1) / (u2 - u1)
        if per_unit > 0:
            return s2 + per_unit * (target - u2)
    return points[-1][1] * target / points[-1][0]


def measured_full_run_needs(results_dir: Path | str = RESULTS_DIR, epochs: int = 10, batch: int = 128,
                            train_share: float = 0.6) -> list[dict[str, Any]]:
    """What the full run needs, computed from the figures the benchmarks recorded.

    GPU figures (`benchmarks/gpu_check.sh` -> `gpu_check-<device>.json`) when recorded; else CPU
    figures (`benchmarks/bench_full_scale.py` -> `full_scale-cpu.json`), every row then marked a
    CPU extrapolation. Each row names its basis (which file, which device, which model); empty
    when neither file is there. The release's size is the paper's; the train share is ours.
    """
    folder = Path(results_dir)
    train_examples = RELEASE_INSTANCES * train_share
    gpu = _latest(folder, "gpu_check-*.json", lambda b: not b.get("smoke") and "step" in b and "cpu" not in b["device"])
    rows: list[dict[str, Any]] = []
    if gpu is not None:
        path, found = gpu
        basis = f"measured on {found['device']} ({path.name}), {found['parameters']['model']} random init, bf16"
        train, evaluation, step = found["training"], found["evaluation"], found["step"]
        steps = train_examples // train["examples_per_step"] * epochs
        rows += [
            _row("training: seconds per step (full preset, batch %d)" % train["examples_per_step"], train["median_step_s"], "s", basis),
            _row(f"training: {epochs} epochs on {train_examples:,.0f} examples, one GPU", steps * train["median_step_s"] / 3600, "GPU hours", basis),
            _row("training: peak GPU memory", train.get("peak_allocated_gib", float("nan")), "GiB", basis),
            _row("training: share of the step waiting on data", 100 * train["data_wait_share"], "%", basis),
        ]
        if "data_wait_share_within_epoch" in train:  # workers start with each epoch; the check's epochs are short
            rows.append(_row(f"training: share waiting on data, each epoch's first step left out ({train['epochs']} loader starts)",
                             100 * train["data_wait_share_within_epoch"], "%", basis))
        rows += [
            _row("data pipeline / training step (pictures per second)", found["pipeline_over_step"], "x", basis),
            _row("engine step / bare open_clip step", step["ratio"], "x", basis),
            _row(f"evaluation: embedding {RELEASE_INSTANCES:,} instances", RELEASE_INSTANCES / evaluation["instances_per_s"] / 3600, "GPU hours", basis),
            # full-KB ranking compares every mention with every entity: it grows with the square
            _row("evaluation: full-KB ranking at the release's size (grows with the square)",
                 evaluation["ranking_seconds"] * (RELEASE_INSTANCES / evaluation["instances"]) ** 2 / 3600, "GPU hours", basis),
        ]
        return rows
    cpu = _latest(folder, "full_scale-cpu.json", lambda b: "scales" in b)
    if cpu is None:
        return rows
    path, found = cpu
    scales = found["scales"]
    largest = scales[max(scales, key=float)]
    base = scales[min(scales, key=float)]
    measured_scales = ', '.join(sorted(scales, key=float))
    at_size = float(max(scales, key=float)) >= 1.0  # the release's size itself was run: a measurement
    basis = (f"measured on this CPU at the release's size, {path.name} ({found['device']}, scales {measured_scales})" if at_size
             else f"CPU extrapolation from {path.name} ({found['device']}, scales {measured_scales})")
    per_example = base["pipeline"]["step_seconds_per_example"]
    rows.append(_row(f"training: {epochs} epochs on {train_examples:,.0f} examples, {found['step_model']} on this CPU",
                     per_example * train_examples * epochs / 86400, "CPU days",
                     f"CPU extrapolation from {path.name} ({found['device']}, {found['step_model']} steps at batch {found['step_batch']})"))
    for stage in largest:
        if stage in ("pipeline", "sizes", "generate") or "steps" in stage or "pipeline" in stage:
            continue
        model = f" ({found['eval_model']})" if "evaluate" in stage else ""
        rows.append(_row(f"{stage} on {RELEASE_INSTANCES:,} instances{model}", _extrapolate(scales, stage) / 60,
                         "CPU minutes", basis))
    peak = max(f["peak_gib"] for name, f in largest.items() if name not in ("pipeline", "sizes"))
    rows.append(_row(f"peak memory of any stage at {largest['sizes']['instances']:,} instances (measured)", peak, "GiB", basis))
    return rows
