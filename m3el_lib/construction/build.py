"""Run the construction stages end to end: `build_dataset(source, out_dir, ...)`.

The run is resumable and its output atomic. Everything is built in a work folder beside the
output (`.<name>.work/`): the selected entities and the finished instances of each topic are
checkpointed there as soon as the topic is done, pictures are copied into a staging folder once,
and only a complete dataset replaces `out_dir` (by renaming the staging folder). A rerun with the
same parameters after an interruption picks up the finished topics; other parameters start over.

Output: `out_dir/{train,val,test}.jsonl` in the release format with our extra fields,
`out_dir/images/`, and `out_dir/manifest.json` (counts per topic, task and split, candidate
recall, image coverage, mention-image kinds, skipped entities, source versions, parameters, and
`checksum`, the sha256 over every other output file, which is the same on every run).
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from .. import __version__
from ..fsutil import atomic_write_json, atomic_write_lines, exclusive_lock, sha256_bytes, sha256_tree, swap_folder_into_place
from ..data.io import instance_to_record, record_to_instance, write_dataset
from ..data.schema import SPLITS, TASK_NAMES, Entity, ImageRef, Instance
from . import stages
from .source import KnowledgeSource, SourceEntity, SourceImage
from ..timing import timed

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
# Written into every finished build: an --out folder holding it may be replaced by the next build.
BUILD_MARKER = ".m3el-build"
OUTPUT_NAMES = {"train.jsonl", "val.jsonl", "test.jsonl", "all.jsonl", "images", "manifest.json", BUILD_MARKER}


def default_work_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.work"


@timed('build')
def build_dataset(
    source: KnowledgeSource,
    out_dir: Path | str,
    topics: Sequence[str] | None = None,
    per_topic: int | None = None,
    candidates: int = 3,
    seed: int = 0,
    progress: bool = True,
    max_mentions: int = 3,
    split_ratios: dict[str, float] | None = None,
    work_dir: Path | str | None = None,
    augmented_share: float = 1.0,
    homonyms_only_for_text: bool = False,
) -> dict[str, Any]:
    """Build a dataset from `source` into `out_dir` and return its manifest.

    `out_dir` must be new, empty, or an earlier build of ours (it holds `BUILD_MARKER`): anything
    else is refused, never replaced. A lock beside it stops a second build to the same folder.
    `augmented_share`: the share of single-picture gold entities whose mention shows an augmented
    view of that picture (flagged `augmented`); the others' mentions are text only.
    `homonyms_only_for_text`: keep an entity without a picture only when another entity has its name.
    """
    out_dir = Path(out_dir).resolve()
    check_output_folder(out_dir)
    with exclusive_lock(out_dir.parent / f".{out_dir.name}.lock", f"a build into {out_dir}"):
        check_output_folder(out_dir)  # again, now that no other build can change it
        return _build_locked(source, out_dir, topics, per_topic, candidates, seed, progress, max_mentions,
                             split_ratios, work_dir, augmented_share, homonyms_only_for_text)


def check_output_folder(out_dir: Path) -> None:
    """Refuse an output folder that is a file, or holds anything but an earlier build of ours."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: a file, not a folder; choose a new or empty folder")
    if not out_dir.exists() or (out_dir / BUILD_MARKER).is_file():
        return
    entries = sorted(p.name for p in out_dir.iterdir())
    if entries and not _earlier_build_without_marker(out_dir, entries):
        shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise ValueError(f"--out {out_dir}: not empty ({shown}) and not an earlier m3el build (no {BUILD_MARKER}); "
                         "nothing was changed: choose a new or empty folder")


def _earlier_build_without_marker(out_dir: Path, entries: list[str]) -> bool:
    """A build from before the marker existed: only our file names, and our manifest."""
    if not set(entries) <= OUTPUT_NAMES or "manifest.json" not in entries:
        return False
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and {"checksum", "counts", "parameters"} <= set(manifest)


