"""The 9-task ranking evaluation: ranks, Acc@1 (the paper's ACC), Hits@k, MRR, intervals, chance.

For each task (an instance takes part iff `task in inst.tasks()`), overall and per topic, every
mention's candidates are ranked by the scorer's scores. Two modes:
- `candidates`: among the instance's own candidates (the M³EL setting: entities sharing a name);
- `full-kb`: among every entity of the dataset that has the task's entity modality (one record
  per entity id), as the MIMIC line of work reports.

Ties (our rule, deterministic and fair): scores within `TIE_ATOL` of the gold's are ties, broken
uniformly at random and reported as the EXPECTATION over that tie-breaking. With g candidates
strictly above the gold and t tied with it, the gold's rank is uniform on g+1 .. g+t+1, so
Acc@1 = 1/(t+1) if g = 0 else 0, Hits@k = clip((k - g)/(t+1), 0, 1), MRR = mean of 1/rank.
A constant scorer therefore gets exactly the chance level (1/K), never 100%. `ties="pessimistic"`
instead puts the gold below every tie (rank g+t+1).

Chance level per instance with K candidates: Acc@1 = 1/K, Hits@k = min(k, K)/K, MRR = H_K/K.
Intervals: percentile bootstrap over instances (seeded), 95% by default.

Slices by mention picture: for every task whose mention shows a picture, the instances are also
scored separately by `mention_image_kind` (`EvaluationResult.slices`): "distinct" (another picture
of the entity) and "augmented" (a transformed copy of the gold's own picture, where matching it is
near-duplicate detection, not linking), so the two are never mistaken for each other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..data.schema import TASKS, Instance, Task
from .scoring import EntityTable, Scorer
from ..timing import timed

HITS_AT = (3, 5, 10)
METRICS = ("acc@1",) + tuple(f"hits@{k}" for k in HITS_AT) + ("mrr",)
TIE_ATOL = 1e-6
TIE_RULES = ("expected", "pessimistic")
MODES = ("candidates", "full-kb")
ALL_TOPICS = "all"
DEFAULT_BOOTSTRAP = 1000
KB_CHUNK = 128  # mention rows scored against the full KB at a time (bounds memory on the release)


# ---------------------------------------------------------------- ranks and metrics


def rank_counts(scores: np.ndarray, valid: np.ndarray, gold: np.ndarray, atol: float = TIE_ATOL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: entries strictly above the gold's score, entries tied with it (gold excluded), valid entries."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    rows = np.arange(scores.shape[0])
    gold_score = scores[rows, gold][:, None]
    # NaN scores (a broken scorer) rank above the gold: never in its favour.
    above = valid & ((scores > gold_score + atol) | np.isnan(scores))
    tied = valid & ~above & (np.abs(scores - gold_score) <= atol)
    tied[rows, gold] = False
    return above.sum(1), tied.sum(1), valid.sum(1)


def _harmonic(n: np.ndarray) -> np.ndarray:
    """H_n for an array of non-negative integers (exact table up to the largest n)."""
    n = np.asarray(n, dtype=np.int64)
    top = int(n.max()) if n.size else 0
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, top + 1))])
    return table[n]


def instance_metrics(greater: np.ndarray, ties: np.ndarray, rule: str = "expected") -> dict[str, np.ndarray]:
    """Per-instance metric values from rank counts under the tie `rule`."""
    if rule not in TIE_RULES:
        raise ValueError(f"unknown tie rule {rule!r}; expected one of {TIE_RULES}")
    greater = np.asarray(greater, dtype=np.int64)
    ties = np.asarray(ties, dtype=np.int64)
    if rule == "pessimistic":
        rank = greater + ties + 1
        out = {"acc@1": (rank == 1).astype(float)}
        out.update({f"hits@{k}": (rank <= k).astype(float) for k in HITS_AT})
        out["mrr"] = 1.0 / rank
        return out
    spread = ties + 1
    out = {"acc@1": np.where(greater == 0, 1.0 / spread, 0.0)}
    out.update({f"hits@{k}": np.clip((k - greater) / spread, 0.0, 1.0) for k in HITS_AT})
    out["mrr"] = (_harmonic(greater + spread) - _harmonic(greater)) / spread
    return out


def chance_metrics(sizes: np.ndarray) -> dict[str, np.ndarray]:
    """Per-instance expected metric values of a random ranking of `sizes` candidates."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = {"acc@1": 1.0 / sizes}
    out.update({f"hits@{k}": np.minimum(k, sizes) / sizes for k in HITS_AT})
    out["mrr"] = _harmonic(sizes) / sizes
    return out


