"""The instance gallery (m3el_lib.reports.gallery): one real instance per task, drawn as the task sees it.

Run on synthetic datasets written in the release format (pictures as real PNG files), including a
broken picture and an instance with more candidates than a figure shows.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from m3el_lib.book.figures import gallery_markdown
from m3el_lib.data.io import load_dataset
from m3el_lib.data.schema import TASKS, Modality, task_by_name
from m3el_lib.data.synthetic import write_synthetic_dataset
from m3el_lib.reports.gallery import MAX_CANDIDATES, alt_text, draw_example, pick_examples, shown_candidates, write_gallery


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # Every other instance has pictures: text-only instances qualify for T-T only.
    return load_dataset(write_synthetic_dataset(tmp_path_factory.mktemp("syn") / "data", n=24, image_every=2))


def test_one_qualifying_instance_per_task_different_ones_and_deterministic(dataset):
    examples = pick_examples(dataset)
    assert [e.task for e in examples] == list(TASKS)
    for example in examples:
        assert example.task in example.instance.tasks()
        assert example.instance.gold in example.shown
    assert len({e.instance.instance_id for e in examples}) == len(TASKS)
    assert [e.instance.instance_id for e in pick_examples(dataset)] == [e.instance.instance_id for e in examples]
    assert [e.instance.instance_id for e in pick_examples(dataset, seed=1)] != [e.instance.instance_id for e in examples]


def test_an_instance_whose_picture_does_not_open_is_not_drawn(tmp_path):
    folder = write_synthetic_dataset(tmp_path / "data", n=4, image_every=1)
    data = load_dataset(folder)
    i_i = task_by_name("I-I")
    first = pick_examples(data, tasks=[i_i])[0].instance
    (folder / first.image.local_path).write_bytes(b"not a png")
    again = pick_examples(load_dataset(folder), tasks=[i_i])[0].instance
    assert again.instance_id != first.instance_id
    # T-T needs no picture: the same instance may still be shown for it.
    assert pick_examples(load_dataset(folder), tasks=[task_by_name("T-T")])


def test_a_task_nobody_qualifies_for_is_left_out_and_the_page_says_so(tmp_path):
    text_only = load_dataset(write_synthetic_dataset(tmp_path / "data", n=5, image_every=1000))
    text_only.instances = [inst for inst in text_only.instances if not inst.has_mention_image]
    assert len(text_only.instances) == 4  # instance 0 (the one with pictures) is gone
    examples = pick_examples(text_only)
    assert [e.task.name for e in examples] == ["T-T"]
    page = gallery_markdown([(examples[0], tmp_path / "T-T.png")], "syn", "ab" * 32)
    assert "## T-T" in page and "## I-I" not in page
    assert "T-I, T-TI, I-T, I-I, I-TI, TI-T, TI-I, TI-TI" in page


def test_many_candidates_show_the_gold_and_count_the_rest(tmp_path):
    data = load_dataset(write_synthetic_dataset(tmp_path / "data", n=3, candidates=9))
    for inst in data.instances:
        shown = shown_candidates(inst)
        assert len(shown) == MAX_CANDIDATES and inst.gold in shown
        assert [inst.candidates.index(c) for c in shown] == sorted(inst.candidates.index(c) for c in shown)
    example = pick_examples(data, tasks=[task_by_name("T-I")])[0]
    assert example.hidden == 9 - MAX_CANDIDATES
    assert f"and {9 - MAX_CANDIDATES} more not shown" in alt_text(example)


def test_alt_text_says_what_the_task_gives_and_names_the_gold(dataset):
    by_task = {e.task.name: e for e in pick_examples(dataset)}
    t_i, i_t = by_task["T-I"], by_task["I-T"]
    assert "sentence" in alt_text(t_i) and "picture only" in alt_text(t_i)
    assert f"{t_i.instance.gold.name} (the gold)" in alt_text(t_i)
    assert "given by a picture" in alt_text(i_t) and "sentence" not in alt_text(i_t)


def test_figures_are_written_deterministically_and_the_page_shows_each_with_alt_text(dataset, tmp_path):
    written = write_gallery(dataset, tmp_path / "a")
    assert [path.name for _, path in written] == [f"{task.name}.png" for task in TASKS]
    again = write_gallery(dataset, tmp_path / "b")
    for (_, first), (_, second) in zip(written, again):
        assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and first.read_bytes() == second.read_bytes()
    page = gallery_markdown(written, "syn", "cd" * 32)
    assert page.count("```{figure} figures/instances/") == 9
    assert page.count(":alt: Task ") == 9
    assert "`cdcdcdcdcdcdcdcd`" in page


def test_a_picture_task_figure_holds_pictures_and_a_text_task_figure_none(dataset):
    by_task = {e.task.name: e for e in pick_examples(dataset)}
    i_i = draw_example(dataset, by_task["I-I"])
    t_t = draw_example(dataset, by_task["T-T"])
    pictures = lambda fig: sum(len(inset.images) for ax in fig.axes for inset in ax.child_axes)  # noqa: E731
    assert pictures(i_i) == 1 + len(by_task["I-I"].shown)
    assert pictures(t_t) == 0
    texts = " ".join(t.get_text() for ax in t_t.axes for t in ax.texts)
    assert by_task["T-T"].instance.gold.name in texts and "✓ gold" in texts
    assert by_task["I-I"].task.entity == Modality.I
