"""How a text-and-image (TI) representation is made from a text and an image embedding.

Our choice (the paper's fusion is not available to us): the L2-normalised sum of the two
L2-normalised embeddings. It needs no extra parameters, so one CLIP model serves all 9 tasks, and
a TI score is then the average of the text and image cosine similarities up to a scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fuse(text_embedding: torch.Tensor, image_embedding: torch.Tensor) -> torch.Tensor:
    """TI embedding from matching rows of text and image embeddings (both [N, D])."""
    summed = F.normalize(text_embedding, dim=-1) + F.normalize(image_embedding, dim=-1)
    return F.normalize(summed, dim=-1)
