"""The construction stages, each a function a test can call; they read only through a KnowledgeSource.

1. `select_entities`: entities per topic, in the source's stable order;
2. `mention_texts`: the mention text (the Wikipedia lead paragraph) of each mention of an entity;
3. `choose_candidates`: gold plus K negatives, hardest first, found through an inverted index;
4. `mention_images` / `augmented_view`: the mention picture: a different picture of the entity
   when there is one, else (for a seeded share of entities, `augments`) a recorded augmented
   view, never the entity's own file;
5. task membership follows from the modalities (`schema.Instance.tasks`);
6. `assign_splits`: train/val/test by gold entity, seeded;
7. writing is `build.py`'s job.

Our choices (not the paper's, which does not spell them out): negatives are ranked same name
first, then shared name tokens, then a cheap description/name similarity; same-name negatives are
always kept, and after them, for a gold entity with a picture, negatives with pictures are
preferred so that the instance counts for the entity-side image tasks (which need every
candidate to have a picture).
"""
from __future__ import annotations

import hashlib
import io
import math
import random
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .snapshot import normalise, tokens
from .source import KnowledgeSource, SourceEntity, SourceImage

SPLIT_RATIOS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


# ---------------------------------------------------------------- stage 1: entity selection


def select_entities(
    source: KnowledgeSource, topics: Sequence[str], per_topic: int | None, homonyms_only_for_text: bool = False
) -> dict[str, list[SourceEntity]]:
    """Up to `per_topic` entities of each topic, in the source's stable order; an entity is kept in its first topic only.

    With `homonyms_only_for_text`, an entity without a picture is kept only when another entity has
    exactly its name (as in M³EL, whose candidates share the mention's name); pictured ones always are.
    """
    seen: set[str] = set()
    chosen: dict[str, list[SourceEntity]] = {}
    for topic in topics:
        entities = []
        for entity in source.topic_entities(topic, None if homonyms_only_for_text else per_topic):
            if per_topic is not None and len(entities) >= per_topic:
                break
            if entity.qid in seen or (homonyms_only_for_text and not entity.images and not has_homonym(source, entity)):
                continue
            seen.add(entity.qid)
            entities.append(entity)
        chosen[topic] = entities
    return chosen


def has_homonym(source: KnowledgeSource, entity: SourceEntity) -> bool:
    """Does another entity of the source carry exactly this entity's name? (The source's own index when it has one.)"""
    quick = getattr(source, "has_homonym", None)
    if quick is not None:
        return bool(quick(entity))
    return any(o.qid != entity.qid and normalise(o.name) == normalise(entity.name) for o in source.search_name(entity.name, 5))


# ---------------------------------------------------------------- stage 2: mention text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")