@timed('bootstrap')
def bootstrap_ci(values: np.ndarray, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95, chunk: int = 100) -> np.ndarray:
    """Percentile bootstrap interval of the mean of each column of `values` [n, m]: array [m, 2]."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    if n == 0 or n_boot <= 0:
        return np.full((values.shape[1], 2), np.nan)
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, n_boot, chunk):
        picks = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        means.append(values[picks].mean(axis=1))
    stacked = np.concatenate(means)
    alpha = (1.0 - level) / 2
    return np.stack([np.quantile(stacked, alpha, axis=0), np.quantile(stacked, 1 - alpha, axis=0)], axis=1)


# ---------------------------------------------------------------- results


@dataclass
class GroupResult:
    """Metrics of one (task, topic, mode) group of instances."""

    task: str
    topic: str
    mode: str
    n: int
    candidates_mean: float
    candidates_min: int
    candidates_max: int
    metrics: dict[str, float]
    ci: dict[str, list[float]]
    chance: dict[str, float]
    missing_mention_pictures: int = 0
    missing_candidate_pictures: int = 0
    mention_picture: str = "all"  # a slice by mention_image_kind ("distinct", "augmented"), or "all"

    def row(self) -> dict[str, Any]:
        """One flat row (for CSV / DataFrames)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("task", "topic", "mode", "n", "candidates_mean", "candidates_min", "candidates_max")}
        if self.mention_picture != "all":
            out["mention_picture"] = self.mention_picture
        for metric in METRICS:
            out[metric] = self.metrics[metric]
            out[f"{metric}_lo"], out[f"{metric}_hi"] = self.ci[metric]
            out[f"chance_{metric}"] = self.chance[metric]
        out["missing_mention_pictures"] = self.missing_mention_pictures
        out["missing_candidate_pictures"] = self.missing_candidate_pictures
        return out


@dataclass
class EvaluationResult:
    """All groups of one scorer on one dataset split, with what is needed to reproduce them."""

    model: str
    weights_id: str
    data_checksum: str
    split: str
    ties: str
    seed: int
    n_bootstrap: int
    groups: list[GroupResult] = field(default_factory=list)
    unsupported_tasks: list[str] = field(default_factory=list)
    slices: list[GroupResult] = field(default_factory=list)  # by mention picture kind, all topics together

    def rows(self) -> list[dict[str, Any]]:
        return [{"model": self.model, **g.row()} for g in self.groups]

    def slice_rows(self) -> list[dict[str, Any]]:
        return [{"model": self.model, **g.row()} for g in self.slices]

    def slice_frame(self):
        import pandas as pd

        return pd.DataFrame(self.slice_rows())

    def to_json(self) -> dict[str, Any]:
        """Nested: settings, then per mode, per task: overall and per-topic metrics."""
        by_mode: dict[str, dict[str, Any]] = {}
        for g in self.groups:
            entry = by_mode.setdefault(g.mode, {}).setdefault(g.task, {"overall": None, "topics": {}})
            body = {k: v for k, v in asdict(g).items() if k not in ("task", "topic", "mode")}
            if g.topic == ALL_TOPICS:
                entry["overall"] = body
            else:
                entry["topics"][g.topic] = body
        return {
            "model": self.model,
            "weights_id": self.weights_id,
            "data_checksum": self.data_checksum,
            "split": self.split,
            "ties": self.ties,
            "seed": self.seed,
            "n_bootstrap": self.n_bootstrap,
            "metrics": list(METRICS),
            "unsupported_tasks": self.unsupported_tasks,
            "results": by_mode,
            "slices_by_mention_picture": [
                {k: v for k, v in asdict(g).items() if k != "topic"} for g in self.slices
            ],
        }

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    def get(self, task: str, topic: str = ALL_TOPICS, mode: str = "candidates") -> GroupResult | None:
        for g in self.groups:
            if (g.task, g.topic, g.mode) == (task, topic, mode):
                return g
        return None


# ---------------------------------------------------------------- the evaluation loop


def select_split(instances: Sequence[Instance], split: str | None) -> list[Instance]:
    """The instances of `split` ("all"/None: every one); a split that matches nothing is an error."""
    if split in (None, "", "all"):
        return list(instances)
    chosen = [inst for inst in instances if inst.split == split]
    if not chosen:
        present = sorted({inst.split or "(none)" for inst in instances})
        raise ValueError(f"no instances in split {split!r}; splits present: {', '.join(present)} (use split='all')")
    return chosen


