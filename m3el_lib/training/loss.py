"""The modality-augmented InfoNCE loss of one micro-batch.

Each mention i, encoded in its sampled mention modality, is scored against every entity of the
micro-batch's pool (all golds and all hard negatives, each once) encoded in i's sampled entity
modality; cross-entropy picks out its gold. TI is `m3el_lib.models.fusion.fuse` of the T and I
embeddings, exactly as evaluation builds it. A pool entity without a picture cannot be scored by
picture, so it is left out (-inf) of the rows whose entity modality needs one.

Only the mention -> entity direction is trained: that is the linking question, and a symmetric
term would have to pick one modality per entity although the rows disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.fusion import fuse
from .data import MicroBatch

T, I, TI = 0, 1, 2
MAX_LOGIT_SCALE = 100.0  # as open_clip clamps CLIP's learned temperature


def _spread(rows: torch.Tensor, values: torch.Tensor | None, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """[N, D] embeddings for N items from values of the items whose row is >= 0 (zeros elsewhere)."""
    out = torch.zeros(rows.shape[0], dim, dtype=dtype, device=rows.device)
    if values is not None:
        present = rows >= 0
        out[present] = values[rows[present]].to(dtype)
    return out


def modality_embeddings(text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """[3, N, D]: the T, I and TI embeddings (all L2-normalised) of N items."""
    return torch.stack([F.normalize(text, dim=-1), F.normalize(image, dim=-1), fuse(text, image)])


@dataclass
class LossOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # [B, P], -inf where an entity is out of a row's modality
    accuracy: torch.Tensor  # in-batch top-1 over the pool (a training-time diagnostic)


class ModalityAugmentedLoss(nn.Module):
    """Wraps the towers so that one forward call gives the loss (as DistributedDataParallel needs)."""

    def __init__(self, towers: nn.Module, entity_alignment: float = 0.0) -> None:
        super().__init__()
        self.towers = towers
        self.entity_alignment = entity_alignment

    def embed(self, batch: MicroBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mention embeddings [3, B, D], entity embeddings [3, P, D], entity has-picture mask [P]."""
        towers = self.towers
        parts = {}
        for name, inputs, encode in (
            ("mt", batch.mention_text, towers.encode_text),
            ("mi", batch.mention_image, towers.encode_image),
            ("et", batch.entity_text, towers.encode_text),
            ("ei", batch.entity_image, towers.encode_image),
        ):
            parts[name] = encode(inputs) if inputs is not None else None
        first = next(v for v in parts.values() if v is not None)
        dim, dtype = first.shape[-1], torch.float32
        mentions = modality_embeddings(
            _spread(batch.mention_text_row, parts["mt"], dim, dtype), _spread(batch.mention_image_row, parts["mi"], dim, dtype)
        )
        entities = modality_embeddings(
            _spread(batch.entity_text_row, parts["et"], dim, dtype), _spread(batch.entity_image_row, parts["ei"], dim, dtype)
        )
        return mentions, entities, batch.entity_image_row >= 0

    def forward(self, batch: MicroBatch) -> LossOutput:
        mentions, entities, has_image = self.embed(batch)
        rows = torch.arange(batch.size, device=batch.targets.device)
        queries = mentions[batch.mention_modality, rows]  # [B, D]
        # [3, B, P] scores against the pool in every entity modality, then each row's own.
        scores = torch.einsum("bd,mpd->mbp", queries, entities)
        scale = self.towers.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        # Scale first, mask after: a masked -inf times the scale would give the scale a NaN gradient.
        logits = scale * scores[batch.entity_modality, rows]
        needs_image = batch.entity_modality != T
        logits = logits.masked_fill(needs_image[:, None] & ~has_image[None, :], float("-inf"))
        loss = F.cross_entropy(logits, batch.targets)
        if self.entity_alignment > 0:
            loss = loss + self.entity_alignment * entity_view_loss(entities, batch, scale)
        accuracy = (logits.argmax(dim=1) == batch.targets).float().mean()
        return LossOutput(loss=loss, logits=logits.detach(), accuracy=accuracy.detach())


def entity_view_loss(entities: torch.Tensor, batch: MicroBatch, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between the text and picture views of the pool's entities.

    Our addition (see the training chapter): the knowledge base gives every entity in both
    modalities, so each pool entity's picture should be found from its text among the pool's
    pictures, and back. It uses entity records only, never which candidate is a mention's gold.
    """
    both = (batch.entity_text_row >= 0) & (batch.entity_image_row >= 0)
    if int(both.sum()) < 2:
        return entities.new_zeros(())
    text, image = entities[T][both], entities[I][both]
    logits = scale * text @ image.T
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
