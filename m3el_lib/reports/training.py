"""The headline results (notebook 06): CLIP_ND against the baselines, the ablation, the errors.

Every number comes from `m3el_lib.evaluation.metrics` (one evaluator for everything): the baselines from
the evaluation engineer's table under `results_dir(profile)/baselines/`, CLIP_ND and its
ablations from `run_model_evaluation` on their exported checkpoints. This module only arranges
them: tables, improvements in points, interval overlap, a seen/unseen split of the test entities,
and a gallery of wrong predictions with their pictures.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import config as paths
from ..data.schema import TASK_NAMES, Instance, task_by_name

# The paper's reported figures (arXiv 2410.18096), shown beside ours and never as ours.
PAPER_EXISTING_MODELS_ACC = (0.494, 0.758)  # ACC of existing models on M³EL
PAPER_CLIP_ND_GAIN_POINTS = (9.3, 25.0)  # CLIP_ND's average improvement, in points
CROSS_MODAL_TASKS = ("T-I", "I-T")  # text on one side, picture on the other: no shared tower


def baseline_frame(profile: str | None = None):
    """The baseline rows (one per model, task, topic, mode) the evaluation engineer wrote."""
    import pandas as pd

    path = paths.results_dir(profile) / "baselines" / "baselines.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run the baselines first (notebook 04, or baselines.run_baselines)")
    return pd.read_csv(path)


def evaluate_run(label: str, best_path: Path, model: str, profile: str | None = None, split: str = "test",
                 n_bootstrap: int = 1000, data: str | None = None):
    """Evaluate an exported checkpoint with the project's evaluator; rows labelled `label`."""
    import pandas as pd

    from ..evaluation.metrics import run_model_evaluation

    result, written = run_model_evaluation(model, data=data, checkpoint=str(best_path), split=split,
                                           n_bootstrap=n_bootstrap, profile=profile, save=True)
    frame = pd.DataFrame(result.rows())
    frame["model"] = label
    return result, frame, written


def overall(frame, metric: str = "acc@1"):
    """Overall (all topics, candidate ranking) rows: model x task with the interval."""
    chosen = frame[(frame["mode"] == "candidates") & (frame["topic"] == "all")]
    return chosen[["model", "task", "n", metric, f"{metric}_lo", f"{metric}_hi", f"chance_{metric}"]]


def headline_table(frame, models: Sequence[str], metric: str = "acc@1"):
    """Tasks x models: "value [low, high]" in percent, in task order, with the chance level."""
    import pandas as pd

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
    import pandas as pd

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
    import pandas as pd

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


def seen_in_training(dataset, split: str = "test", train_split: str = "train") -> dict[str, list[Instance]]:
    """The `split` instances whose gold entity is (or is not) among the training instances'
    candidates with the same picture: what the entity-view alignment could have learned."""
    known = {(c.qid, c.image.local_path if c.image else "") for inst in dataset.split(train_split) for c in inst.candidates}
    groups: dict[str, list[Instance]] = {"gold entity in the training candidates": [], "gold entity unseen in training": []}
    for inst in dataset.split(split):
        gold = inst.gold
        key = "gold entity in the training candidates" if (gold.qid, gold.image.local_path if gold.image else "") in known \
            else "gold entity unseen in training"
        groups[key].append(inst)
    return groups


def evaluate_subsets(scorer, dataset, groups: dict[str, list[Instance]], tasks: Sequence[str] = CROSS_MODAL_TASKS,
                     n_bootstrap: int = 1000):
    """Acc@1 [95% CI] of one scorer on each group of instances (the project's evaluator on a subset)."""
    import pandas as pd

    from ..evaluation.metrics import evaluate

    records = []
    for name, members in groups.items():
        if not members:
            continue
        subset = dataclasses.replace(dataset, instances=list(members))
        result = evaluate(scorer, subset, split="all", tasks=[task_by_name(t) for t in tasks],
                          n_bootstrap=n_bootstrap, per_topic=False)
        for group in result.groups:
            if group.mode == "candidates":
                lo, hi = group.ci["acc@1"]
                records.append({"instances": name, "task": group.task, "n": group.n,
                                "Acc@1 %": round(100 * group.metrics["acc@1"], 1),
                                "95% CI": f"[{100 * lo:.1f}, {100 * hi:.1f}]"})
    return pd.DataFrame(records)


# ---------------------------------------------------------------- wrong predictions


@dataclasses.dataclass
class Prediction:
    instance: Instance
    task: str
    predicted: int  # candidate position
    scores: list[float]

    @property
    def correct(self) -> bool:
        return self.predicted == self.instance.gold_index


def predictions(scorer, dataset, task: str, split: str = "test") -> list[Prediction]:
    """The scorer's top candidate for every `split` instance of `task` (through the evaluator's
    own scoring API: `EntityTable.candidate_matrix` and `pair_scores`)."""
    from ..evaluation.scoring import EntityTable

    chosen = task_by_name(task)
    instances = dataset.split(split)
    members = [inst for inst in instances if chosen in inst.tasks()]
    entities = EntityTable.from_instances(instances)
    scorer.prepare(dataset, instances, entities)
    rows = np.array([instances.index(m) for m in members], dtype=np.int64)
    entity_idx, valid, _ = entities.candidate_matrix(members)
    scores = np.where(valid, scorer.pair_scores(chosen, rows, entity_idx), -np.inf)
    return [Prediction(m, task, int(np.argmax(s)), [float(x) for x in s[: len(m.candidates)]]) for m, s in zip(members, scores)]


def error_gallery(dataset, wrong: Sequence[Prediction], columns: int = 2, max_items: int = 8):
    """A figure: for each wrong prediction, the mention (picture, sentence), the predicted and the
    gold candidate (picture, name, description)."""
    import textwrap

    import matplotlib.pyplot as plt

    from ..models.encoders import load_image, picture_path

    items = list(wrong)[:max_items]
    rows = max(1, (len(items) + columns - 1) // columns)
    fig, axes = plt.subplots(rows, 3 * columns, figsize=(4.2 * columns * 1.6, 2.9 * rows), squeeze=False)
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
            ax.text(0.5, -0.04, "\n".join(textwrap.wrap(caption, 34)[:3]), ha="center", va="top", fontsize=6.5, transform=ax.transAxes)
    fig.tight_layout()
    return fig


def _entity_line(entity) -> str:
    return f"{entity.name}: {entity.description}"