@timed('evaluate')
def evaluate(
    scorer: Scorer,
    dataset,
    split: str | None = "test",
    tasks: Sequence[Task] = TASKS,
    full_kb: bool = False,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    ties: str = "expected",
    per_topic: bool = True,
) -> EvaluationResult:
    """Score `dataset`'s `split` with `scorer` on every task it supports, per topic and overall.

    The full-KB mode ranks against every entity of the whole dataset (all splits).
    """
    instances = select_split(dataset.instances, split)
    if not instances:
        raise ValueError("no instances to evaluate")
    entities = EntityTable.from_instances(dataset.instances if full_kb else instances)
    scorer.prepare(dataset, instances, entities)
    supported = set(scorer.supported_tasks())
    result = EvaluationResult(
        model=scorer.name,
        weights_id=getattr(scorer, "weights_id", ""),
        data_checksum=dataset.checksum,
        split=split or "all",
        ties=ties,
        seed=seed,
        n_bootstrap=n_bootstrap,
        unsupported_tasks=[t.name for t in tasks if t not in supported],
    )
    task_sets = [set(inst.tasks()) for inst in instances]
    for task in tasks:
        if task not in supported:
            continue
        rows = np.array([i for i, have in enumerate(task_sets) if task in have], dtype=np.int64)
        if rows.size == 0:
            continue
        members = [instances[i] for i in rows]
        counts, missing = _candidate_counts(scorer, task, rows, members, entities)
        result.groups += _groups(task, "candidates", members, counts, missing, ties, n_bootstrap, seed, per_topic)
        result.slices += _picture_slices(task, "candidates", members, counts, missing, ties, n_bootstrap, seed)
        if full_kb:
            kb_counts, (kb_missing, kb_pictures_missing) = _kb_counts(scorer, task, rows, members, entities)
            kb_groups = _groups(task, "full-kb", members, kb_counts, kb_missing, ties, n_bootstrap, seed, per_topic)
            for group in kb_groups:  # the KB's unusable pictures, once (not once per mention)
                group.missing_candidate_pictures = kb_pictures_missing
            result.groups += kb_groups
    return result


def _candidate_counts(scorer: Scorer, task: Task, rows: np.ndarray, members: list[Instance], entities: EntityTable):
    entity_idx, valid, gold = entities.candidate_matrix(members)
    scores = scorer.pair_scores(task, rows, entity_idx)
    counts = rank_counts(scores, valid, gold)
    missing = _missing(scorer, task, rows, entity_idx, valid)
    return counts, missing


def _kb_counts(scorer: Scorer, task: Task, rows: np.ndarray, members: list[Instance], entities: EntityTable):
    # Only KB entities that have the task's entity modality compete; the gold always does.
    eligible = entities.has_modality(task.entity)[entities.kb_rows]
    gold = np.array([entities.kb_position[inst.qid] for inst in members], dtype=np.int64)
    parts = []
    for start in range(0, len(rows), KB_CHUNK):
        scores = scorer.all_scores(task, rows[start : start + KB_CHUNK])
        chunk_gold = gold[start : start + KB_CHUNK]
        valid = np.broadcast_to(eligible, scores.shape).copy()
        valid[np.arange(len(chunk_gold)), chunk_gold] = True
        parts.append(rank_counts(scores, valid, chunk_gold))
    counts = tuple(np.concatenate([p[i] for p in parts]) for i in range(3))
    no_candidates = np.zeros((len(rows), 0), dtype=np.int64)
    missing = _missing(scorer, task, rows, no_candidates, no_candidates.astype(bool))
    kb_idx = entities.kb_rows[eligible][None, :]
    kb_missing = int(_missing(scorer, task, rows[:1], kb_idx, np.ones_like(kb_idx, dtype=bool))[0, 1])
    return counts, (missing, kb_missing)


