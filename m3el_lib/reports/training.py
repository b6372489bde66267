"""The training and results chapters' presentation: training curves, CLIP_ND against the
baselines, improvements in points with interval overlap, per-topic tables, the error gallery.

Every number comes from `m3el_lib.evaluation` (one evaluator for everything): the baselines from
the table under `results_dir(profile)/baselines/`, CLIP_ND and its ablations from
`evaluation.pipeline.evaluate_run` on their exported checkpoints. This module only arranges them.
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import pandas as pd

from ..data.schema import TASK_NAMES
from ..evaluation.subsets import Prediction
from ..models.encoders import load_image, picture_path
from ..training.experiments import ExperimentResult
from .style import COLUMN_WIDTH, legend_outside, new_figure, style


def overall(frame, metric: str = "acc@1"):
    """Overall (all topics, candidate ranking) rows: model x task with the interval."""
    chosen = frame[(frame["mode"] == "candidates") & (frame["topic"] == "all")]
    return chosen[["model", "task", "n", metric, f"{metric}_lo", f"{metric}_hi", f"chance_{metric}"]]


def headline_table(frame, models: Sequence[str], metric: str = "acc@1"):
    """Tasks x models: "value [low, high]" in percent, in task order, with the chance level."""
    rows = overall(frame, metric)
    table = {}
    for model in models:
        part = rows[rows["model"] == model].set_index("task")
        table[model] = {t: f"{100 * part.at[t, metric]:.1f} [{100 * part.at[t, metric + '_lo']:.1f}, {100 * part.at[t, metric + '_hi']:.1f}]"
                        for t in part.index}
    out = pd.DataFrame(table).reindex([t for t in TASK_NAMES if t in set(rows["task"])]).fillna("-")
    chance = rows.groupby("task")[f"chance_{metric}"].first()
    out.insert(0, "chance", [f"{100 * chance[t]:.1f}" for t in out.index])
    return out


def improvement_table(frame, ours: str, against: Sequence[str], metric: str = "acc@1"):
    """Per task: ours, each other model, the gain in points, and whether the 95% intervals overlap."""
    rows = overall(frame, metric).set_index(["model", "task"])
    records = []
    for task in TASK_NAMES:
        if (ours, task) not in rows.index:
            continue
        mine = rows.loc[(ours, task)]
        for other in against:
            if (other, task) not in rows.index:
                continue
            theirs = rows.loc[(other, task)]
            records.append({
                "task": task, "against": other,
                "ours %": round(100 * mine[metric], 1), "theirs %": round(100 * theirs[metric], 1),
                "gain (points)": round(100 * (mine[metric] - theirs[metric]), 1),
                "intervals overlap": not (mine[f"{metric}_lo"] > theirs[f"{metric}_hi"] or theirs[f"{metric}_lo"] > mine[f"{metric}_hi"]),
            })
    return pd.DataFrame(records)


def best_baseline_gain(frame, ours: str, baselines: Sequence[str], metric: str = "acc@1"):
    """Per task: the strongest baseline that can do it, and our gain over it in points."""
    rows = overall(frame, metric)
    records = []
    for task in TASK_NAMES:
        theirs = rows[(rows["task"] == task) & rows["model"].isin(baselines)]
        mine = rows[(rows["task"] == task) & (rows["model"] == ours)]
        if theirs.empty or mine.empty:
            continue
        best = theirs.loc[theirs[metric].idxmax()]
        records.append({"task": task, "best baseline": best["model"], "baseline %": round(100 * best[metric], 1),
                        "CLIP_ND %": round(100 * float(mine[metric].iloc[0]), 1),
                        "gain (points)": round(100 * (float(mine[metric].iloc[0]) - best[metric]), 1)})
    table = pd.DataFrame(records)
    return table


def topic_frame(frame, models: Sequence[str], metric: str = "acc@1"):
    """(model, topic) x task of one metric (candidate ranking)."""
    chosen = frame[(frame["mode"] == "candidates") & frame["model"].isin(models) & (frame["topic"] != "all")]
    table = chosen.pivot_table(index=["model", "topic"], columns="task", values=metric)
    return (100 * table.reindex(columns=[t for t in TASK_NAMES if t in table.columns])).round(1)


# ---------------------------------------------------------------- seen / unseen entities


# ---------------------------------------------------------------- wrong predictions


def error_gallery(dataset, wrong: Sequence[Prediction], columns: int = 2, max_items: int = 8):
    """A figure: for each wrong prediction, the mention (picture, sentence), the predicted and the
    gold candidate (picture, name, description)."""
    items = list(wrong)[:max_items]
    # One (mention, predicted, gold) triple needs about 6.6 in to keep its captions apart: as many
    # side by side as the book's column holds (so the figure is never scaled below legibility).
    columns = max(1, min(columns, int(COLUMN_WIDTH // 6.6)))
    rows = max(1, (len(items) + columns - 1) // columns)
    with style():
        fig = new_figure(6.6 * columns, 2.4 * rows)
        axes = fig.subplots(rows, 3 * columns, squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for index, pred in enumerate(items):
            r, c = divmod(index, columns)
            inst = pred.instance
            cells = [
                ("mention", inst.image, textwrap.shorten(inst.sentence, 90)),
                ("predicted (wrong)", inst.candidates[pred.predicted].image, _entity_line(inst.candidates[pred.predicted])),
                ("gold", inst.gold.image, _entity_line(inst.gold)),
            ]
            for offset, (title, ref, caption) in enumerate(cells):
                ax = axes[r, 3 * c + offset]
                picture = load_image(picture_path(dataset, ref)) if ref is not None else None
                if picture is not None:
                    ax.imshow(picture)
                else:
                    ax.text(0.5, 0.5, "(no picture)", ha="center", va="center", fontsize=8)
                ax.set_title(f"{pred.task} {title}" if offset == 0 else title, fontsize=8)
                ax.text(0.5, -0.04, "\n".join(textwrap.wrap(caption, 34)[:3]), ha="center", va="top",
                        fontsize=6.5, transform=ax.transAxes)
    return fig


def _entity_line(entity) -> str:
    return f"{entity.name}: {entity.description}"


def plot_curves(results: list[ExperimentResult], tasks: tuple[str, ...] = ("T-I", "I-T", "T-T")):
    """Training loss per step (left) and validation Acc@1 per epoch (right; mean and some tasks)."""
    with style():
        fig = new_figure(7.0, 3.6)
        left, right = fig.subplots(1, 2)
        for result in results:
            train = result.history["train"]
            left.plot([r["step"] for r in train], [r["loss"] for r in train], label=result.label, lw=1)
            val = result.history["val"]
            epochs = [r["epoch"] + 1 for r in val]
            line = right.plot(epochs, [r["acc_all_mean"] for r in val], lw=2, label=f"{result.label}: mean of 9 tasks")[0]
            for task, dash in zip(tasks, (":", "--", "-.")):
                key = f"acc_{task}"
                if all(key in r for r in val):
                    right.plot(epochs, [r[key] for r in val], dash, color=line.get_color(), lw=1, label=f"{result.label}: {task}")
        left.set(xlabel="optimiser step", ylabel="training loss (InfoNCE)", title="training loss")
        right.set(xlabel="epoch", ylabel="validation Acc@1", title="validation accuracy (val split)", ylim=(0, 1.02))
        legend_outside(fig, columns=2, fontsize=8)
    return fig
