"""What the chapters state in words about their computed tables, as short Markdown.

A chapter's prose is hand-written Markdown; the numbers in it are glued (MyST-NB `glue`, shown
with `{glue:text}`). Where a sentence depends on the data (a list whose length varies, a remark
made only when the numbers bear it out), the chapter glues the Markdown these functions return
and shows it with `{glue:md}`, so that no notebook code cell assembles prose. Every function
reads the tables the library computed; none computes a statistic of its own.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from ..evaluation.subsets import CROSS_MODAL_TASKS
from .baseline_tables import pivot

NO_REMARK = "- Nothing in these numbers changes how the later chapters should be read."


def bullets(lines: list[str], empty: str = NO_REMARK) -> str:
    """A Markdown list of the lines (`empty` when there are none)."""
    return "\n".join(f"- {line}" for line in lines) if lines else empty


def value_list(values: Mapping[str, float], fmt: str = ",") -> str:
    """`T-T 1,234, T-I 56`: each name with its value formatted by `fmt`, in the mapping's order."""
    return ", ".join(f"{name} {value:{fmt}}" for name, value in values.items()) or "none"


def negative_tiers(tiers: Mapping[str, int] | None) -> str:
    """How a construction chose its negatives (its manifest's counts per tier), as shares."""
    total = sum(tiers.values()) if tiers else 0
    if not total:
        return "not recorded (no construction manifest with negatives per tier next to the data)"
    return value_list({name.replace("_", " "): count / total for name, count in tiers.items()}, ".0%")


def statistics_remarks(task_counts: pd.Series, by_topic: pd.DataFrame, name_decides_share: float,
                       description_coverage: float) -> str:
    """The statistics chapter's remarks for the later chapters, each only where the data bear it out.

    `task_counts`: instances per task (all topics); `by_topic`: instances per topic (rows) and
    task; `name_decides_share`: share of instances where the name alone picks the gold;
    `description_coverage`: mean share of a gold description's content words in the sentence.
    """
    remarks = []
    picture_tasks = [task for task in task_counts.index if task != "T-T"]
    if len(by_topic) and picture_tasks and "T-T" in task_counts:
        scarcest = by_topic[picture_tasks].min(axis=1)
        remarks.append(f"Pictures are the scarce resource: {int(task_counts[picture_tasks].min()):,} instances qualify "
                       f"for the smallest picture task, against {int(task_counts['T-T']):,} for T-T; "
                       f"{scarcest.idxmin()} has only {int(scarcest.min()):,}, so its picture-task scores rest on "
                       "very few instances.")
    if name_decides_share > 0.5:
        remarks.append("Unlike the paper's same-name candidates, here the name alone picks the gold entity in most "
                       "instances: text tasks that show entity names measure name matching more than disambiguation.")
    if description_coverage > 0.5:
        remarks.append(f"Sentences restate their gold description ({description_coverage:.0%} of its content words on "
                       "average): another sign that text-to-text linking is easy on this data.")
    return bullets(remarks)


def _overall_row(frame: pd.DataFrame, model: str, task: str) -> pd.Series:
    rows = frame[(frame["model"] == model) & (frame["task"] == task) & (frame["topic"] == "all")
                 & (frame["mode"] == "candidates")]
    return rows.iloc[0]


def baseline_findings(frame: pd.DataFrame, clip_model: str | None = None, sample_model: bool = False) -> str:
    """One line per baseline (tasks scored, Acc@1 range, tasks whose 95% interval lies above
    chance), and for the sample's miniature CLIP (`sample_model`) its cross-modal scores."""
    table = pivot(frame)
    lines = []
    for model in table.columns.drop("chance"):
        column = table[model].dropna()
        above = [task for task in column.index if _overall_row(frame, model, task)["acc@1_lo"] > table.loc[task, "chance"]]
        lines.append(f"**{model}**: scored {len(column)} task(s); Acc@1 {column.min():.3f}-{column.max():.3f}; "
                     f"95% interval above chance on {len(above)}: {', '.join(above) or 'none'}.")
    cross = [task for task in CROSS_MODAL_TASKS if task in table.index]
    if clip_model is not None and sample_model and cross:
        rows = {task: _overall_row(frame, clip_model, task) for task in cross}
        scores = ", ".join(f"{t} {table.loc[t, clip_model]:.3f} (chance {table.loc[t, 'chance']:.3f})" for t in cross)
        intervals = ", ".join(f"{t} {rows[t]['acc@1_lo']:.3f}-{rows[t]['acc@1_hi']:.3f}" for t in cross)
        lines.append(f"The sample's miniature CLIP, zero-shot, on the cross-modal tasks {', '.join(cross)}: {scores}; "
                     f"95% intervals {intervals}. It learnt to match pictures and captions on a disjoint clip-art "
                     "corpus and reads its image tower's ImageNet class names (previous chapter); it never saw M³EL-mini.")
        lines += [_topics_against_chance(frame, clip_model, task) for task in cross]
    return bullets(lines, empty="- No baseline was scored.")


def _topics_against_chance(frame: pd.DataFrame, model: str, task: str) -> str:
    """`Per topic, T-I: 95% interval above chance on nature (n=99); not on flags (n=186).`"""
    rows = frame[(frame["model"] == model) & (frame["task"] == task) & (frame["topic"] != "all")
                 & (frame["mode"] == "candidates")].sort_values("topic")
    clears = rows["acc@1_lo"] > rows["chance_acc@1"]
    named = [f"{topic} (n={int(n):,})" for topic, n in zip(rows["topic"], rows["n"])]
    above = [name for name, ok in zip(named, clears) if ok]
    below = [name for name, ok in zip(named, clears) if not ok]
    return (f"Per topic, {task}: 95% interval above chance on {', '.join(above) or 'no topic'}; "
            f"not on {', '.join(below) or 'any topic'}.")


def subset_summary(table: pd.DataFrame) -> str:
    """`T-I 41.0% on seen (n=12); ...`: Acc@1 per group of instances (`evaluation.subsets`)."""
    return "; ".join(f"{row['task']} {row['Acc@1 %']:.1f}% on {row['instances']} (n={row['n']})"
                     for _, row in table.iterrows()) or "no test instance in either group"