def _missing(scorer: Scorer, task: Task, rows: np.ndarray, entity_idx: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-row (mention picture unusable, candidate pictures unusable) counts; zeros for non-embedding scorers."""
    count = getattr(scorer, "missing_pictures", None)
    if count is None:
        return np.zeros((len(rows), 2), dtype=np.int64)
    return count(task, rows, entity_idx, valid)


def _groups(task: Task, mode: str, members: list[Instance], counts, missing: np.ndarray, ties: str, n_bootstrap: int, seed: int, per_topic: bool) -> list[GroupResult]:
    greater, tied, sizes = counts
    values = instance_metrics(greater, tied, ties)
    chance = chance_metrics(sizes)
    topics = np.array([inst.topic for inst in members])
    selections = [(ALL_TOPICS, np.ones(len(members), dtype=bool))]
    if per_topic:
        selections += [(topic, topics == topic) for topic in sorted(set(topics)) if topic]
    out = []
    for topic, mask in selections:
        out.append(_group(task, topic, mode, mask, values, chance, sizes, missing, n_bootstrap, seed))
    return out


def _picture_slices(task: Task, mode: str, members: list[Instance], counts, missing: np.ndarray, ties: str, n_bootstrap: int, seed: int) -> list[GroupResult]:
    """One group per mention-picture kind present, for a task whose mention shows a picture."""
    if "I" not in task.mention.value:
        return []
    greater, tied, sizes = counts
    values = instance_metrics(greater, tied, ties)
    chance = chance_metrics(sizes)
    kinds = np.array([inst.mention_image_kind for inst in members])
    out = []
    for kind in ("distinct", "augmented"):
        mask = kinds == kind
        if mask.any():
            group = _group(task, ALL_TOPICS, mode, mask, values, chance, sizes, missing, n_bootstrap, seed + _stable_hash(kind))
            group.mention_picture = kind
            out.append(group)
    return out


def _group(task: Task, topic: str, mode: str, mask: np.ndarray, values, chance, sizes, missing, n_bootstrap: int, seed: int) -> GroupResult:
    matrix = np.stack([values[m][mask] for m in METRICS], axis=1)
    # One seed per group, derived from the names, so adding a task or topic leaves the others' intervals as they were.
    group_seed = seed + _stable_hash(f"{task.name}|{topic}|{mode}")
    intervals = bootstrap_ci(matrix, n_bootstrap, group_seed)
    return GroupResult(
        task=task.name,
        topic=topic,
        mode=mode,
        n=int(mask.sum()),
        candidates_mean=float(sizes[mask].mean()),
        candidates_min=int(sizes[mask].min()),
        candidates_max=int(sizes[mask].max()),
        metrics={m: float(matrix[:, i].mean()) for i, m in enumerate(METRICS)},
        ci={m: [float(intervals[i, 0]), float(intervals[i, 1])] for i, m in enumerate(METRICS)},
        chance={m: float(chance[m][mask].mean()) for m in METRICS},
        missing_mention_pictures=int(missing[mask, 0].sum()),
        missing_candidate_pictures=int(missing[mask, 1].sum()),
    )


def _stable_hash(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------- reporting


def default_split(instances: Sequence[Instance]) -> str:
    """"test" when the dataset has a test split, else "all" (the plain release format has no splits)."""
    return "test" if any(inst.split == "test" for inst in instances) else "all"


def format_result(result: EvaluationResult) -> str:
    """A plain-text report: per mode, one line per task, then Acc@1 per topic."""
    lines = [
        f"model {result.model}  weights {result.weights_id[:12] or '-'}  data {result.data_checksum[:12]}  split {result.split}",
        f"ties: {result.ties} rank; intervals: {result.n_bootstrap} bootstrap resamples, seed {result.seed}",
    ]
    if result.unsupported_tasks:
        lines.append(f"not scored (this model lacks the modality): {', '.join(result.unsupported_tasks)}")
    for mode in MODES:
        overall = [g for g in result.groups if g.mode == mode and g.topic == ALL_TOPICS]
        if not overall:
            continue
        lines.append(f"\n[{mode}]  {'task':<6} {'n':>6} {'K':>7} {'Acc@1 [95% CI]':>22} {'chance':>7} {'Hits@3':>7} {'MRR':>6} {'no-pic':>7}")
        for g in overall:
            lo, hi = g.ci["acc@1"]
            missing = g.missing_mention_pictures + g.missing_candidate_pictures
            lines.append(
                f"{'':<{len(mode) + 4}}{g.task:<6} {g.n:>6} {g.candidates_mean:>7.1f} "
                f"{g.metrics['acc@1']:>8.3f} [{lo:.3f}, {hi:.3f}] {g.chance['acc@1']:>7.3f} "
                f"{g.metrics['hits@3']:>7.3f} {g.metrics['mrr']:>6.3f} {missing:>7}"
            )
        topics = sorted({g.topic for g in result.groups if g.mode == mode and g.topic != ALL_TOPICS})
        if topics:
            lines.append(f"  Acc@1 per topic ({mode}): " + "  ".join(f"{t[:10]:>10}" for t in topics))
            for g in overall:
                cells = [result.get(g.task, topic, mode) for topic in topics]
                lines.append(f"  {g.task:<22}" + "  ".join(f"{c.metrics['acc@1']:>10.3f}" if c else f"{'-':>10}" for c in cells))
    if result.slices:
        lines.append("\n  Acc@1 by mention picture (candidates; augmented = a copy of the gold's own picture):")
        for task in dict.fromkeys(g.task for g in result.slices):
            cells = {g.mention_picture: g for g in result.slices if g.task == task}
            lines.append(f"  {task:<22}" + "  ".join(
                f"{kind} {cells[kind].metrics['acc@1']:.3f} (n {cells[kind].n})" if kind in cells else f"{kind} -"
                for kind in ("distinct", "augmented")))
    return "\n".join(lines)


