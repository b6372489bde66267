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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as paths
from .config import TrainConfig, load_config

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


def run_dir(config: TrainConfig) -> Path:
    return Path(config.output_dir) if config.output_dir else paths.results_dir(config.profile) / config.run_name


@dataclass
class ExperimentResult:
    """One finished run: where it is, its history, and how long it took (None when reused)."""

    label: str
    config: TrainConfig
    output_dir: Path
    history: dict[str, Any]
    summary: dict[str, Any]
    wall_seconds: float | None

    @property
    def best_path(self) -> Path:
        return self.output_dir / "best.pt"


def finished(config: TrainConfig) -> bool:
    """A run of exactly this config has finished (its summary and export are there)."""
    folder = run_dir(config)
    summary, history = folder / "train_summary.json", folder / "history.json"
    if not (summary.is_file() and history.is_file() and (folder / "best.pt").is_file()):
        return False
    saved = json.loads(history.read_text())
    return not config.differences(saved.get("config", {})) and bool(saved.get("stopped"))


def run_experiment(label: str, config: TrainConfig, retrain: bool = True, clear_prefix_cache: bool = False) -> ExperimentResult:
    """Train `config` (timed from model loading to the last checkpoint), or reuse its finished run.

    clear_prefix_cache: delete the stored frozen-prefix outputs first, so the time includes
    computing them (the honest cold-start figure).
    """
    wall = None
    if retrain or not finished(config):
        if clear_prefix_cache:
            for stale in (paths.cache_dir() / "training").glob("*-prefix-*.pt"):
                stale.unlink()
        from .engine import train

        started = time.perf_counter()
        train(config)
        wall = time.perf_counter() - started
    folder = run_dir(config)
    history = json.loads((folder / "history.json").read_text())
    summary = json.loads((folder / "train_summary.json").read_text())
    if wall is not None:
        summary["wall_seconds_end_to_end"] = round(wall, 1)
        from ..data.provenance import write_result

        write_result(folder / "train_summary.json", summary, parameters=config.to_dict(),
                     data_checksum=history.get("data_checksum", ""), profile=config.profile, model=summary.get("model"))
    return ExperimentResult(label, config, folder, history, summary, wall)


def load_run(path: Path | str, profile: str | None = None) -> TrainConfig:
    """A committed config file, for `profile` (its dataset and device come from the profile)."""
    config = load_config(path)
    return config if profile is None else config.replace(profile=paths.get_profile(profile).name)


def plot_curves(results: list[ExperimentResult], tasks: tuple[str, ...] = ("T-I", "I-T", "T-T")):
    """Training loss per step (left) and validation Acc@1 per epoch (right; mean and some tasks)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for result in results:
        train = result.history["train"]
        left.plot([r["step"] for r in train], [r["loss"] for r in train], label=result.label, lw=1)
        val = result.history["val"]
        epochs = [r["epoch"] + 1 for r in val]
        line = right.plot(epochs, [r["acc_all_mean"] for r in val], lw=2, label=f"{result.label}: mean of 9 tasks")[0]
        for task, style in zip(tasks, (":", "--", "-.")):
            key = f"acc_{task}"
            if all(key in r for r in val):
                right.plot(epochs, [r[key] for r in val], style, color=line.get_color(), lw=1, label=f"{result.label}: {task}")
    left.set(xlabel="optimiser step", ylabel="training loss (InfoNCE)", title="training loss")
    right.set(xlabel="epoch", ylabel="validation Acc@1", title="validation accuracy (val split)", ylim=(0, 1.02))
    left.legend(fontsize=7)
    right.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- what the full run needs

# Assumptions (not measurements): stated beside every estimate.
RELEASE_INSTANCES = 79_625  # the paper's count
GPU_PEAK_TFLOPS = {"A100 (bf16 dense)": 312.0, "H100 SXM (bf16 dense)": 989.0}  # vendor data sheets
ASSUMED_UTILISATION = 0.35  # share of peak a ViT-B/32 contrastive step sustains; an assumption


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
