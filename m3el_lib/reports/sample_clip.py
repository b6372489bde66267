"""The sample CLIP chapter's tables and figures: the corpus (sizes, licences, a gallery), the
pretraining curves, and zero-shot retrieval on the corpus's held-out slice for any loaded model."""
from __future__ import annotations

import textwrap
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..models.pretrain_corpus import Corpus, Pair
from ..timing import timed
from .stats_figures import new_figure, style


def corpus_table(corpus: Corpus) -> pd.DataFrame:
    """Pairs per source and split, with each source's licences (GCompris licenses file by file)."""
    rows = pd.DataFrame([{"source": p.source, "split": p.split, "licence": p.licence} for p in corpus.pairs])
    table = rows.pivot_table(index="source", columns="split", aggfunc="size", fill_value=0)
    table["pairs"] = table.sum(axis=1)
    table["licence"] = rows.groupby("source")["licence"].agg(_licences)
    return table.sort_values("pairs", ascending=False)


def _licences(licences: pd.Series) -> str:
    """One licence as it is; several as "<licence>: <pairs>; ...", most pairs first."""
    counts = licences.value_counts(sort=False).sort_index().sort_values(ascending=False, kind="stable")
    return str(counts.index[0]) if len(counts) == 1 else "; ".join(f"{licence}: {n}" for licence, n in counts.items())


def corpus_gallery(corpus: Corpus, per_source: int = 4, seed: int = 0):
    """A grid of pairs, `per_source` drawn (seeded) from each source, with their captions."""
    rng = np.random.default_rng(seed)
    sources = sorted({p.source for p in corpus.pairs})
    chosen: list[Pair] = []
    for source in sources:
        pairs = [p for p in corpus.pairs if p.source == source]
        chosen += [pairs[i] for i in sorted(rng.choice(len(pairs), size=min(per_source, len(pairs)), replace=False))]
    columns = per_source
    with style():
        fig = new_figure(2.2 * columns, 2.5 * len(sources))
        axes = fig.subplots(len(sources), columns, squeeze=False)
        for ax, pair in zip(axes.flat, chosen):
            ax.imshow(np.asarray(corpus.image(pair.sha256)))
            ax.set_title("\n".join(textwrap.wrap(pair.caption, 26)[:3]), fontsize=7)
            ax.set_xlabel(pair.source, fontsize=7, color="0.4")
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
        fig.suptitle("Pretraining corpus: pictures and their captions as the packages give them", fontsize=10)
    return fig


def curves_figure(history: Sequence[dict[str, float]], heldout_pairs: int):
    """Training loss and held-out Recall@1 (both directions) per epoch, chance marked."""
    frame = pd.DataFrame(history)
    with style():
        fig = new_figure(9, 3.2)
        left, right = fig.subplots(1, 2)
        left.plot(frame["epoch"], frame["loss"], marker=".")
        left.set(xlabel="epoch", ylabel="symmetric InfoNCE loss", title="training loss")
        for column, label in (("heldout_i2t_r1", "picture → caption"), ("heldout_t2i_r1", "caption → picture")):
            if column in frame:
                right.plot(frame["epoch"], frame[column], marker=".", label=label)
        if heldout_pairs:
            right.axhline(1 / heldout_pairs, color="0.5", linestyle="--", label=f"chance (1/{heldout_pairs})")
        right.set(xlabel="epoch", ylabel="Recall@1", title="held-out retrieval", ylim=(0, 1))
        right.legend()
    return fig


@torch.no_grad()
@timed("evaluate")
def heldout_retrieval(loaded: Any, corpus: Corpus, split: str = "heldout", batch: int = 64) -> dict[str, Any]:
    """Recall@1/@5 of picture->caption and caption->picture among a split's pairs, for any
    `LoadedModel` (encoded through its own `encode_*_batch`, i.e. the saved weights as loaded)."""
    pairs = corpus.split(split)
    images, texts = [], []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        pixels = torch.stack([loaded.preprocess(corpus.image(p.sha256)) for p in chunk])
        images.append(loaded.encode_image_batch(pixels))
        texts.append(loaded.encode_text_batch([p.caption for p in chunk]))
    image, text = F.normalize(torch.cat(images), dim=-1), F.normalize(torch.cat(texts), dim=-1)
    scores = image @ text.T
    result: dict[str, Any] = {"pairs": len(pairs), "chance R@1": 1 / len(pairs)}
    for direction, matrix in (("picture→caption", scores), ("caption→picture", scores.T)):
        rank = (matrix > matrix.diagonal()[:, None]).sum(dim=1)
        result[f"{direction} R@1"] = float((rank < 1).float().mean())
        result[f"{direction} R@5"] = float((rank < 5).float().mean())
    result["top captions"] = scores.topk(3, dim=1).indices.tolist()
    return result