def sentences(text: str) -> list[str]:
    """The sentences of a lead paragraph (a plain end-mark-then-capital rule)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def mention_texts(entity: SourceEntity, count: int) -> list[tuple[str, str]]:
    """`count` mention texts with a label saying which part of the lead paragraph each is.

    One mention gets the whole lead paragraph. Several mentions of the same entity get
    consecutive groups of its sentences when there are enough, else the whole paragraph each.
    """
    lead = " ".join(entity.extract.split())
    parts = sentences(lead)
    if count <= 1 or len(parts) < count:
        return [(lead, "whole")] * max(count, 1)
    size = math.ceil(len(parts) / count)
    groups = [parts[i * size:(i + 1) * size] for i in range(count)]
    groups = [g for g in groups if g]
    while len(groups) < count:  # ceil division can leave the last group empty: split the largest
        largest = max(range(len(groups)), key=lambda i: len(groups[i]))
        half = len(groups[largest]) // 2
        groups[largest:largest + 1] = [groups[largest][:half], groups[largest][half:]]
    return [(" ".join(g), f"sentences {k + 1}/{count}") for k, g in enumerate(groups)]


# ---------------------------------------------------------------- stage 3: candidates


class SimilarityIndex:
    """Token -> entities over names and descriptions, for the cheap text similarity of stage 3.

    A query follows only posting lists of at most `max_df` entities, so its cost does not grow
    with the number of entities indexed (a token in more names than that says little anyway).
    """

    def __init__(self, entities: Iterable[SourceEntity], max_df: int = 200):
        self.max_df = max_df
        self.entities: dict[str, SourceEntity] = {}
        self.postings: dict[str, list[str]] = {}
        for entity in entities:
            self.add(entity)

    def add(self, entity: SourceEntity) -> None:
        if entity.qid in self.entities:
            return
        self.entities[entity.qid] = entity
        for token in tokens(f"{entity.name} {entity.description}"):
            self.postings.setdefault(token, []).append(entity.qid)

    def similar(self, entity: SourceEntity, limit: int, exclude: set[str]) -> list[SourceEntity]:
        """Indexed entities sharing the most (rarest) name/description tokens with `entity`."""
        total = max(len(self.entities), 2)
        scores: dict[str, float] = {}
        for token in tokens(f"{entity.name} {entity.description}"):
            postings = self.postings.get(token, [])
            if not postings or len(postings) > self.max_df:
                continue
            weight = math.log(total / len(postings))
            for qid in postings:
                if qid not in exclude:
                    scores[qid] = scores.get(qid, 0.0) + weight
        ranked = sorted(scores, key=lambda q: (-scores[q], q))
        return [self.entities[q] for q in ranked[:limit]]


@dataclass
class CandidateSet:
    """The gold and its negatives, hardest first, with how each negative was found."""

    gold: SourceEntity
    negatives: list[SourceEntity]
    tiers: dict[str, str]  # negative id -> "same_name" | "shared_token" | "similar_text" | "random"
    name_search_recall: bool  # did the name search alone retrieve the gold?
    notes: list[str] = field(default_factory=list)


def candidate_tier(gold: SourceEntity, other: SourceEntity) -> str:
    if normalise(other.name) == normalise(gold.name):
        return "same_name"
    if set(tokens(other.name)) & set(tokens(gold.name)):
        return "shared_token"
    return "similar_text"


def choose_candidates(
    source: KnowledgeSource,
    gold: SourceEntity,
    k: int,
    similar: SimilarityIndex,
    similar_with_images: SimilarityIndex,
    seed: int,
    pool_size: int = 50,
    prefer_images: bool = True,
) -> CandidateSet:
    """Gold plus `k` negatives, hardest first (same name, shared tokens, similar text, then random).

    Same-name entities always come first. Then, with `prefer_images` and a gold that has a
    picture, negatives with pictures are preferred, so that every candidate can be ranked by
    picture; when too few exist, the hardest text-only ones fill the set. An instance with any
    candidate lacking a picture counts for the entity-side text tasks only.
    """
    pool = source.search_name(gold.name, pool_size)
    recall = any(e.qid == gold.qid for e in pool)
    ranked: list[SourceEntity] = []
    seen = {gold.qid}
    for entity in pool + similar.similar(gold, pool_size, seen):
        if entity.qid not in seen and (entity.extract or entity.description):
            seen.add(entity.qid)
            ranked.append(entity)
    # Same-name entities are the point of the task: they always come first, pictured or not.
    same_name = [e for e in ranked if candidate_tier(gold, e) == "same_name"][:k]
    taken = {gold.qid} | {e.qid for e in same_name}
    rest = [e for e in ranked if e.qid not in taken]
    want_images = prefer_images and bool(gold.images)
    if want_images:
        with_images = [e for e in rest if e.images]
        if len(same_name) + len(with_images) < k:
            with_images += similar_with_images.similar(gold, pool_size, taken | {e.qid for e in with_images})
        negatives = (same_name + with_images)[:k]
        ranked = same_name + with_images + [e for e in rest if not e.images]
    else:
        negatives = (same_name + rest)[:k]
    tiers = {e.qid: candidate_tier(gold, e) for e in negatives}
    notes: list[str] = []
    if len(negatives) < k:  # nothing similar enough: fill from the indexed entities at random (seeded)
        index = similar_with_images if want_images else similar
        rng = random.Random(f"{seed}:{gold.qid}:fill")
        remaining = sorted(q for q in index.entities if q not in seen and q not in tiers)
        for qid in rng.sample(remaining, min(k - len(negatives), len(remaining))):
            negatives.append(index.entities[qid])
            tiers[qid] = "random"
        notes.append("filled at random")
    for entity in ranked:  # too few pictured entities at all: the hardest text-only ones complete the set
        if len(negatives) >= k:
            break
        if entity.qid not in tiers:
            negatives.append(entity)
            tiers[entity.qid] = candidate_tier(gold, entity)
    return CandidateSet(gold=gold, negatives=negatives, tiers=tiers, name_search_recall=recall, notes=notes)


def shuffle_candidates(candidates: list[SourceEntity], seed: int, instance_id: str) -> list[SourceEntity]:
    """The candidates in a seeded random order, so the gold's position carries no signal."""
    shuffled = list(candidates)
    random.Random(f"{seed}:{instance_id}:order").shuffle(shuffled)
    return shuffled


