"""What an instance looks like: one real instance per task, drawn as that task sees it.

For each of the 9 tasks an instance that qualifies for it (`Instance.tasks()`) and whose pictures
all open is picked deterministically; the figure shows the mention as the task gives it (its
sentence, its picture, or both) and the candidates as the task gives them (name and description,
picture, or both), with the gold marked by a thick border, a "gold" label and a tick (so the
mark survives grey-scale printing). Every figure comes with an alt text that says the same in words.
"""
from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure

from ..data.schema import TASKS, Entity, Instance, Modality, Task
from .style import GOLD_COLOUR, NEUTRAL_COLOUR, new_figure, save_figure, style

MAX_CANDIDATES = 5  # shown per instance: the gold and up to four others (the rest are counted)
SENTENCE_CHARS = 300  # a mention sentence longer than this is shortened in the figure
FIGURE_WIDTH = 6.8  # inches: about the book's column, so 8 pt text stays 8 pt on the page
DESCRIPTION_CHARS = 90
MODALITY_WORDS = {Modality.T: "text", Modality.I: "picture", Modality.TI: "text and picture"}


@dataclass(frozen=True)
class GalleryExample:
    """One task's instance, and the candidates the figure shows (the gold always among them)."""

    task: Task
    instance: Instance
    shown: tuple[Entity, ...]

    @property
    def hidden(self) -> int:
        return len(self.instance.candidates) - len(self.shown)


def _uses_text(modality: Modality) -> bool:
    return modality in (Modality.T, Modality.TI)


def _uses_picture(modality: Modality) -> bool:
    return modality in (Modality.I, Modality.TI)


def open_picture(dataset: Any, ref: Any):
    """The record's picture as an RGB PIL image, or None (the evaluation's own safe reader)."""
    from ..models.encoders import load_image, picture_path

    return load_image(picture_path(dataset, ref)) if ref is not None else None


def shown_candidates(instance: Instance, limit: int = MAX_CANDIDATES) -> tuple[Entity, ...]:
    """The gold and the first `limit - 1` other candidates, in the record's order."""
    gold = instance.gold_index
    keep = [i for i in range(len(instance.candidates)) if i != gold][: max(limit - 1, 0)] + [gold]
    return tuple(instance.candidates[i] for i in sorted(keep))


def _pictures_open(dataset: Any, instance: Instance, task: Task, shown: Sequence[Entity]) -> bool:
    refs = ([instance.image] if _uses_picture(task.mention) else []) + (
        [c.image for c in shown] if _uses_picture(task.entity) else [])
    return all(open_picture(dataset, ref) is not None for ref in refs)


def pick_examples(dataset: Any, tasks: Sequence[Task] = TASKS, seed: int = 0) -> list[GalleryExample]:
    """One instance per task (a different one for each task while they last), chosen by a seeded
    shuffle among the instances that qualify for the task and whose shown pictures all open.
    A task no instance qualifies for is left out (the page says which)."""
    by_id = sorted(dataset.instances, key=lambda inst: (inst.instance_id, inst.qid))
    used: set[str] = set()
    examples = []
    for task in tasks:
        order = [inst for inst in by_id if task in inst.tasks()]
        random.Random(f"m3el-gallery:{seed}:{task.name}").shuffle(order)
        # Prefer an instance not yet shown for another task; fall back to a shown one.
        for inst in sorted(order, key=lambda inst: inst.instance_id in used):
            shown = shown_candidates(inst)
            if _pictures_open(dataset, inst, task, shown):
                used.add(inst.instance_id)
                examples.append(GalleryExample(task, inst, shown))
                break
    return examples


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def _draw_picture(ax, picture, box: tuple[float, float, float, float]) -> None:
    """The picture inside `box` (axes fraction: x, y, width, height), aspect ratio kept."""
    inset = ax.inset_axes(box)
    inset.imshow(picture, interpolation="antialiased")
    inset.set_aspect("equal")
    inset.axis("off")


def _panel(ax, title: str, edge: str, width: float, height: float) -> None:
    """A framed panel with a bold title; `height` in inches keeps the title's place fixed."""
    from matplotlib.patches import FancyBboxPatch

    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0.02, 0.02), 0.96, 0.96, boxstyle="round,pad=0,rounding_size=0.03",
                                transform=ax.transAxes, fill=False, ec=edge, lw=width, clip_on=False))
    ax.text(0.5, 1 - 0.08 / height, title, ha="center", va="top", fontsize=9, weight="bold", transform=ax.transAxes)


