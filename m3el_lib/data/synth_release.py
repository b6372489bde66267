"""A release-sized synthetic M³EL release, for scale and fault tests only (never shown as a result).

`write_synth_release(out_dir, scale=1.0, seed=0)` writes `out_dir/M3EL.zip`, packed as the
release is: one `M3EL/` folder holding the record files (`<topic>.json`, JSON arrays) and the
pictures, under the documented path layout

    /M3EL/<topic>_candidates_images/<name>-<id>/<id>.<ext>     (candidates; .jpg, .JPG or .png)
    /M3EL/<topic>_mention_images/<instance number>.<ext>       (mentions: our guess, the
                                                                documentation shows none)

Records carry exactly the documented fields `{Qid, name, description, sentence, image: [file
name, URL, local path], candidates: [{Qid, name, description, image}, ...]}` plus `kb`, because
the ids are not Wikidata's: they use the schema's local-id convention (`X<digits>`) in their own
namespace `kb: "m3el-synthetic"`, names read "Synthetic entity N", URLs point at the reserved
`.invalid` domain. Nothing here can be mistaken for real data.

Proportions follow M³EL-mini (see the constants); entities recur across instances as in a real
knowledge base (a gold entity is linked by several mentions, popular entities are negatives of
many instances). Pictures are real JPEG (and PNG) files of realistic sizes, but cheap: every file
is one of a small pool of encoded pictures, so 79,625 instances take a couple of minutes.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..paper import RELEASE_INSTANCES
from ..fsutil import atomic_write_with
from .synthetic import TOPICS

KB = "m3el-synthetic"
ROOT = "M3EL"
# Proportions measured on M³EL-mini (data checksum d9eaf7a22f8b, 2,219 instances) with
# m3el_lib.statistics.core.compute_stats (its overview, image_coverage table and per-instance table):
# - every instance has 4 candidates (candidates_mean 4.0, min = max);
# - 1,497 of 2,219 gold entities (67.5%) have a picture; a mention shows one only when its gold
#   has one, and then in 1,274 of 1,497 instances (85.1%; the others are text-only mentions);
# - pictures cluster: of the 1,497 instances with a pictured gold, 1,390 (92.9%) have every
#   candidate pictured; the other 829 instances have 463 pictured negatives out of 2,487 (18.6%);
# - 2,087 distinct entities fill the 8,876 candidate slots (0.235 per slot), 1,604 distinct gold
#   entities for 2,219 instances (0.723); the most-used entity is a candidate of 61 instances;
# - every listed picture's file is present (files_present equals with_image).
CANDIDATES = 4
GOLD_PICTURE_SHARE = 1497 / 2219
MENTION_PICTURE_SHARE_WITH_PICTURED_GOLD = 1274 / 1497
ALL_PICTURED_WITH_PICTURED_GOLD = 1390 / 1497
PICTURED_NEGATIVE_SHARE_OTHERWISE = 463 / 2487
ENTITIES_PER_SLOT = 2087 / 8876
GOLDS_PER_INSTANCE = 1604 / 2219
# Extensions of the candidate pictures: the documentation shows `.jpg`; Commons files also come
# as `.JPG` and `.png` (our mix, so that loaders meet all three).
EXTENSIONS = ((".jpg", 0.80), (".JPG", 0.12), (".png", 0.08))
# Picture sizes (width, height): common photo and thumbnail shapes, landscape, portrait, square.
JPEG_SIZES = ((320, 240), (400, 300), (500, 375), (640, 480), (800, 600), (1024, 768), (300, 400),
              (375, 500), (480, 640), (512, 512), (250, 250), (1280, 960))
PNG_SIZES = ((256, 256), (320, 240), (200, 300), (400, 300))
POOL_PER_SIZE = 4  # distinct encoded pictures per size (variety for decoders, little CPU)
JPEG_QUALITY = 85
FIXED_TIME = (2024, 10, 23, 0, 0, 0)  # archive member dates: the same bytes on every run


@dataclass(frozen=True)
class SynthEntity:
    number: int
    topic: str
    has_picture: bool
    extension: str

    @property
    def qid(self) -> str:
        return f"X{self.number}"

    @property
    def name(self) -> str:
        return f"Synthetic entity {self.number}"

    def record(self) -> dict[str, Any]:
        return {
            "Qid": self.qid,
            "name": self.name,
            "description": f"synthetic {self.topic} entity number {self.number}, made for scale tests (not a real entity)",
            "image": self.image(),
        }

    def image(self) -> list[str] | None:
        if not self.has_picture:
            return None
        file_name = f"{self.qid}{self.extension}"
        return [f"Synthetic_entity_{self.number}{self.extension}", f"https://synthetic.invalid/m3el/{file_name}",
                f"/{ROOT}/{self.topic}_candidates_images/{self.name}-{self.qid}/{file_name}"]


# ---------------------------------------------------------------- pictures


def _picture(rng: np.random.Generator, width: int, height: int, grain: float) -> "Image.Image":
    """A smooth photo-like picture: a colour gradient and soft blobs drawn small and enlarged
    (cheap), plus a little grain for JPEG's sake (photos are not flat)."""
    from PIL import Image

    small_w, small_h = max(8, width // 8), max(8, height // 8)
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    mix = (x / small_w * 0.6 + y / small_h * 0.4)[..., None]
    image = start * (1 - mix) + end * mix
    for _ in range(6):
        cx, cy, r = rng.uniform(0, small_w), rng.uniform(0, small_h), rng.uniform(0.05, 0.3) * min(small_w, small_h)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        image = image * (1 - blob) + rng.uniform(0, 255, 3) * blob
    large = np.asarray(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize((width, height), Image.BILINEAR),
                       dtype=np.float32)
    if grain:
        large = large + rng.normal(0, grain, large.shape).astype(np.float32)
    return Image.fromarray(np.clip(large, 0, 255).astype(np.uint8))


def picture_pool(seed: int) -> dict[str, list[bytes]]:
    """Encoded pictures by extension: JPEG for .jpg/.JPG, PNG for .png (seeded, deterministic)."""
    rng = np.random.default_rng([seed, 7])
    pool: dict[str, list[bytes]] = {"jpeg": [], "png": []}
    for kind, sizes in (("jpeg", JPEG_SIZES), ("png", PNG_SIZES)):
        for width, height in sizes:
            for _ in range(POOL_PER_SIZE):
                buffer = io.BytesIO()
                # PNGs on Commons are mostly drawings and logos: flat, no grain
                picture = _picture(rng, width, height, grain=3.0 if kind == "jpeg" else 0.0)
                if kind == "jpeg":
                    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
                else:
                    picture.save(buffer, format="PNG")
                pool[kind].append(buffer.getvalue())
    return pool


def _pool_bytes(pool: dict[str, list[bytes]], extension: str, key: int) -> bytes:
    choices = pool["png"] if extension == ".png" else pool["jpeg"]
    return choices[key % len(choices)]


# ---------------------------------------------------------------- instances


def _popularity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw weights of n entities: a few are candidates of many instances, most of one or two."""
    weights = 1.0 / (np.arange(n) + 8.0) ** 1.05
    rng.shuffle(weights)
    return weights / weights.sum()


def _topic_instances(topic: str, count: int, first_number: int,
                     rng: np.random.Generator) -> tuple[list[SynthEntity], list[tuple[int, list[int]]]]:
    """One topic's entities and its instances as (gold, candidate list) index pairs."""
    golds = max(1, round(count * GOLDS_PER_INSTANCE))
    universe = max(golds + 2 * CANDIDATES, round(count * CANDIDATES * ENTITIES_PER_SLOT))
    codes = rng.choice(len(EXTENSIONS), size=universe, p=[share for _, share in EXTENSIONS])
    pictured = rng.random(universe) < GOLD_PICTURE_SHARE
    pictured[:2 * CANDIDATES] = [True, False] * CANDIDATES  # both pools are never empty
    entities = [SynthEntity(first_number + i, topic, bool(pictured[i]), EXTENSIONS[c][0])
                for i, c in enumerate(codes.tolist())]
    gold_of = np.concatenate([rng.permutation(golds), rng.integers(0, golds, count - golds)])
    rng.shuffle(gold_of)
    # Negatives come from the pictured or the unpictured entities, by popularity, so pictures
    # cluster on instances as in M³EL-mini (see the constants).
    width = 3 * CANDIDATES
    pools = [np.flatnonzero(~pictured), np.flatnonzero(pictured)]
    draws = [pool[rng.choice(len(pool), size=(count, width), p=_popularity(rng, len(pool)))] for pool in pools]
    all_pictured = rng.random(count) < ALL_PICTURED_WITH_PICTURED_GOLD
    from_pictured = rng.random((count, width)) < PICTURED_NEGATIVE_SHARE_OTHERWISE
    instances = []
    for i, gold in enumerate(gold_of.tolist()):
        use_pictured = np.ones(width, dtype=bool) if pictured[gold] and all_pictured[i] else from_pictured[i]
        row = np.where(use_pictured, draws[1][i], draws[0][i]).tolist()
        chosen = [gold]
        for candidate in row:
            if candidate not in chosen:
                chosen.append(candidate)
                if len(chosen) == CANDIDATES:
                    break
        while len(chosen) < CANDIDATES:  # rare: the draws repeated themselves
            candidate = int(rng.integers(0, universe))
            if candidate not in chosen:
                chosen.append(candidate)
        order = rng.permutation(CANDIDATES).tolist()
        instances.append((gold, [chosen[k] for k in order]))
    return entities, instances


def _mention_image(topic: str, number: int, extension: str) -> list[str]:
    file_name = f"{number}{extension}"
    return [f"mention_{file_name}", f"https://synthetic.invalid/m3el/mentions/{file_name}",
            f"/{ROOT}/{topic}_mention_images/{file_name}"]


def _record(topic: str, number: int, gold: SynthEntity, candidates: list[SynthEntity], mention_pictured: bool) -> dict[str, Any]:
    record = gold.record()
    mention_image = _mention_image(topic, number, gold.extension) if gold.has_picture and mention_pictured else None
    return {
        "Qid": record["Qid"], "name": record["name"], "description": record["description"],
        "sentence": f"Synthetic sentence {number} is about {gold.name} in the {topic} topic.",
        "image": mention_image,
        "candidates": [c.record() for c in candidates],
        "kb": KB,
    }


# ---------------------------------------------------------------- writing


def instance_count(scale: float) -> int:
    if not 0 < scale <= 10:
        raise ValueError(f"scale must be in (0, 10], got {scale}")
    return max(len(TOPICS), round(RELEASE_INSTANCES * scale))


def synth_records(scale: float = 1.0, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Records per topic (release format), deterministic in (scale, seed)."""
    total = instance_count(scale)
    rng = np.random.default_rng([seed, 1])
    by_topic: dict[str, list[dict[str, Any]]] = {}
    first_number, instance_number = 1, 1
    for position, topic in enumerate(TOPICS):
        count = total // len(TOPICS) + (position < total % len(TOPICS))
        entities, pairs = _topic_instances(topic, count, first_number, rng)
        first_number += len(entities)
        records = []
        shown = rng.random(len(pairs)) < MENTION_PICTURE_SHARE_WITH_PICTURED_GOLD
        for (gold, candidates), mention_pictured in zip(pairs, shown.tolist()):
            records.append(_record(topic, instance_number, entities[gold], [entities[c] for c in candidates], mention_pictured))
            instance_number += 1
        by_topic[topic] = records
    return by_topic


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.external_attr = 0o644 << 16
    return info


def write_synth_release(out_dir: Path | str, scale: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Write `out_dir/M3EL.zip` (and its provenance); return the counts (also in the provenance)."""
    from .provenance import write_provenance

    started = time.perf_counter()
    out_dir = Path(out_dir)
    by_topic = synth_records(scale, seed)
    pool = picture_pool(seed)
    counts = {"instances": 0, "picture_files": 0, "picture_bytes": 0, "candidate_slots": 0}

    def write(handle) -> None:
        written: set[str] = set()
        with zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
            for topic, records in by_topic.items():
                text = json.dumps(records, ensure_ascii=False, indent=1)
                archive.writestr(_member(f"{ROOT}/{topic}.json"), text, compress_type=zipfile.ZIP_DEFLATED)
                counts["instances"] += len(records)
                for record in records:
                    counts["candidate_slots"] += len(record["candidates"])
                    for ref in [record["image"]] + [c["image"] for c in record["candidates"]]:
                        if ref is None or ref[2] in written:
                            continue
                        written.add(ref[2])
                        data = _pool_bytes(pool, Path(ref[2]).suffix, len(written))
                        # JPEG and PNG do not deflate: stored, as archivers do with pictures
                        archive.writestr(_member(ref[2].lstrip("/")), data, compress_type=zipfile.ZIP_STORED)
                        counts["picture_files"] += 1
                        counts["picture_bytes"] += len(data)

    archive_path = atomic_write_with(out_dir / f"{ROOT}.zip", write)
    counts["archive_bytes"] = archive_path.stat().st_size
    counts["seconds"] = round(time.perf_counter() - started, 1)
    parameters = {"scale": scale, "seed": seed, "generator": "m3el_lib.data.synth_release", "kb": KB}
    write_provenance(archive_path, parameters={**parameters, "counts": counts})
    return {"path": str(archive_path), **counts}