def _build_locked(source: KnowledgeSource, out_dir: Path, topics: Sequence[str] | None, per_topic: int | None,
                  candidates: int, seed: int, progress: bool, max_mentions: int,
                  split_ratios: dict[str, float] | None, work_dir: Path | str | None, augmented_share: float,
                  homonyms_only_for_text: bool) -> dict[str, Any]:
    work = Path(work_dir) if work_dir else default_work_dir(out_dir)
    chosen_topics = list(topics) if topics else source.topics()[:5]
    unknown = [t for t in chosen_topics if t not in source.topics()]
    if unknown:
        raise ValueError(f"unknown topic(s) {unknown} for source {source.name!r}; it has {source.topics()}")
    params = {
        "source": source.name, "kb": source.kb, "topics": chosen_topics, "per_topic": per_topic,
        "candidates": candidates, "seed": seed, "max_mentions": max_mentions,
        "split_ratios": split_ratios or stages.SPLIT_RATIOS, "prefer_image_negatives": True,
        "augmented_share": augmented_share, "homonyms_only_for_text": homonyms_only_for_text,
    }
    _prepare_work(work, params)
    staging = work / "staging"

    selected = _select(source, chosen_topics, per_topic, work, homonyms_only_for_text)
    universe = [e for topic in chosen_topics for e in selected[topic]]
    similar = stages.SimilarityIndex(universe)
    similar_with_images = stages.SimilarityIndex(e for e in universe if e.images)
    copier = _ImageCopier(source, staging / "images")

    instances: list[Instance] = []
    skipped: dict[str, dict[str, list[str]]] = {}
    recall: dict[str, list[bool]] = {}
    tiers: Counter[str] = Counter()
    for topic in chosen_topics:
        done = work / "instances" / f"{topic}.jsonl"
        if not done.exists():
            records, topic_skipped = _topic_instances(
                source, topic, selected[topic], similar, similar_with_images, copier, candidates, seed, max_mentions, progress,
                augmented_share,
            )
            atomic_write_lines(done, [json.dumps({"skipped": topic_skipped}, sort_keys=True)] + [json.dumps(r, ensure_ascii=False) for r in records])
        lines = done.read_text(encoding="utf-8").splitlines()
        skipped[topic] = json.loads(lines[0])["skipped"]
        topic_instances = [record_to_instance(json.loads(line)) for line in lines[1:]]
        for inst in topic_instances:
            if inst.instance_id.endswith("-0"):  # one recall/tier count per gold entity, not per mention
                recall.setdefault(topic, []).append(bool(inst.provenance["name_search_recall"]))
                tiers.update(inst.provenance["candidate_tiers"].values())
        instances += topic_instances

    strata = {inst.qid: ("picture" if inst.provenance.get("gold_has_picture") else "text") for inst in instances}
    splits = stages.assign_splits(strata, seed, params["split_ratios"], strata)
    instances = [replace(inst, split=splits[inst.qid]) for inst in instances]
    instances.sort(key=lambda i: (SPLITS.index(i.split), chosen_topics.index(i.topic), _id_key(i.instance_id)))

    for stale in [*staging.glob("*.jsonl"), staging / "manifest.json", staging / BUILD_MARKER]:
        stale.unlink(missing_ok=True)
    write_dataset(instances, staging)
    checksum = sha256_tree(staging)
    manifest = _manifest(source, params, instances, selected, skipped, recall, tiers, checksum)
    atomic_write_json(staging / "manifest.json", manifest)
    atomic_write_json(staging / BUILD_MARKER, {"built_by": f"m3el_lib {__version__} build-dataset", "checksum": checksum})
    swap_folder_into_place(staging, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return manifest


# ---------------------------------------------------------------- work folder and checkpoints


def _prepare_work(work: Path, params: dict[str, Any]) -> None:
    """Keep a work folder left by an interrupted run with the same parameters; otherwise start afresh."""
    stamp = work / "params.json"
    if work.exists() and (not stamp.exists() or json.loads(stamp.read_text(encoding="utf-8")) != params):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        atomic_write_json(stamp, params)


def _entity_json(entity: SourceEntity) -> str:
    return json.dumps(asdict(entity), ensure_ascii=False, sort_keys=True)


def _entity_from_json(line: str) -> SourceEntity:
    data = json.loads(line)
    data["images"] = tuple(SourceImage(**image) for image in data["images"])
    return SourceEntity(**data)


def _select(
    source: KnowledgeSource, topics: Sequence[str], per_topic: int | None, work: Path, homonyms_only_for_text: bool = False
) -> dict[str, list[SourceEntity]]:
    """Stage 1, checkpointed per topic; an entity belongs to the first topic that selects it."""
    seen: set[str] = set()
    selected: dict[str, list[SourceEntity]] = {}
    for topic in topics:
        checkpoint = work / "entities" / f"{topic}.jsonl"
        if checkpoint.exists():
            entities = [_entity_from_json(line) for line in checkpoint.read_text(encoding="utf-8").splitlines()]
        else:
            entities = stages.select_entities(source, [topic], per_topic, homonyms_only_for_text)[topic]
            atomic_write_lines(checkpoint, [_entity_json(e) for e in entities])
        selected[topic] = [e for e in entities if e.qid not in seen]
        seen.update(e.qid for e in entities)
    return selected


def _id_key(instance_id: str) -> tuple[int, int]:
    qid, _, mention = instance_id.rpartition("-")
    digits = "".join(ch for ch in qid if ch.isdigit())
    return (int(digits) if digits else 0, int(mention) if mention.isdigit() else 0)


# ---------------------------------------------------------------- stages 2-4 for one topic


class _ImageCopier:
    """Copies pictures into the dataset's images/ once each, named by entity and position."""

    def __init__(self, source: KnowledgeSource, folder: Path):
        self.source = source
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def local_name(entity: SourceEntity, position: int, suffix: str = "") -> str:
        ext = PurePosixPath(entity.images[position].file_name).suffix.lower()
        return f"{entity.qid}-{position}{suffix}{ext if ext in IMAGE_SUFFIXES else '.img'}"

    def copy(self, entity: SourceEntity, position: int) -> tuple[ImageRef, bytes]:
        image = entity.images[position]
        name = self.local_name(entity, position)
        target = self.folder / name
        data = target.read_bytes() if target.exists() else self.source.image_bytes(image)
        if not target.exists():
            _write_file(target, data)
        return ImageRef(image.file_name, image.url, f"images/{name}"), data

    def augmented(self, entity: SourceEntity, seed: int) -> tuple[ImageRef, dict, str]:
        _, data = self.copy(entity, 0)
        view, params = stages.augmented_view(data, f"{seed}:{entity.qid}:augment")
        name = f"{entity.qid}-0-aug{seed}.jpg"
        _write_file(self.folder / name, view)
        image = entity.images[0]
        return ImageRef(f"{PurePosixPath(image.file_name).stem}-augmented.jpg", "", f"images/{name}"), params, sha256_bytes(view)


def _write_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _candidate_entity(entity: SourceEntity, copier: _ImageCopier) -> Entity:
    image = copier.copy(entity, 0)[0] if entity.images else None
    return Entity(qid=entity.qid, name=entity.name, description=entity.description, image=image)


def _topic_instances(
    source: KnowledgeSource,
    topic: str,
    entities: list[SourceEntity],
    similar: stages.SimilarityIndex,
    similar_with_images: stages.SimilarityIndex,
    copier: _ImageCopier,
    k: int,
    seed: int,
    max_mentions: int,
    progress: bool,
    augmented_share: float = 1.0,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Instances (as release records) for one topic's entities, and the entities skipped, by reason."""
    from tqdm import tqdm

    records: list[dict[str, Any]] = []
    skipped: dict[str, list[str]] = {"missing_text": [], "missing_name": []}
    for gold in tqdm(entities, desc=f"{source.name}:{topic}", unit="entity", disable=not progress, leave=False):
        if not gold.name.strip():
            skipped["missing_name"].append(gold.qid)
            continue
        if not gold.extract.strip():
            skipped["missing_text"].append(gold.qid)
            continue
        chosen = stages.choose_candidates(source, gold, k, similar, similar_with_images, seed)
        candidates = [_candidate_entity(e, copier) for e in [gold] + chosen.negatives]
        gold_ref = candidates[0].image
        mentions = stages.mention_images(gold, max_mentions, stages.augments(gold.qid, seed, augmented_share))
        texts = stages.mention_texts(gold, len(mentions))
        for number, (mention, (sentence, part)) in enumerate(zip(mentions, texts)):
            instance_id = f"{gold.qid}-{number}"
            image, kind, extra = _mention_image(gold, mention, copier, seed, gold_ref)
            instance = Instance(
                qid=gold.qid, name=gold.name, description=gold.description, sentence=sentence, image=image,
                candidates=tuple(stages.shuffle_candidates(candidates, seed, instance_id)), topic=topic,
                instance_id=instance_id, mention_image_kind=kind, kb=source.kb,
                provenance={
                    "source": source.name, "title": gold.title, "sentence_part": part,
                    "name_search_recall": chosen.name_search_recall, "candidate_tiers": chosen.tiers,
                    "gold_has_picture": bool(gold.images), **extra,
                },
            )
            records.append(instance_to_record(instance))
    return records, skipped


def _mention_image(
    gold: SourceEntity, mention: stages.MentionImage, copier: _ImageCopier, seed: int, gold_ref: ImageRef | None
) -> tuple[ImageRef | None, str, dict[str, Any]]:
    """The mention's picture: another picture of the entity, else an augmented view; never the gold's file."""
    if mention.kind == "none":
        return None, "none", {}
    if mention.kind == "distinct":
        position = gold.images.index(mention.image)
        ref, data = copier.copy(gold, position)
        _, gold_data = copier.copy(gold, 0)
        if sha256_bytes(data) != sha256_bytes(gold_data):
            return ref, "distinct", {"mention_image_origin": mention.image.origin}
    ref, params, _ = copier.augmented(gold, seed)
    assert gold_ref is None or ref.local_path != gold_ref.local_path
    return ref, "augmented", {"mention_image_origin": gold.images[0].origin, "augmentation": params}


# ---------------------------------------------------------------- manifest


def _has_same_name_negative(inst: Instance) -> bool:
    """Does a candidate other than the gold carry exactly the gold's name?"""
    return any(c.qid != inst.qid and stages.normalise(c.name) == stages.normalise(inst.name) for c in inst.candidates)


def _manifest(
    source: KnowledgeSource,
    params: dict[str, Any],
    instances: list[Instance],
    selected: dict[str, list[SourceEntity]],
    skipped: dict[str, dict[str, list[str]]],
    recall: dict[str, list[bool]],
    tiers: Counter[str],
    checksum: str,
) -> dict[str, Any]:
    by_task_split: dict[str, Counter[str]] = {t: Counter() for t in TASK_NAMES}
    for inst in instances:
        for task in inst.tasks():
            by_task_split[task.name][inst.split] += 1
    all_recall = [r for values in recall.values() for r in values]
    with_mention_image = sum(inst.has_mention_image for inst in instances)
    all_candidate_images = sum(all(c.has_image for c in inst.candidates) for inst in instances)
    golds = {inst.qid for inst in instances}
    return {
        "format": "m3el-dataset/1",
        "checksum": checksum,
        "built_by": f"m3el_lib {__version__} construction.build_dataset",
        "source": {"name": source.name, "kb": source.kb, "versions": source.versions()},
        "parameters": params,
        "counts": {
            "instances": len(instances),
            "gold_entities": len(golds),
            "by_topic": dict(Counter(i.topic for i in instances)),
            "by_split": {s: sum(i.split == s for i in instances) for s in SPLITS},
            "by_task": {t: sum(c.values()) for t, c in by_task_split.items()},
            "by_task_and_split": {t: {s: c[s] for s in SPLITS} for t, c in by_task_split.items()},
            "gold_entities_by_split": {s: len({i.qid for i in instances if i.split == s}) for s in SPLITS},
            "mention_image_kinds": dict(Counter(i.mention_image_kind for i in instances)),
            "mention_image_kinds_by_split": {
                s: dict(sorted(Counter(i.mention_image_kind for i in instances if i.split == s).items())) for s in SPLITS
            },
            "with_same_name_negative_by_split": {
                s: sum(_has_same_name_negative(i) for i in instances if i.split == s) for s in SPLITS
            },
            "negatives_by_tier": dict(sorted(tiers.items())),
        },
        "entities": {
            "selected_by_topic": {t: len(v) for t, v in selected.items()},
            "with_pictures_by_topic": {t: sum(bool(e.images) for e in v) for t, v in selected.items()},
            "skipped": {t: {reason: len(ids) for reason, ids in v.items()} for t, v in skipped.items()},
            "skipped_ids": {t: {reason: ids[:20] for reason, ids in v.items() if ids} for t, v in skipped.items()},
        },
        "candidate_recall": {
            "definition": "share of gold entities that the source's name search alone retrieved (before the gold is added)",
            "overall": round(sum(all_recall) / len(all_recall), 4) if all_recall else None,
            "by_topic": {t: round(sum(v) / len(v), 4) for t, v in recall.items() if v},
        },
        "image_coverage": {
            "instances_with_mention_image": with_mention_image,
            "instances_with_all_candidate_images": all_candidate_images,
            "share_with_mention_image": round(with_mention_image / len(instances), 4) if instances else None,
            "share_with_all_candidate_images": round(all_candidate_images / len(instances), 4) if instances else None,
        },
    }