def draw_example(dataset: Any, example: GalleryExample, width: float = FIGURE_WIDTH) -> Figure:
    """The figure of one task's instance: the mention across the top, the shown candidates below."""
    task, inst = example.task, example.instance
    text_mention, picture_mention = _uses_text(task.mention), _uses_picture(task.mention)
    text_entities, picture_entities = _uses_text(task.entity), _uses_picture(task.entity)
    mention_height = 1.45 if picture_mention else 1.05  # inches
    entity_height = 2.35 if text_entities and picture_entities else 1.75 if picture_entities else 1.35
    with style():
        fig = new_figure(width, mention_height + entity_height)
        grid = fig.add_gridspec(2, len(example.shown), height_ratios=[mention_height, entity_height])
        mention = fig.add_subplot(grid[0, :])
        _panel(mention, f"mention ({MODALITY_WORDS[task.mention]})", NEUTRAL_COLOUR, 1.0, mention_height)
        left = 0.03
        if picture_mention:
            box = (0.02, 0.06, 0.2, 0.9 - 0.3 / mention_height)
            _draw_picture(mention, open_picture(dataset, inst.image), box)
            left = 0.25
        if text_mention:
            wrap = 68 if picture_mention else 92
            lines = textwrap.wrap(_shorten(inst.sentence, SENTENCE_CHARS), wrap)
            mention.text(left, 1 - 0.34 / mention_height, "\n".join(lines), ha="left", va="top", fontsize=8,
                         transform=mention.transAxes, linespacing=1.3)
        for column, entity in enumerate(example.shown):
            ax = fig.add_subplot(grid[1, column])
            gold = entity.qid == inst.qid
            _panel(ax, "✓ gold" if gold else "candidate", GOLD_COLOUR if gold else NEUTRAL_COLOUR,
                   3.2 if gold else 1.0, entity_height)
            top = 1 - 0.32 / entity_height
            if picture_entities:
                box_height = 0.95 / entity_height
                _draw_picture(ax, open_picture(dataset, entity.image), (0.08, top - box_height, 0.84, box_height))
                top -= box_height + 0.06 / entity_height
                if not text_entities:  # for the reader only: the task itself sees the picture alone
                    ax.text(0.5, top, "\n".join(textwrap.wrap(entity.name, 18)[:2]), ha="center", va="top",
                            fontsize=7.5, style="italic", color="0.35", transform=ax.transAxes)
            if text_entities:
                name = "\n".join(textwrap.wrap(entity.name, 16)[:2])
                ax.text(0.5, top, name, ha="center", va="top", fontsize=8.5, weight="bold", transform=ax.transAxes)
                below = top - (0.17 * (name.count("\n") + 1) + 0.04) / entity_height
                description = textwrap.wrap(_shorten(entity.description, DESCRIPTION_CHARS), 19)
                ax.text(0.5, below, "\n".join(description[:3 if picture_entities else 4]), ha="center", va="top",
                        fontsize=7.5, transform=ax.transAxes, linespacing=1.2)
    return fig


def alt_text(example: GalleryExample) -> str:
    """The figure in words, for readers who do not see it."""
    task, inst = example.task, example.instance
    parts = []
    if _uses_text(task.mention):
        parts.append(f"the sentence \"{_shorten(inst.sentence, 160)}\"")
    if _uses_picture(task.mention):
        parts.append("a picture")
    names = ", ".join(f"{c.name}{' (the gold)' if c.qid == inst.qid else ''}" for c in example.shown)
    entity_form = {Modality.T: "by name and description", Modality.I: "by picture only (names hidden from the task)",
                   Modality.TI: "by name, description and picture"}[task.entity]
    more = f", and {example.hidden} more not shown" if example.hidden else ""
    return (f"Task {task.name}. The mention is given by {' and '.join(parts)}. "
            f"{len(inst.candidates)} candidates, shown {entity_form}: {names}{more}.")


def write_gallery(dataset: Any, out_dir: Path | str, seed: int = 0) -> list[tuple[GalleryExample, Path]]:
    """Draw every task's example to `out_dir/<task>.png`; return each example with its file."""
    written = []
    for example in pick_examples(dataset, seed=seed):
        fig = draw_example(dataset, example)
        (path,) = save_figure(fig, out_dir, example.task.name, formats=("png",))
        written.append((example, path))
    return written
