"""Tests of the construction stages and the end-to-end build on a tiny hand-made knowledge source."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from m3el_lib.construction import build as build_module
from m3el_lib.construction import stages
from m3el_lib.construction.build import build_dataset
from m3el_lib.construction.snapshot import normalise, tokens
from m3el_lib.construction.source import KnowledgeSource, SourceEntity, SourceImage
from m3el_lib.data.io import load_dataset
from m3el_lib.data.schema import SPLITS


def _png(colour: tuple[int, int, int], stripe: bool = False) -> bytes:
    image = Image.new("RGB", (24, 24), colour)
    if stripe:  # a different picture of the same thing
        for x in range(24):
            image.putpixel((x, 12), (0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class TinySource:
    """A KnowledgeSource over a dozen entities: same-name pairs, pictures (some two), one without text."""

    name = "tiny"
    kb = "m3el-snapshot"

    def __init__(self) -> None:
        rows = [
            ("X1", "Mercury", "First planet from the Sun", "planets", 2),
            ("X2", "Mercury", "Chemical element", "planets", 1),
            ("X3", "Venus", "Second planet from the Sun", "planets", 2),
            ("X4", "Mars", "Fourth planet from the Sun", "planets", 1),
            ("X5", "Jupiter", "Fifth planet from the Sun", "planets", 0),
            ("X6", "Crane", "Family of large birds", "birds", 2),
            ("X7", "Crane", "Machine for lifting", "birds", 0),
            ("X8", "Crane fly", "Family of insects", "birds", 1),
            ("X9", "Heron", "Family of wading birds", "birds", 1),
            ("X10", "Owl", "Order of birds of prey", "birds", 0),
            ("X11", "Stork", "Family of large wading birds", "birds", 1),
            ("X12", "Nameless", "An entity without a lead paragraph", "birds", 1),
        ]
        self.entities: dict[str, SourceEntity] = {}
        self.pictures: dict[str, bytes] = {}
        for number, (qid, name, description, topic, pictures) in enumerate(rows, start=1):
            images = []
            for k in range(pictures):
                file_name = f"{qid}-{k}.png"
                self.pictures[file_name] = _png((number * 20 % 256, 100, 200), stripe=k > 0)
                images.append(SourceImage(file_name, "", "test", "CC0", f"picture {k} of {name}"))
            extract = "" if qid == "X12" else f"{name} is a thing. It is described as {description.lower()}. It has a name."
            self.entities[qid] = SourceEntity(qid, name, description, extract, topic, name, tuple(images))
        self.topic_calls: list[str] = []

    def versions(self) -> dict[str, str]:
        return {"tiny": "1"}

    def topics(self) -> list[str]:
        return ["planets", "birds"]

    def topic_entities(self, topic: str, limit: int | None = None) -> list[SourceEntity]:
        self.topic_calls.append(topic)
        chosen = [e for e in self.entities.values() if e.topic == topic]
        return chosen if limit is None else chosen[:limit]

    def search_name(self, name: str, limit: int) -> list[SourceEntity]:
        exact = [e for e in self.entities.values() if normalise(e.name) == normalise(name)]
        shared = [e for e in self.entities.values() if e not in exact and set(tokens(e.name)) & set(tokens(name))]
        return (exact + shared)[:limit]

    def image_bytes(self, image: SourceImage) -> bytes:
        return self.pictures[image.file_name]


def test_tiny_source_is_a_knowledge_source():
    assert isinstance(TinySource(), KnowledgeSource)


def test_select_entities_keeps_order_and_limit():
    source = TinySource()
    chosen = stages.select_entities(source, ["planets", "birds"], 3)
    assert [e.qid for e in chosen["planets"]] == ["X1", "X2", "X3"]
    assert [e.qid for e in chosen["birds"]] == ["X6", "X7", "X8"]


def test_mention_texts_split_the_lead_paragraph_or_repeat_it():
    entity = TinySource().entities["X1"]
    assert stages.mention_texts(entity, 1) == [(entity.extract, "whole")]
    parts = stages.mention_texts(entity, 2)
    assert [label for _, label in parts] == ["sentences 1/2", "sentences 2/2"]
    assert " ".join(text for text, _ in parts) == entity.extract
    assert [label for _, label in stages.mention_texts(entity, 5)] == ["whole"] * 5


def _indexes(source: TinySource):
    universe = list(source.entities.values())
    return stages.SimilarityIndex(universe), stages.SimilarityIndex(e for e in universe if e.images)


def test_candidates_hardest_first_and_recall_recorded():
    source = TinySource()
    similar, with_images = _indexes(source)
    crane_bird = source.entities["X6"]
    chosen = stages.choose_candidates(source, crane_bird, 3, similar, with_images, seed=0, prefer_images=False)
    assert chosen.name_search_recall
    assert chosen.negatives[0].qid == "X7" and chosen.tiers["X7"] == "same_name"
    assert chosen.tiers["X8"] == "shared_token"
    assert len(chosen.negatives) == 3 and crane_bird not in chosen.negatives


def test_pictured_gold_gets_pictured_negatives_after_same_name_ones():
    source = TinySource()
    similar, with_images = _indexes(source)
    heron = stages.choose_candidates(source, source.entities["X9"], 3, similar, with_images, seed=0)
    assert all(e.images for e in heron.negatives) and len(heron.negatives) == 3
    crane = stages.choose_candidates(source, source.entities["X6"], 3, similar, with_images, seed=0)
    assert crane.negatives[0].qid == "X7"  # the same-name crane machine stays, though it has no picture
    assert all(e.images for e in crane.negatives[1:])


def test_shuffle_is_seeded_and_moves_the_gold():
    entities = list(TinySource().entities.values())[:4]
    positions = {stages.shuffle_candidates(entities, 0, f"i{n}").index(entities[0]) for n in range(20)}
    assert len(positions) > 1
    assert stages.shuffle_candidates(entities, 0, "i1") == stages.shuffle_candidates(entities, 0, "i1")


def test_mention_images_prefer_a_different_picture():
    source = TinySource()
    assert [m.kind for m in stages.mention_images(source.entities["X1"], 3)] == ["distinct"]
    assert stages.mention_images(source.entities["X1"], 3)[0].image == source.entities["X1"].images[1]
    assert [m.kind for m in stages.mention_images(source.entities["X2"], 3)] == ["augmented"]
    assert [m.kind for m in stages.mention_images(source.entities["X5"], 3)] == ["none"]


def test_single_picture_entities_get_an_augmented_view_only_for_the_chosen_share():
    source = TinySource()
    assert [m.kind for m in stages.mention_images(source.entities["X2"], 3, augment=False)] == ["none"]
    ids = [f"X{n}" for n in range(1000)]
    assert all(stages.augments(q, 0, 1.0) for q in ids) and not any(stages.augments(q, 0, 0.0) for q in ids)
    chosen = {q for q in ids if stages.augments(q, 0, 0.3)}
    assert 240 <= len(chosen) <= 360  # about the share asked for
    assert chosen != {q for q in ids if stages.augments(q, 1, 0.3)}  # another seed, other entities


def test_select_entities_can_keep_only_pictured_or_same_name_entities():
    source = TinySource()
    chosen = stages.select_entities(source, ["planets", "birds"], None, homonyms_only_for_text=True)
    # Jupiter (X5) and Owl (X10) have neither a picture nor a namesake; Crane the machine (X7) has a namesake.
    assert [e.qid for e in chosen["planets"]] == ["X1", "X2", "X3", "X4"]
    assert [e.qid for e in chosen["birds"]] == ["X6", "X7", "X8", "X9", "X11", "X12"]
    assert [e.qid for e in stages.select_entities(source, ["birds"], 2, homonyms_only_for_text=True)["birds"]] == ["X6", "X7"]


def test_augmented_view_is_deterministic_and_different():
    data = _png((10, 200, 30), stripe=True)
    first, params = stages.augmented_view(data, "s")
    again, _ = stages.augmented_view(data, "s")
    assert first == again and first != data
    assert set(params) >= {"crop", "flip", "brightness", "contrast", "saturation"}


def test_splits_by_entity_are_seeded_and_stratified():
    ids = [f"X{n}" for n in range(1, 101)]
    strata = {q: ("picture" if int(q[1:]) % 4 == 0 else "text") for q in ids}
    splits = stages.assign_splits(ids, 0, strata=strata)
    assert splits == stages.assign_splits(ids, 0, strata=strata)
    assert splits != stages.assign_splits(ids, 1, strata=strata)
    pictured_test = sum(splits[q] == "test" for q in ids if strata[q] == "picture")
    assert pictured_test == 5  # 20% of the 25 pictured entities


@pytest.fixture
def built(tmp_path: Path):
    out = tmp_path / "tiny"
    manifest = build_dataset(TinySource(), out, progress=False, split_ratios={"train": 0.5, "val": 0.25, "test": 0.25})
    return out, manifest


def test_build_writes_a_valid_dataset_with_manifest(built):
    out, manifest = built
    dataset = load_dataset(out)
    assert len(dataset) == manifest["counts"]["instances"] > 0
    assert json.loads((out / "manifest.json").read_text())["checksum"] == manifest["checksum"]
    assert manifest["entities"]["skipped"]["birds"]["missing_text"] == 1
    assert manifest["entities"]["skipped_ids"]["birds"]["missing_text"] == ["X12"]
    assert sum(manifest["counts"]["by_split"].values()) == len(dataset)
    assert manifest["counts"]["by_task"]["T-T"] == len(dataset)
    for task, per_split in manifest["counts"]["by_task_and_split"].items():
        assert sum(per_split.values()) == sum(task in [t.name for t in i.tasks()] for i in dataset.instances)
    assert manifest["candidate_recall"]["overall"] == 1.0
    assert not (out.parent / ".tiny.work").exists()


def test_build_never_reuses_the_gold_picture_file_and_splits_by_entity(built):
    out, _ = built
    dataset = load_dataset(out)
    split_of: dict[str, str] = {}
    for inst in dataset.instances:
        assert split_of.setdefault(inst.qid, inst.split) == inst.split
        assert inst.split in SPLITS
        gold = inst.gold
        if inst.image is not None:
            assert inst.mention_image_kind in {"distinct", "augmented"}
            mention_file, gold_file = dataset.image_path(inst.image), dataset.image_path(gold.image)
            assert mention_file != gold_file
            assert mention_file.read_bytes() != gold_file.read_bytes()
        else:
            assert inst.mention_image_kind == "none"
    kinds = {i.mention_image_kind for i in dataset.instances}
    assert kinds == {"distinct", "augmented", "none"}


def test_build_is_deterministic(tmp_path: Path):
    first = build_dataset(TinySource(), tmp_path / "a", progress=False)
    second = build_dataset(TinySource(), tmp_path / "b", progress=False)
    assert first["checksum"] == second["checksum"]
    assert build_dataset(TinySource(), tmp_path / "c", seed=1, progress=False)["checksum"] != first["checksum"]


def test_build_resumes_after_an_interruption(tmp_path: Path, monkeypatch):
    out = tmp_path / "tiny"
    real = build_module._topic_instances
    calls: list[str] = []

    def fail_on_second_topic(source, topic, *args, **kwargs):
        calls.append(topic)
        if topic == "birds":
            raise KeyboardInterrupt("simulated interruption")
        return real(source, topic, *args, **kwargs)

    monkeypatch.setattr(build_module, "_topic_instances", fail_on_second_topic)
    source = TinySource()
    with pytest.raises(KeyboardInterrupt):
        build_dataset(source, out, progress=False)
    assert not out.exists()  # nothing half-written in place
    assert (tmp_path / ".tiny.work" / "instances" / "planets.jsonl").exists()

    monkeypatch.setattr(build_module, "_topic_instances", lambda source, topic, *a, **k: (calls.append(topic), real(source, topic, *a, **k))[1])
    source.topic_calls.clear()
    resumed = build_dataset(source, out, progress=False)
    assert calls == ["planets", "birds", "birds"]  # planets was not rebuilt
    assert source.topic_calls == []  # stage 1 came from its checkpoints
    assert resumed["checksum"] == build_dataset(TinySource(), tmp_path / "fresh", progress=False)["checksum"]


def test_unknown_topic_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown topic"):
        build_dataset(TinySource(), tmp_path / "x", topics=["movies"], progress=False)
