"""Figures of the dataset statistics, in the project's one style (`reports.style`).

Every figure carries a footer naming the data it shows (label and checksum).
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from ..data.errors import DatasetError
from ..data.picture_paths import resolve_image_path
from ..data.schema import TASK_NAMES, Instance
from ..statistics.core import ALL, DatasetStats
from .style import PALETTE, new_figure, style
from ..timing import timed

SIDE_LABELS = {"mention": "mention", "gold_entity": "gold entity", "negatives": "negative candidates",
               "all_candidates": "instances with every candidate pictured"}
FIGURE_NAMES = ("topic_task_heatmap", "text_lengths", "candidates_ambiguity", "image_coverage", "example_gallery")


def footer(fig: Figure, stats: DatasetStats) -> None:
    """Name the data on the figure itself, so a copied picture still says where it came from."""
    data = f"data {stats.checksum[:12]}" if stats.checksum else "data: in-memory instances"
    text = " · ".join(part for part in (stats.label, data, f"{stats.overview['instances']:,} instances") if part)
    # supxlabel, not fig.text: constrained layout makes room for it, so it never covers an axis label.
    fig.supxlabel(text, x=0.995, ha="right", fontsize=7, color="0.4")


def topic_colours(topics: list[str]) -> dict[str, tuple[float, float, float]]:
    colours = sns.color_palette(PALETTE, max(len(topics), 1))
    return {topic: colours[i % len(colours)] for i, topic in enumerate(topics)}


# ---------------------------------------------------------------- the figures


def topic_task_heatmap(stats: DatasetStats) -> Figure:
    """Instances per topic and task; a zero cell is a topic with no instance for that task."""
    counts = stats.table("topic_task").drop(index=ALL, errors="ignore")[list(TASK_NAMES)]
    with style():
        fig = new_figure(8, 0.5 * max(len(counts), 1) + 1.8)
        ax = fig.subplots()
        if counts.empty:
            ax.text(0.5, 0.5, "no instances", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        else:
            sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", linewidths=0.5, linecolor="white",
                        cbar_kws={"label": "instances"}, ax=ax, vmin=0)
            ax.set_xlabel("task (mention modality - entity modality; our reading)")
            ax.set_ylabel("topic")
        ax.set_title("Instances per topic and task")
        footer(fig, stats)
    return fig


def text_length_figure(stats: DatasetStats) -> Figure:
    """Words per mention sentence and per gold description, by topic (box: quartiles, whiskers 1.5 IQR)."""
    table = stats.per_instance
    topics = sorted(table["topic"].unique().tolist())
    colours = topic_colours(topics)
    with style():
        fig = new_figure(9, 3.6)
        axes = fig.subplots(1, 2, sharey=False)
        for ax, (column, title) in zip(axes, (("sentence_words", "mention sentence"),
                                               ("gold_description_words", "gold entity description"))):
            if table.empty:
                ax.text(0.5, 0.5, "no instances", ha="center", va="center", transform=ax.transAxes)
            else:
                # matplotlib's own boxplot (seaborn 0.13 passes an argument matplotlib 3.11 deprecates).
                values = [table.loc[table["topic"] == topic, column].to_numpy() for topic in topics]
                boxes = ax.boxplot(values, tick_labels=topics, patch_artist=True, widths=0.6,
                                   flierprops={"markersize": 1.5, "alpha": 0.5},
                                   medianprops={"color": "0.15"})
                for patch, topic in zip(boxes["boxes"], topics):
                    patch.set_facecolor(colours[topic])
                    patch.set_linewidth(0.8)
            ax.set_title(f"Words per {title}")
            ax.set_xlabel("topic")
            ax.set_ylabel("words")
            ax.tick_params(axis="x", labelrotation=30)
        footer(fig, stats)
    return fig


def candidates_ambiguity_figure(stats: DatasetStats) -> Figure:
    """Histograms: candidates per instance, and candidates sharing the mention's exact name."""
    panels = (
        (stats.table("candidates_distribution"), "candidates", "Candidates per instance", "candidates"),
        (stats.table("ambiguity_distribution"), "same_name_candidates",
         "Candidates with the mention's exact name", "candidates sharing the name"),
    )
    colours = sns.color_palette(PALETTE, 2)
    with style():
        fig = new_figure(9, 3.4)
        for ax, (table, column, title, xlabel), colour in zip(fig.subplots(1, 2), panels, colours):
            bars = ax.bar(table[column], table["instances"], color=colour, width=0.8)
            if len(table) <= 25:
                # Counts on the bars: a bar of 12 next to one of 2,000 is otherwise invisible.
                ax.bar_label(bars, labels=[f"{v:,}" if v else "" for v in table["instances"]], fontsize=8, padding=2)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("instances")
            if len(table) <= 25:
                ax.set_xticks(table[column].tolist())
        footer(fig, stats)
    return fig


