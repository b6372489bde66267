"""The data model: the 9 tasks and which of them an instance qualifies for."""
from __future__ import annotations

import pytest

from m3el_lib.data.schema import TASK_NAMES, TASKS, Entity, ImageRef, Instance, Modality, task_by_name

IMG = ImageRef("a.jpg", "", "images/a.jpg")


def make(sentence="Mercury is a planet.", mention_image=IMG, candidate_images=(IMG, IMG)) -> Instance:
    candidates = tuple(Entity(f"Q{i + 1}", "Mercury", f"sense {i}", image) for i, image in enumerate(candidate_images))
    return Instance("Q1", "Mercury", "sense 0", sentence, mention_image, candidates)


def test_nine_tasks_in_canonical_order():
    assert TASK_NAMES == ("T-T", "T-I", "T-TI", "I-T", "I-I", "I-TI", "TI-T", "TI-I", "TI-TI")
    assert len(set(TASKS)) == 9
    assert task_by_name("TI-I").mention is Modality.TI
    with pytest.raises(ValueError, match="expected one of T-T"):
        task_by_name("T-X")


def test_full_instance_qualifies_for_all_nine():
    assert [t.name for t in make().tasks()] == list(TASK_NAMES)


def test_no_mention_image_means_no_I_or_TI_mention_tasks():
    assert [t.name for t in make(mention_image=None).tasks()] == ["T-T", "T-I", "T-TI"]


def test_one_candidate_without_picture_removes_entity_side_images():
    assert [t.name for t in make(candidate_images=(IMG, None)).tasks()] == ["T-T", "I-T", "TI-T"]


def test_image_only_mention():
    assert [t.name for t in make(sentence="  ").tasks()] == ["I-T", "I-I", "I-TI"]


def test_gold_must_be_a_candidate():
    inst = make()
    assert inst.gold.qid == "Q1" and inst.gold_index == 0
    broken = Instance("Q9", "x", "y", "s", None, inst.candidates)
    with pytest.raises(ValueError, match="gold Q9 not among candidates"):
        broken.gold_index
