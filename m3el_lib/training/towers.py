"""The two towers as the trainer sees them: which part learns, and a frozen part computed once.

Fine-tuning on a CPU budget freezes most of each pretrained tower and trains only its last
`unlocked_blocks` blocks and its projection ("last"), or only the projection ("heads"). A frozen
part gives the same output every epoch, so with `precompute_frozen` its output (the *prefix*) is
computed once per text and picture and each step runs only the trainable *suffix*. A split is
exact: prefix then suffix equals the tower's own forward pass in eval mode (tests check it).

Architectures we know how to split: open_clip's own ViT image tower and text transformer
(`CLIP`), timm EfficientNet-family image towers (`TimmModel`, as in the sample model; any other
timm trunk at `unlocked_blocks=0`) and Hugging Face BERT-style text towers (`HFTextEncoder`, as
MiniLM in the sample model). Anything else trains end to end (`trainable="all"`).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn as nn

Inputs = Any


class Split:
    """A tower cut into a frozen prefix and a trainable suffix (k = trainable blocks)."""

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks

    def prefix(self, x: torch.Tensor) -> Inputs:  # pragma: no cover - interface
        raise NotImplementedError

    def suffix(self, inputs: Inputs) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def trainable_modules(self) -> list[nn.Module | nn.Parameter]:  # pragma: no cover - interface
        raise NotImplementedError


def _last(blocks: Any, k: int) -> list[nn.Module]:
    return list(blocks)[len(blocks) - k :] if k > 0 else []


def _first(blocks: Any, k: int) -> list[nn.Module]:
    return list(blocks)[: len(blocks) - k]


class ViTSplit(Split):
    """open_clip VisionTransformer (no attention pooling): cut before its last k resblocks."""

    def __init__(self, visual: nn.Module, blocks: int) -> None:
        super().__init__(min(blocks, len(visual.transformer.resblocks)))
        if getattr(visual, "attn_pool", None) is not None:
            raise TypeError("ViT towers with attention pooling are not split; use trainable='all'")
        self.visual = visual

    kind = "vit"

    @property
    def frozen_tower(self) -> nn.Module:
        return self.visual

    def _run(self, x: torch.Tensor, blocks: list[nn.Module]) -> torch.Tensor:
        batch_first = getattr(self.visual.transformer, "batch_first", True)
        if not batch_first:
            x = x.transpose(0, 1)
        for block in blocks:
            x = block(x)
        return x if batch_first else x.transpose(0, 1)

    def prefix(self, x: torch.Tensor) -> Inputs:
        x = self._run(self.visual._embeds(x), _first(self.visual.transformer.resblocks, self.blocks))
        if self.blocks == 0:  # nothing but the projection learns: keep only the pooled features
            return self.visual._pool(x)[0]
        return x

    def suffix(self, inputs: Inputs) -> torch.Tensor:
        pooled = inputs
        if self.blocks > 0:
            x = self._run(inputs, _last(self.visual.transformer.resblocks, self.blocks))
            pooled = self.visual._pool(x)[0]
        return pooled @ self.visual.proj if self.visual.proj is not None else pooled

    def trainable_modules(self) -> list[Any]:
        found: list[Any] = [self.visual.proj] if self.visual.proj is not None else []
        if self.blocks > 0:
            found += _last(self.visual.transformer.resblocks, self.blocks) + [self.visual.ln_post]
        return found


class CLIPTextSplit(Split):
    """The text transformer built into open_clip's CLIP (causal mask, no class token)."""

    def __init__(self, model: nn.Module, blocks: int) -> None:
        super().__init__(min(blocks, len(model.transformer.resblocks)))
        self.model = model

    def _run(self, x: torch.Tensor, blocks: list[nn.Module]) -> torch.Tensor:
        batch_first = getattr(self.model.transformer, "batch_first", True)
        if not batch_first:
            x = x.transpose(0, 1)
        for block in blocks:
            x = block(x, attn_mask=self.model.attn_mask)
        return x if batch_first else x.transpose(0, 1)

    def _pool_project(self, x: torch.Tensor, tokens: torch.Tensor, project: bool) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        m = self.model
        x = m.ln_final(x)
        x = text_global_pool(x, tokens, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
        return self._project(x) if project else x

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        projection = self.model.text_projection
        if projection is None:
            return pooled
        return projection(pooled) if isinstance(projection, nn.Linear) else pooled @ projection

    def prefix(self, tokens: torch.Tensor) -> Inputs:
        m = self.model
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding.to(cast)
        x = self._run(x, _first(m.transformer.resblocks, self.blocks))
        if self.blocks == 0:
            return self._pool_project(x, tokens, project=False)
        return {"hidden": x, "tokens": tokens}

    def suffix(self, inputs: Inputs) -> torch.Tensor:
        m = self.model
        if self.blocks == 0:
            return self._project(inputs)
        x = self._run(inputs["hidden"], _last(m.transformer.resblocks, self.blocks))
        return self._pool_project(x, inputs["tokens"], project=True)

    def trainable_modules(self) -> list[Any]:
        found: list[Any] = [self.model.text_projection] if self.model.text_projection is not None else []
        if self.blocks > 0:
            found += _last(self.model.transformer.resblocks, self.blocks) + [self.model.ln_final]
        return found


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """Fold, in place, each batch norm (eval mode) into the convolution just before it among the
    same parent's children, keeping the norm's activation (timm's BatchNormAct2d): the standard
    inference rewrite, y = conv'(x) with conv' = bn o conv. Returns `module`."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    children = list(module.named_children())
    for _, child in children:
        fold_batch_norms(child)
    for (conv_name, conv), (norm_name, norm) in zip(children, children[1:]):
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
            setattr(module, norm_name, nn.Sequential(getattr(norm, "drop", nn.Identity()), getattr(norm, "act", nn.Identity())))
    return module


class TrunkCut:
    """A timm trunk cut before its last k stages (an EfficientNet-family trunk; any trunk at k=0):
    `features(prefix(x))` equals the trunk's pooled features `trunk(x)` in eval mode.

    Models that share a trunk's weights before the cut share its stored prefix outputs
    (`models.prefix_store`): the sample model's image tower and the EfficientNet-Lite0 baseline."""

    kind = "timm-trunk"

    def __init__(self, trunk: nn.Module, blocks: int) -> None:
        staged = all(hasattr(trunk, a) for a in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "forward_head"))
        if blocks > 0 and not staged:
            raise TypeError(f"timm trunk {type(trunk).__name__} is split only at unlocked_blocks=0")
        self.trunk = trunk
        self.staged = staged
        self.blocks = min(blocks, len(trunk.blocks)) if staged else 0
        self._frozen: nn.Module | None = None

    @property
    def frozen_tower(self) -> nn.Module:
        return self.trunk

    def prefix(self, x: torch.Tensor) -> Inputs:
        """The frozen part's output, computed by `frozen_part` (batch norms folded into the convolutions)."""
        if self._frozen is None:
            self._frozen = self.frozen_part()
        return self._frozen(x)

    def frozen_part(self) -> nn.Module:
        """A copy of the trunk before the cut for inference only: every batch norm folded into the
        convolution before it (`fold_batch_norms`), about 1.7x faster on this project's 2-core CPU
        for the same outputs within ~1e-5 (EfficientNet-family trunks; others run as they are).
        The copy is never trained, saved or hashed."""
        trunk = self.trunk
        if not self.staged:  # folding follows the children's order, which is the forward order only in EfficientNets
            return trunk
        part = trunk if self.blocks == 0 else nn.Sequential(trunk.conv_stem, trunk.bn1, *_first(trunk.blocks, self.blocks))
        folded = fold_batch_norms(copy.deepcopy(part).eval())
        if next(trunk.parameters()).device.type == "cpu":
            folded = folded.to(memory_format=torch.channels_last)
        return folded.requires_grad_(False)

    def features(self, inputs: Inputs) -> torch.Tensor:
        if self.blocks == 0:
            return inputs
        x = inputs
        for stage in _last(self.trunk.blocks, self.blocks):
            x = stage(x)
        return self.trunk.forward_head(self.trunk.bn2(self.trunk.conv_head(x)))

    def trainable_modules(self) -> list[Any]:
        if self.blocks == 0:
            return []
        return _last(self.trunk.blocks, self.blocks) + [self.trunk.conv_head, self.trunk.bn2]