def image_coverage_figure(stats: DatasetStats) -> Figure:
    """Share with a listed picture, per topic, for the mention, the gold entity and the negatives."""
    table = stats.table("image_coverage")
    table = table[table["topic"] != ALL].assign(side=lambda t: t["side"].map(SIDE_LABELS))
    with style():
        fig = new_figure(9, 3.8)
        ax = fig.subplots()
        if table.empty:
            ax.text(0.5, 0.5, "no instances", ha="center", va="center", transform=ax.transAxes)
        else:
            sns.barplot(data=table, x="topic", y="share", hue="side", hue_order=list(SIDE_LABELS.values()),
                        palette=PALETTE, ax=ax)
            ax.legend(title="side", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the data, not on it
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.tick_params(axis="x", labelrotation=20)
        ax.set_title("Image coverage per topic and side")
        ax.set_ylabel("with a picture")
        ax.set_xlabel("topic")
        footer(fig, stats)
    return fig


def _thumbnail(root: Path | None, instance_image) -> tuple[np.ndarray | None, str]:
    """The picture as an array, or None and why not ("no picture", "file missing", "unreadable")."""
    if instance_image is None or not (instance_image.local_path or instance_image.url):
        return None, "no picture"
    if root is None or not instance_image.local_path:
        return None, "not stored locally"
    try:
        path = resolve_image_path(root, instance_image)
    except DatasetError:
        return None, "path outside the data"
    if path is None:
        return None, "file missing"
    from ..data.images import open_picture_with_reason

    image, why = open_picture_with_reason(path)
    if image is None:
        return None, why if why in ("file missing", "not a regular file") else "unreadable"
    image.thumbnail((160, 160))
    return np.asarray(image), ""


def _draw_cell(ax, picture: np.ndarray | None, why: str, title: str, gold: bool) -> None:
    if picture is not None:
        ax.imshow(picture)
        ax.set_adjustable("datalim")  # keep the cell's box (and the gold frame) whatever the picture's shape
    else:
        # An empty, labelled box: a missing picture stays visible as missing.
        ax.add_patch(Rectangle((0.03, 0.03), 0.94, 0.94, fill=False, linestyle="--", edgecolor="0.5",
                               transform=ax.transAxes))
        ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=8, color="0.35", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(gold)
        if gold:
            spine.set_edgecolor(sns.color_palette(PALETTE)[2])
            spine.set_linewidth(3)
    ax.set_title(title, fontsize=8)


def _label(text: str) -> str:
    """A cell title: at most two lines of about 24 characters."""
    return textwrap.fill(textwrap.shorten(text, 48, placeholder="…"), 24)


def _shown_candidates(inst: Instance, limit: int) -> list[int]:
    """Candidate positions to show: the gold first (when present), then the others in order."""
    order = list(range(len(inst.candidates)))
    gold = next((i for i in order if inst.candidates[i].qid == inst.qid), None)
    if gold is not None:
        order.remove(gold)
        order.insert(0, gold)
    return order[:limit]


def example_gallery(examples: Mapping[str, Instance], root: Path | None, stats: DatasetStats,
                    max_candidates: int = 5) -> Figure:
    """One example per topic: the mention picture and sentence, then candidates' pictures (gold framed)."""
    topics = list(examples)
    columns = 1 + max_candidates
    with style():
        fig = new_figure(1.7 * columns, 2.3 * max(len(topics), 1) + 0.6)
        if not topics:
            ax = fig.subplots()
            ax.text(0.5, 0.5, "no instances", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            footer(fig, stats)
            return fig
        axes = np.atleast_2d(fig.subplots(len(topics), columns, squeeze=False))
        for row, topic in enumerate(topics):
            inst = examples[topic]
            picture, why = _thumbnail(root, inst.image)
            _draw_cell(axes[row, 0], picture, why, _label(f"mention: {inst.name}"), gold=False)
            axes[row, 0].set_ylabel(topic, fontsize=10)
            axes[row, 0].set_xlabel(textwrap.fill(textwrap.shorten(inst.sentence, 90), 26), fontsize=6.5)
            shown = _shown_candidates(inst, max_candidates)
            for col in range(max_candidates):
                ax = axes[row, col + 1]
                if col >= len(shown):
                    ax.set_axis_off()
                    if col == 0:
                        ax.text(0.5, 0.5, "no candidates", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                    continue
                cand = inst.candidates[shown[col]]
                is_gold = cand.qid == inst.qid
                picture, why = _thumbnail(root, cand.image)
                _draw_cell(ax, picture, why, _label(("gold: " if is_gold else "") + cand.name), is_gold)
                ax.set_xlabel(textwrap.fill(textwrap.shorten(f"{cand.qid}: {cand.description}", 60), 22), fontsize=6)
            if len(inst.candidates) > max_candidates:
                axes[row, -1].text(1.02, 0.5, f"+{len(inst.candidates) - max_candidates}", fontsize=8,
                                   transform=axes[row, -1].transAxes, va="center")
        fig.suptitle("One example per topic: mention (left) and candidates (gold framed)", fontsize=11)
        footer(fig, stats)
    return fig


@timed('figures')
def all_figures(stats: DatasetStats, examples: Mapping[str, Instance], root: Path | None,
                max_candidates: int = 5) -> dict[str, Figure]:
    """Every statistics figure, by the file name it is saved under."""
    return {
        "topic_task_heatmap": topic_task_heatmap(stats),
        "text_lengths": text_length_figure(stats),
        "candidates_ambiguity": candidates_ambiguity_figure(stats),
        "image_coverage": image_coverage_figure(stats),
        "example_gallery": example_gallery(examples, root, stats, max_candidates=max_candidates),
    }

