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
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
BOOK_DIR = PROJECT_ROOT / "book"
SAMPLE_DATASET_NAME = "m3el-mini"
RELEASE_DATASET_NAME = "m3el-release"
PROFILE_NAMES = ("sample", "full")


def home() -> Path:
    """The root of all data, caches and results (`M3EL_HOME`, else `<project>/.m3el`)."""
    override = os.environ.get("M3EL_HOME")
    return Path(override).expanduser().resolve() if override else PROJECT_ROOT / ".m3el"


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

    @property
    def dataset_path(self) -> Path:
        return dataset_dir(self.dataset)


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


def resolve_device(profile: Profile) -> str:
    if profile.device != "auto":
        return profile.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
