"""The one paths/config module: where data, caches and results live, and the run profiles.

Everything lives under one root, `M3EL_HOME` (default: `.m3el/` in the project checkout):

    $M3EL_HOME/data/<dataset>/        built or downloaded datasets (M³EL-mini, the release)
    $M3EL_HOME/cache/                 downloads, embedding cache, HTTP cache, model weights
    $M3EL_HOME/results/<profile>/     tables, figures, checkpoints, each with provenance

Profiles: `sample` (default) is the embedded M³EL-mini sample, the sample model with the weights of
`m3el pretrain` (its miniature CLIP), CPU;
`full` is the real 79,625-instance release, CLIP ViT-B/32 with OpenAI weights, GPU if present.
`M3EL_PROFILE` picks the default profile.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
SNAPSHOT_DIR = PROJECT_ROOT / "data" / "snapshot"
PRETRAIN_CORPUS_DIR = PROJECT_ROOT / "data" / "pretrain_corpus"  # the sample CLIP's picture-caption pairs
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
BOOK_DIR = PROJECT_ROOT / "book"
SAMPLE_DATASET_NAME = "m3el-mini"
RELEASE_DATASET_NAME = "m3el-release"
PROFILE_NAMES = ("sample", "full")
# The release's records name pictures by absolute paths rooted at its top folder, e.g.
# `/M3EL/movies_candidates_images/<name>-<Qid>/<Qid>.jpg`; `M3EL_RELEASE_ROOT` renames that folder.
DEFAULT_RELEASE_ROOT_NAME = "M3EL"


def home() -> Path:
    """The root of all data, caches and results (`M3EL_HOME`, else `<project>/.m3el`)."""
    override = os.environ.get("M3EL_HOME")
    return Path(override).expanduser().resolve() if override else PROJECT_ROOT / ".m3el"


def release_root_name() -> str:
    """The name of the release's top folder that absolute picture paths start with (`/M3EL/...`)."""
    name = os.environ.get("M3EL_RELEASE_ROOT", "").strip().strip("/")
    return name if name and "/" not in name and name not in (".", "..") else DEFAULT_RELEASE_ROOT_NAME


def data_dir() -> Path:
    return home() / "data"


def cache_dir() -> Path:
    return home() / "cache"


def results_dir(profile: str | None = None) -> Path:
    return home() / "results" / get_profile(profile).name


def dataset_dir(name: str) -> Path:
    return data_dir() / name


@dataclass(frozen=True)
class Profile:
    """A named set of choices: which dataset, which model, which device."""

    name: str
    dataset: str  # dataset name under data_dir()
    model: str  # model name understood by m3el_lib.models.loading
    pretrained: str  # open_clip pretrained tag, or "sample-clip" for the sample model's own pretraining
    device: str  # "cpu" or "auto" (cuda when available)
    description: str


PROFILES: dict[str, Profile] = {
    "sample": Profile(
        name="sample",
        dataset=SAMPLE_DATASET_NAME,
        model="m3el-mini-dual",
        pretrained="sample-clip",  # the weights of `m3el pretrain` (the sample's miniature CLIP)
        device="cpu",
        description="M³EL-mini (built from the committed snapshot), sample dual encoder pretrained by `m3el pretrain`, CPU",
    ),
    "full": Profile(
        name="full",
        dataset=RELEASE_DATASET_NAME,
        model="ViT-B-32",
        pretrained="openai",
        device="auto",
        description="the M³EL release (79,625 instances), CLIP ViT-B/32 OpenAI weights, GPU if present",
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called `name` (default: `M3EL_PROFILE`, else `sample`)."""
    chosen = name or os.environ.get("M3EL_PROFILE") or "sample"
    try:
        return PROFILES[chosen]
    except KeyError:
        raise ValueError(f"unknown profile {chosen!r}; expected one of {', '.join(PROFILE_NAMES)}") from None


def resolve_device(device: str | None = None, profile: str | Profile | None = None) -> str:
    """The one device resolver: an explicit device wins; None means the profile's device;
    "auto" means CUDA when a GPU is visible, else the CPU."""
    chosen = device or (profile if isinstance(profile, Profile) else get_profile(profile)).device
    if chosen != "auto":
        return chosen
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_choice(profile: str | Profile | None = None, model: str | None = None,
                 pretrained: str | None = None) -> tuple[str, str | None]:
    """(model name, pretrained tag or None): explicit choices win, else the profile's.

    The profile's pretrained tag belongs to the profile's model only: another model named
    without a tag gets its own default (None).
    """
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    name = model or chosen.model
    if pretrained is not None:
        return name, pretrained or None
    return name, (chosen.pretrained or None) if name == chosen.model else None


def parse_key_value(text: str) -> tuple[str, object]:
    """`KEY=VALUE` with VALUE read as JSON when it parses (numbers, lists, true), else as a Python
    literal (`False`, `None`: what a notebook's parameter cell says), else a string."""
    import ast
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{text!r}: expected KEY=VALUE")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        pass
    try:
        return key.strip(), ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return key.strip(), raw
