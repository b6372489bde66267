"""Slices of an evaluation: instances whose gold entity was or was not seen in training, any
group of instances scored by the project's one evaluator, and the per-instance predictions behind
an error gallery."""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..data.schema import Instance, task_by_name
from .metrics import evaluate
from .scoring import EntityTable

CROSS_MODAL_TASKS = ("T-I", "I-T")  # text on one side, picture on the other: no shared tower


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


def named_by_imagenet_class(dataset, split: str = "test") -> dict[str, list[Instance]]:
    """The `split` instances whose gold entity's name occurs, as whole words, in one of the 1,000
    ImageNet class names ("tiger" in "tiger shark") or not: the entities the sample model's image
    head may know from its ImageNet classifier (`models.imagenet_names`) rather than its corpus.
    Whole words rather than equal names, so that the second group is the cleaner one."""
    from ..models.imagenet_names import imagenet_class_names

    return _named_in(dataset.split(split), imagenet_class_names(), "gold named in an ImageNet class", "gold named in no ImageNet class")


def named_by_captions(dataset, captions: Iterable[str], splits: Sequence[str] = ("train", "val")) -> dict[str, list[Instance]]:
    """The instances of `splits` whose gold entity's name occurs, as whole words, in one of the
    pretraining `captions` or not. Only test entities are kept out of the sample CLIP's corpus, so
    on the other splits these are the entities the zero-shot model saw named beside a picture (as
    OpenAI's CLIP saw the web's entities), against those it never saw named (every test one)."""
    members = [inst for split in splits for inst in dataset.split(split)]
    return _named_in(members, captions, "gold named in a pretraining caption", "gold named in no pretraining caption")


def _named_in(members: list[Instance], texts: Iterable[str], named_group: str, unnamed_group: str) -> dict[str, list[Instance]]:
    """`members` split by whether their gold entity's name occurs, as whole words, in one of `texts`
    (`pretrain_corpus.names_in`, the matcher the corpus exclusion uses)."""
    from ..construction.snapshot import normalise
    from ..models.pretrain_corpus import names_in

    golds = {normalise(inst.gold.name) for inst in members} - {""}
    named = {name for text in texts for name in names_in(text, golds)}
    groups: dict[str, list[Instance]] = {named_group: [], unnamed_group: []}
    for inst in members:
        groups[named_group if normalise(inst.gold.name) in named else unnamed_group].append(inst)
    return groups


def evaluate_subsets(scorer, dataset, groups: dict[str, list[Instance]], tasks: Sequence[str] = CROSS_MODAL_TASKS,
                     n_bootstrap: int = 1000):
    """Acc@1 [95% CI] of one scorer on each group of instances (the project's evaluator on a subset)."""
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
    chosen = task_by_name(task)
    instances = dataset.split(split)
    members = [inst for inst in instances if chosen in inst.tasks()]
    entities = EntityTable.from_instances(instances)
    scorer.prepare(dataset, instances, entities)
    rows = np.array([instances.index(m) for m in members], dtype=np.int64)
    entity_idx, valid, _ = entities.candidate_matrix(members)
    scores = np.where(valid, scorer.pair_scores(chosen, rows, entity_idx), -np.inf)
    return [Prediction(m, task, int(np.argmax(s)), [float(x) for x in s[: len(m.candidates)]]) for m, s in zip(members, scores)]