# ---------------------------------------------------------------- stage 4: images


@dataclass(frozen=True)
class MentionImage:
    """The picture a mention shows, how it relates to the entity's picture, and how it was made."""

    kind: str  # "distinct" | "augmented" | "none"
    image: SourceImage | None
    augmentation: dict | None = None  # the recorded parameters of an augmented view


def entity_image(entity: SourceEntity) -> SourceImage | None:
    """The picture that stands for an entity as a candidate: its first one."""
    return entity.images[0] if entity.images else None


def mention_images(entity: SourceEntity, max_mentions: int, augment: bool = True) -> list[MentionImage]:
    """One mention per other picture of the entity (up to `max_mentions`); for an entity with a single
    picture one augmented view of it when `augment` (the flagged fallback), else a text-only mention."""
    if not entity.images:
        return [MentionImage("none", None)]
    others = list(entity.images[1:1 + max_mentions])
    if others:
        return [MentionImage("distinct", image) for image in others]
    return [MentionImage("augmented", entity.images[0])] if augment else [MentionImage("none", None)]


def augments(qid: str, seed: int, share: float) -> bool:
    """Whether a single-picture entity's mention gets an augmented view: a seeded `share` of such entities.

    Augmented views of the gold's own picture make image linking a near-duplicate search, so a
    dataset can keep them to a small, flagged minority (the rest of those mentions are text only).
    """
    if share >= 1.0:
        return True
    return int(hashlib.sha256(f"{seed}:{qid}:augment-fallback".encode()).hexdigest()[:8], 16) < share * 16**8


def augmented_view(data: bytes, seed: str) -> tuple[bytes, dict]:
    """A deterministic crop, flip and colour jitter of a picture, as JPEG bytes, with its parameters."""
    from PIL import Image, ImageEnhance, ImageOps

    from ..data.images import decode_picture

    rng = random.Random(seed)
    image, why = decode_picture(data)
    if image is None:
        raise ValueError(f"picture for {seed}: {why}")
    width, height = image.size
    scale = rng.uniform(0.75, 0.92)
    crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    flip = rng.random() < 0.5
    brightness, contrast, saturation = (round(rng.uniform(0.8, 1.2), 3) for _ in range(3))
    image = image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.Resampling.BICUBIC)
    if flip:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(brightness)
    image = ImageEnhance.Contrast(image).enhance(contrast)
    image = ImageEnhance.Color(image).enhance(saturation)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    params = {"seed": seed, "crop": [left, top, left + crop_w, top + crop_h], "flip": flip,
              "brightness": brightness, "contrast": contrast, "saturation": saturation}
    return out.getvalue(), params


# ---------------------------------------------------------------- stage 6: splits


def assign_splits(
    gold_ids: Iterable[str],
    seed: int,
    ratios: dict[str, float] | None = None,
    strata: dict[str, str] | None = None,
) -> dict[str, str]:
    """Entity id -> split, by a seeded hash order within each stratum (e.g. with/without pictures).

    Every mention of an entity lands in the entity's split, so no entity is in two splits.
    """
    ratios = ratios or SPLIT_RATIOS
    strata = strata or {}
    groups: dict[str, list[str]] = {}
    for qid in sorted(set(gold_ids)):
        groups.setdefault(strata.get(qid, ""), []).append(qid)
    assignment: dict[str, str] = {}
    for members in groups.values():
        members.sort(key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
        bounds, start = [], 0.0
        for name, share in ratios.items():
            start += share
            bounds.append((name, round(start * len(members))))
        position = 0
        for name, end in bounds:
            for qid in members[position:end]:
                assignment[qid] = name
            position = max(position, end)
        for qid in members[position:]:  # rounding leftovers go to the last split
            assignment[qid] = bounds[-1][0]
    return assignment
