"""Tables and the figure of the baselines chapter, from the flat results frame (one row per model,
task, topic and mode) that `evaluation.pipeline.run_baselines` writes."""
from __future__ import annotations

import numpy as np

from ..data.schema import TASK_NAMES
from ..evaluation.baselines import CHANCE
from ..paper import PAPER_EXISTING_MODELS_ACC
from .style import describe, hatch, legend_outside, new_figure, style


def pivot(frame, metric: str = "acc@1", mode: str = "candidates", topic: str = "all", with_chance: bool = True):
    """Tasks x models of one metric (NaN where a baseline cannot do the task), plus the chance level."""
    chosen = frame[(frame["mode"] == mode) & (frame["topic"] == topic)]
    table = chosen.pivot(index="task", columns="model", values=metric)
    order = [m for m in dict.fromkeys(frame["model"]) if m in table.columns and m != CHANCE]
    table = table.reindex(index=[t for t in TASK_NAMES if t in table.index], columns=order)
    if with_chance:
        table.insert(0, "chance", chosen.groupby("task")[f"chance_{metric}"].first())
    return table


def interval_table(frame, metric: str = "acc@1", mode: str = "candidates", topic: str = "all"):
    """Tasks x models as "value [low, high]" strings (the 95% bootstrap interval)."""
    chosen = frame[(frame["mode"] == mode) & (frame["topic"] == topic)].copy()
    chosen["cell"] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(chosen[metric], chosen[f"{metric}_lo"], chosen[f"{metric}_hi"])]
    table = chosen.pivot(index="task", columns="model", values="cell").fillna("-")
    return table.reindex(index=pivot(frame, metric, mode, topic).index, columns=[m for m in dict.fromkeys(frame["model"]) if m in table.columns])


def mention_picture_table(slices, metric: str = "acc@1", mode: str = "candidates"):
    """Tasks with a mention picture x (model, mention-picture kind): the metric and, beside it, n.

    `slices` is the frame of `EvaluationResult.slice_rows()` (or `baselines_by_mention_picture.csv`):
    "distinct" mention pictures are another picture of the entity, "augmented" ones a transformed
    copy of the gold's own picture (where a model may only be detecting a near-duplicate).
    """
    chosen = slices[(slices["mode"] == mode) & (slices["model"] != CHANCE)]
    table = chosen.pivot_table(index="task", columns=["model", "mention_picture"], values=[metric, "n"], aggfunc="first")
    return table.reindex(index=[t for t in TASK_NAMES if t in table.index])


def topic_table(frame, model: str, metric: str = "acc@1", mode: str = "candidates"):
    """Topics x tasks of one metric for one model (the overall row last), with instance counts."""
    chosen = frame[(frame["mode"] == mode) & (frame["model"] == model)]
    table = chosen.pivot(index="topic", columns="task", values=metric)
    topics = sorted(t for t in table.index if t != "all") + ["all"]
    return table.reindex(index=topics, columns=[t for t in TASK_NAMES if t in table.columns])


def plot_accuracy(frame, mode: str = "candidates", metric: str = "acc@1", paper_range: tuple[float, float] | None = PAPER_EXISTING_MODELS_ACC, title: str = ""):
    """Grouped bars: metric per task per model with 95% intervals, chance ticks, the paper's range as a band."""
    chosen = frame[(frame["mode"] == mode) & (frame["topic"] == "all")]
    models = [m for m in dict.fromkeys(chosen["model"]) if m != CHANCE]
    tasks = [t for t in TASK_NAMES if t in set(chosen["task"])]
    with style():
        fig = new_figure(7.0, 4.4)
        ax = fig.subplots()
        width = 0.8 / max(len(models), 1)
        if paper_range is not None:
            ax.axhspan(*paper_range, color="0.88", zorder=0, label=f"paper's range for existing models ({paper_range[0]:.1%}-{paper_range[1]:.1%}; its data)")
        for i, model in enumerate(models):
            rows = chosen[chosen["model"] == model].set_index("task").reindex(tasks)
            x = np.arange(len(tasks)) + (i - (len(models) - 1) / 2) * width
            low = (rows[metric] - rows[f"{metric}_lo"]).to_numpy()
            high = (rows[f"{metric}_hi"] - rows[metric]).to_numpy()
            ax.bar(x, rows[metric], width, yerr=[low, high], capsize=1.5, label=model, zorder=2, hatch=hatch(i),
                   edgecolor="white", linewidth=0.4, error_kw={"elinewidth": 0.8})
        chance = chosen.groupby("task")[f"chance_{metric}"].first().reindex(tasks)
        ax.scatter(np.arange(len(tasks)), chance, marker="_", s=500, color="black", zorder=3, label="chance level")
        ax.set_xticks(np.arange(len(tasks)), tasks)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(metric.replace("acc@1", "Acc@1 (the paper's ACC)"))
        ax.set_xlabel("task (mention modality - entity modality)")
        if title:
            fig.suptitle(title, fontsize=10)
        legend_outside(fig, ax, columns=2)
        ranges = ", ".join(f"{m} {chosen[chosen['model'] == m][metric].min():.0%}-{chosen[chosen['model'] == m][metric].max():.0%}"
                           for m in models)
        describe(fig, f"Bar chart of {metric} per task ({', '.join(tasks)}) for {len(models)} models with 95% "
                      f"intervals and the chance level of each task. Range over the tasks: {ranges}. {title}")
    return fig
