"""Tiny synthetic datasets in the exact release format, for tests and benchmarks.

Nothing here is shown as a result: the book's numbers come from M³EL-mini or the release. Each
synthetic entity has a name, a description and a small picture whose colour encodes the entity,
so image similarity is learnable; candidates share the mention's name ("Mercury (1)", ...).
"""
from __future__ import annotations

import io as _io
import random
from pathlib import Path

from .io import write_dataset
from .schema import SPLITS, Entity, ImageRef, Instance

TOPICS = ("movies", "nature", "geography", "science", "people")
NAMES = ("Mercury", "Orange", "Java", "Crane", "Casablanca", "Thriller", "Jaguar", "Amazon", "Apple", "Python")


def _png(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    from PIL import Image

    buffer = _io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def make_instances(
    n: int,
    seed: int = 0,
    candidates: int = 4,
    image_every: int = 1,
    kb: str = "wikidata",
) -> tuple[list[Instance], dict[str, tuple[int, int, int]]]:
    """n instances (and the colour of each picture file) with `candidates` same-name entities each.

    Every `image_every`-th instance has pictures (mention and all candidates); the rest are text-only.
    """
    rng = random.Random(seed)
    prefix = "Q" if kb == "wikidata" else "X"
    colours: dict[str, tuple[int, int, int]] = {}
    instances = []
    for i in range(n):
        name = NAMES[i % len(NAMES)]
        with_images = i % image_every == 0
        entities = []
        for j in range(candidates):
            qid = f"{prefix}{1 + i * candidates + j}"
            image = None
            if with_images:
                colours[f"images/{qid}.png"] = _colour(rng)
                image = ImageRef(f"{qid}.png", f"https://example.org/{qid}.png", f"images/{qid}.png")
            entities.append(Entity(qid, f"{name} ({j + 1})", f"{name} sense {j + 1}: {TOPICS[j % len(TOPICS)]} thing", image))
        rng.shuffle(entities)
        gold = entities[rng.randrange(candidates)]
        mention_image = None
        if with_images:
            base = colours[gold.image.local_path]
            colours[f"images/m{i}.png"] = tuple(min(255, c + 8) for c in base)  # a different file, same look
            mention_image = ImageRef(f"m{i}.png", "", f"images/m{i}.png")
        instances.append(
            Instance(
                qid=gold.qid,
                name=gold.name,
                description=gold.description,
                sentence=f"In this sentence {gold.name.split(' (')[0]} means {gold.description}.",
                image=mention_image,
                candidates=tuple(entities),
                topic=TOPICS[i % len(TOPICS)],
                split=SPLITS[i % len(SPLITS)],
                instance_id=f"syn-{i}",
                mention_image_kind="distinct" if with_images else "none",
                kb=kb,
            )
        )
    return instances, colours


def write_synthetic_dataset(out_dir: Path | str, n: int = 30, seed: int = 0, **kwargs: object) -> Path:
    """Write a synthetic dataset folder (records and pictures) and return it."""
    out_dir = Path(out_dir)
    instances, colours = make_instances(n, seed=seed, **kwargs)  # type: ignore[arg-type]
    for local_path, rgb in colours.items():
        target = out_dir / local_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_png(rgb))
    write_dataset(instances, out_dir)
    return out_dir