class TimmSplit(Split):
    """open_clip TimmModel: its trunk cut before its last k stages (`TrunkCut`), then the projection head."""

    def __init__(self, visual: nn.Module, blocks: int) -> None:
        if len(visual.head) == 0:
            raise TypeError("a TimmModel without a projection head cannot train 'heads' only")
        self.cut = TrunkCut(visual.trunk, blocks)
        super().__init__(self.cut.blocks)
        self.visual = visual
        self.kind = self.cut.kind

    @property
    def frozen_tower(self) -> nn.Module:
        return self.cut.frozen_tower

    def prefix(self, x: torch.Tensor) -> Inputs:
        return self.cut.prefix(x)

    def suffix(self, inputs: Inputs) -> torch.Tensor:
        return self.visual.head(self.cut.features(inputs))

    def trainable_modules(self) -> list[Any]:
        return [self.visual.head] + self.cut.trainable_modules()


class HFTextSplit(Split):
    """open_clip HFTextEncoder over a BERT-style encoder (MiniLM): cut before its last k layers."""

    def __init__(self, text: nn.Module, blocks: int) -> None:
        encoder = getattr(text.transformer, "encoder", None)
        if blocks > 0 and not (encoder is not None and hasattr(encoder, "layer") and hasattr(text.transformer, "embeddings")):
            raise TypeError(f"HF text model {type(text.transformer).__name__} is split only at unlocked_blocks=0")
        super().__init__(min(blocks, len(encoder.layer)) if blocks > 0 else 0)
        self.text = text

    def _mask(self, tokens: torch.Tensor) -> torch.Tensor:
        return (tokens != self.text.config.pad_token_id).long()

    def _layers(self, hidden: torch.Tensor, mask: torch.Tensor, layers: list[nn.Module]) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        full_mask = create_bidirectional_mask(config=self.text.transformer.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in layers:
            hidden = layer(hidden, full_mask)
            if isinstance(hidden, tuple):  # older transformers return (hidden, ...)
                hidden = hidden[0]
        return hidden

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.modeling_outputs import BaseModelOutput

        return self.text.pooler(BaseModelOutput(last_hidden_state=hidden), mask)

    def prefix(self, tokens: torch.Tensor) -> Inputs:
        mask = self._mask(tokens)
        # Trim the padding every text shares: padded positions never affect real ones (and short
        # captions padded to the context length would cost several times their own length).
        length = max(int(mask.sum(dim=1).max()), 1)
        tokens, mask = tokens[:, :length], mask[:, :length]
        if self.blocks == 0:
            out = self.text.transformer(input_ids=tokens, attention_mask=mask)
            return self.text.pooler(out, mask)
        hidden = self.text.transformer.embeddings(input_ids=tokens)
        hidden = self._layers(hidden, mask, _first(self.text.transformer.encoder.layer, self.blocks))
        return {"hidden": hidden, "mask": mask}

    def suffix(self, inputs: Inputs) -> torch.Tensor:
        if self.blocks == 0:
            return self.text.proj(inputs)
        hidden, mask = inputs["hidden"], inputs["mask"]
        # A store pads every chunk to the longest text; drop the columns no text here uses.
        length = max(int(mask.sum(dim=1).max()), 1)
        hidden, mask = hidden[:, :length], mask[:, :length]
        hidden = self._layers(hidden, mask, _last(self.text.transformer.encoder.layer, self.blocks))
        return self.text.proj(self._pool(hidden, mask))

    def trainable_modules(self) -> list[Any]:
        found: list[Any] = [self.text.proj]
        if self.blocks > 0:
            found += _last(self.text.transformer.encoder.layer, self.blocks)
        return found


def image_split(model: nn.Module, blocks: int) -> Split:
    from open_clip.timm_model import TimmModel
    from open_clip.transformer import VisionTransformer

    visual = model.visual
    if isinstance(visual, VisionTransformer):
        return ViTSplit(visual, blocks)
    if isinstance(visual, TimmModel):
        return TimmSplit(visual, blocks)
    raise TypeError(f"no split for image tower {type(visual).__name__}; use trainable='all'")


def text_split(model: nn.Module, blocks: int) -> Split:
    from open_clip.hf_model import HFTextEncoder

    text = getattr(model, "text", None)
    if isinstance(text, HFTextEncoder):
        return HFTextSplit(text, blocks)
    if text is None and hasattr(model, "token_embedding") and hasattr(model, "transformer"):
        return CLIPTextSplit(model, blocks)
    raise TypeError(f"no split for text tower {type(text).__name__}; use trainable='all'")


class Towers(nn.Module):
    """What the loss calls: `encode_image`, `encode_text` (on store inputs) and `logit_scale`.

    With `precomputed`, store inputs are prefix outputs and encoding runs the suffix only;
    otherwise they are pixels and token ids and encoding is the model's own forward pass.
    """

    def __init__(self, model: nn.Module, image: Split | None, text: Split | None, precomputed: bool) -> None:
        super().__init__()
        self.model = model
        self.image, self.text = image, text
        self.precomputed = precomputed and image is not None and text is not None

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    @torch.no_grad()
    def image_prefix(self, pixels: torch.Tensor) -> Inputs:
        return self.image.prefix(pixels) if self.precomputed else pixels

    @torch.no_grad()
    def text_prefix(self, tokens: torch.Tensor) -> Inputs:
        return self.text.prefix(tokens) if self.precomputed else tokens

    def encode_image(self, inputs: Inputs) -> torch.Tensor:
        return self.image.suffix(inputs) if self.precomputed else self.model.encode_image(inputs)

    def encode_text(self, inputs: Inputs) -> torch.Tensor:
        return self.text.suffix(inputs) if self.precomputed else self.model.encode_text(inputs)

    def prefix_fns(self) -> tuple[Callable[[torch.Tensor], Inputs] | None, Callable[[torch.Tensor], Inputs] | None]:
        """(image, text) functions a store applies once, or None when it keeps raw inputs."""
        if not self.precomputed:
            return None, None
        return self.image_prefix, self.text_prefix


def set_trainable(model: nn.Module, trainable: str, blocks: int, text_blocks: int | None = None) -> tuple[Split | None, Split | None]:
    """Freeze all but what `trainable` names; return the (image, text) splits that describe it.

    "last": the last `blocks` blocks of the image tower and `text_blocks` (default: `blocks`) of
    the text tower, with both projections and the temperature; "heads": projections and
    temperature only; "all": everything (no split).
    """
    if trainable == "all":
        for param in model.parameters():
            param.requires_grad_(True)
        return None, None
    image_k = 0 if trainable == "heads" else blocks
    text_k = 0 if trainable == "heads" else (blocks if text_blocks is None else text_blocks)
    image, text = image_split(model, image_k), text_split(model, text_k)
    for param in model.parameters():
        param.requires_grad_(False)
    for item in image.trainable_modules() + text.trainable_modules() + [model.logit_scale]:
        params = [item] if isinstance(item, nn.Parameter) else list(item.parameters())
        for param in params:
            param.requires_grad_(True)
    return image, text


def freeze_batchnorm(module: nn.Module) -> None:
    """Keep every BatchNorm in eval mode (pretrained statistics; small batches would spoil them)."""
    for child in module.modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            child.eval()
