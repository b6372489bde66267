"""The ranking evaluation: every metric against hand-computed rankings, ties, chance, oracles, topics."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from m3el_lib.evaluation.baselines import ChanceScorer
from m3el_lib.evaluation.metrics import (
    METRICS,
    bootstrap_ci,
    chance_metrics,
    evaluate,
    format_result,
    instance_metrics,
    rank_counts,
    select_split,
)
from m3el_lib.data.io import Dataset, load_dataset
from m3el_lib.data.schema import TASK_NAMES, TASKS, Entity, ImageRef, Instance
from m3el_lib.evaluation.scoring import EntityTable
from m3el_lib.data.synthetic import write_synthetic_dataset


# ---------------------------------------------------------------- ranks and metrics by hand


def test_rank_counts_by_hand():
    scores = np.array(
        [
            [0.9, 0.5, 0.1, 0.0],  # gold 0 strictly first
            [0.2, 0.8, 0.8, 0.1],  # gold 1 tied with entry 2 at the top
            [0.3, 0.3, 0.3, 0.3],  # constant: gold 3 tied with all three others
            [0.7, 0.6, 0.5, 0.9],  # gold 2 (0.5): three entries above it
        ]
    )
    valid = np.ones_like(scores, dtype=bool)
    greater, ties, size = rank_counts(scores, valid, np.array([0, 1, 3, 2]))
    assert greater.tolist() == [0, 0, 0, 3]
    assert ties.tolist() == [0, 1, 3, 0]
    assert size.tolist() == [4, 4, 4, 4]


def test_rank_counts_ignore_padding_and_count_nan_against_gold():
    scores = np.array([[0.5, 0.9, np.nan], [0.5, np.nan, 0.1]])
    valid = np.array([[True, False, False], [True, True, True]])
    greater, ties, size = rank_counts(scores, valid, np.array([0, 0]))
    assert greater.tolist() == [0, 1]  # the padded 0.9 does not count; a NaN does
    assert ties.tolist() == [0, 0]
    assert size.tolist() == [1, 3]


def test_scores_within_tolerance_are_ties():
    greater, ties, _ = rank_counts(np.array([[0.5, 0.5 + 1e-9, 0.5 + 1e-3]]), np.ones((1, 3), bool), np.array([0]))
    assert (greater.tolist(), ties.tolist()) == ([1], [1])


def test_expected_metrics_by_hand():
    # (greater, ties) -> the gold's rank is uniform on greater+1 .. greater+ties+1
    greater = np.array([0, 0, 1, 3, 0])
    ties = np.array([0, 1, 1, 0, 3])
    m = instance_metrics(greater, ties, "expected")
    assert m["acc@1"].tolist() == [1.0, 0.5, 0.0, 0.0, 0.25]
    # hits@3: ranks {1}, {1,2}, {2,3}, {4}, {1,2,3,4}
    assert m["hits@3"].tolist() == [1.0, 1.0, 1.0, 0.0, 0.75]
    assert m["hits@5"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    expected_mrr = [1.0, (1 + 1 / 2) / 2, (1 / 2 + 1 / 3) / 2, 1 / 4, (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4]
    assert np.allclose(m["mrr"], expected_mrr)


def test_pessimistic_metrics_put_gold_below_ties():
    m = instance_metrics(np.array([0, 0, 1]), np.array([0, 1, 2]), "pessimistic")
    assert m["acc@1"].tolist() == [1.0, 0.0, 0.0]
    assert m["hits@3"].tolist() == [1.0, 1.0, 0.0]  # ranks 1, 2, 4
    assert np.allclose(m["mrr"], [1.0, 1 / 2, 1 / 4])


def test_unknown_tie_rule_is_refused():
    with pytest.raises(ValueError, match="tie rule"):
        instance_metrics(np.array([0]), np.array([0]), "optimistic")


def test_chance_metrics_by_hand():
    c = chance_metrics(np.array([4, 1, 12]))
    assert np.allclose(c["acc@1"], [1 / 4, 1.0, 1 / 12])
    assert np.allclose(c["hits@3"], [3 / 4, 1.0, 3 / 12])
    assert np.allclose(c["hits@10"], [1.0, 1.0, 10 / 12])
    assert np.allclose(c["mrr"], [(1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, 1.0, sum(1 / r for r in range(1, 13)) / 12])


def test_constant_scores_give_exactly_chance():
    for k in (1, 2, 4, 7, 30):
        scores = np.zeros((1, k))
        greater, ties, size = rank_counts(scores, np.ones((1, k), bool), np.array([k - 1]))
        got, chance = instance_metrics(greater, ties), chance_metrics(size)
        for metric in METRICS:
            assert math.isclose(got[metric][0], chance[metric][0]), (k, metric)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_is_seeded_and_sane():
    rng = np.random.default_rng(3)
    values = rng.random((200, 2))
    a = bootstrap_ci(values, n_boot=300, seed=7)
    b = bootstrap_ci(values, n_boot=300, seed=7)
    c = bootstrap_ci(values, n_boot=300, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    means = values.mean(axis=0)
    assert np.all(a[:, 0] < means) and np.all(means < a[:, 1])
    # the interval of a mean of 200 uniforms is about +-1.96 * 0.289 / sqrt(200) = +-0.04
    assert np.all((a[:, 1] - a[:, 0]) > 0.05) and np.all((a[:, 1] - a[:, 0]) < 0.12)


def test_bootstrap_of_constant_values_is_a_point():
    assert bootstrap_ci(np.ones((10, 1)), n_boot=50).tolist() == [[1.0, 1.0]]


# ---------------------------------------------------------------- whole evaluations


def _entity(qid: str, picture: bool = True) -> Entity:
    image = ImageRef(f"{qid}.png", "", f"images/{qid}.png") if picture else None
    return Entity(qid, f"Name {qid}", f"description of {qid}", image)


def _instance(i: int, gold: str, candidates: list[str], topic: str, picture: bool = True, split: str = "test") -> Instance:
    ents = tuple(_entity(q) for q in candidates)
    image = ImageRef(f"m{i}.png", "", f"images/m{i}.png") if picture else None
    return Instance(gold, f"Name {gold}", "", f"sentence {i}", image, ents, topic=topic, split=split, instance_id=f"h{i}")


def _hand_dataset(tmp_path) -> Dataset:
    instances = [
        _instance(0, "Q1", ["Q1", "Q2", "Q3"], "movies"),
        _instance(1, "Q5", ["Q4", "Q5"], "movies"),
        _instance(2, "Q6", ["Q6", "Q7", "Q8", "Q9"], "nature", picture=False),
        _instance(3, "Q2", ["Q1", "Q2", "Q3"], "nature", split="train"),
    ]
    return Dataset(instances=instances, root=tmp_path, files=[], checksum="hand")


class TableScorer:
    """Scores from a hand-written table: {(instance position, entity id): score}, default 0."""

    name = "table"

    def __init__(self, table: dict[tuple[int, str], float], tasks=TASKS) -> None:
        self.table = table
        self.tasks = tuple(tasks)

    def supported_tasks(self):
        return self.tasks

    def prepare(self, dataset, instances, entities: EntityTable) -> None:
        self.entities = entities

    def pair_scores(self, task, rows, entity_idx):
        qids = np.vectorize(lambda v: self.entities.variants[v].qid)(entity_idx)
        return np.array([[self.table.get((int(r), q), 0.0) for q in row] for r, row in zip(rows, qids)])

    def all_scores(self, task, rows):
        qids = [self.entities.variants[v].qid for v in self.entities.kb_rows]
        return np.array([[self.table.get((int(r), q), 0.0) for q in qids] for r in rows])


def test_whole_evaluation_matches_hand_computation(tmp_path):
    ds = _hand_dataset(tmp_path)
    # test split = instances 0, 1, 2 (positions 0, 1, 2 in the evaluated list)
    scorer = TableScorer({(0, "Q1"): 0.9, (0, "Q2"): 0.1, (1, "Q4"): 0.7, (1, "Q5"): 0.2, (2, "Q6"): 0.4, (2, "Q8"): 0.4}, tasks=[TASKS[0]])
    result = evaluate(scorer, ds, split="test", n_bootstrap=100)
    overall = result.get("T-T")
    # ranks: instance 0 -> 1; instance 1 -> 2 (of 2); instance 2 -> tie of two at the top: {1, 2}
    assert overall.n == 3
    assert overall.metrics["acc@1"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert overall.metrics["hits@3"] == pytest.approx(1.0)
    assert overall.metrics["mrr"] == pytest.approx((1 + 0.5 + 0.75) / 3)
    assert overall.chance["acc@1"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 4) / 3)
    assert (overall.candidates_min, overall.candidates_max) == (2, 4)
    assert overall.candidates_mean == pytest.approx(3.0)
    movies, nature = result.get("T-T", "movies"), result.get("T-T", "nature")
    assert (movies.n, nature.n) == (2, 1)
    assert movies.metrics["acc@1"] == pytest.approx(0.5)
    assert nature.metrics["mrr"] == pytest.approx(0.75)
    assert result.unsupported_tasks == [t for t in TASK_NAMES if t != "T-T"]


def test_task_membership_follows_instance_tasks(tmp_path):
    ds = _hand_dataset(tmp_path)
    result = evaluate(TableScorer({}), ds, split="test", n_bootstrap=10)
    # instance 2 has no mention picture: it is in T-* tasks only
    assert result.get("T-T").n == 3 and result.get("I-T").n == 2 and result.get("TI-TI").n == 2
    expected = {t.name: sum(t in inst.tasks() for inst in select_split(ds.instances, "test")) for t in TASKS}
    assert {g.task: g.n for g in result.groups if g.topic == "all"} == expected


def test_full_kb_ranks_against_every_entity_of_the_dataset(tmp_path):
    ds = _hand_dataset(tmp_path)
    # the KB holds Q1..Q9 (the train instance's entities too); the gold of instance 0 is beaten by Q9 only
    scorer = TableScorer({(0, "Q1"): 0.5, (0, "Q9"): 0.8, (0, "Q2"): 0.5}, tasks=[TASKS[0]])
    result = evaluate(scorer, ds, split="test", full_kb=True, n_bootstrap=10)
    kb = result.get("T-T", mode="full-kb")
    assert kb.candidates_max == 9
    # instance 0: 1 above, 1 tied -> ranks {2, 3}; instances 1, 2: all 9 tie -> chance
    per_instance = [(0.0, (1 / 2 + 1 / 3) / 2), (1 / 9, sum(1 / r for r in range(1, 10)) / 9), (1 / 9, sum(1 / r for r in range(1, 10)) / 9)]
    assert kb.metrics["acc@1"] == pytest.approx(sum(a for a, _ in per_instance) / 3)
    assert kb.metrics["mrr"] == pytest.approx(sum(m for _, m in per_instance) / 3)
    assert kb.chance["acc@1"] == pytest.approx(1 / 9)


class OracleScorer:
    """Gives the gold entity 1 and every other entity 0 (or the reverse when `inverse`)."""

    def __init__(self, inverse: bool = False) -> None:
        self.name = "anti-oracle" if inverse else "oracle"
        self.inverse = inverse

    def supported_tasks(self):
        return TASKS

    def prepare(self, dataset, instances, entities: EntityTable) -> None:
        self.gold_qid = np.array([inst.qid for inst in instances])
        self.qids = np.array([v.qid for v in entities.variants])
        self.kb_qids = self.qids[entities.kb_rows]

    def _score(self, hit: np.ndarray) -> np.ndarray:
        return (~hit if self.inverse else hit).astype(float)

    def pair_scores(self, task, rows, entity_idx):
        return self._score(self.qids[entity_idx] == self.gold_qid[rows][:, None])

    def all_scores(self, task, rows):
        return self._score(self.kb_qids[None, :] == self.gold_qid[rows][:, None])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return load_dataset(write_synthetic_dataset(tmp_path_factory.mktemp("syn") / "d", n=45, image_every=2))


def test_oracle_gets_acc_1_on_all_nine_tasks(synthetic):
    result = evaluate(OracleScorer(), synthetic, split="test", full_kb=True, n_bootstrap=50)
    for mode in ("candidates", "full-kb"):
        for task in TASK_NAMES:
            group = result.get(task, mode=mode)
            assert group is not None and group.n > 0, (task, mode)
            assert group.metrics["acc@1"] == 1.0 and group.metrics["mrr"] == 1.0, (task, mode)
            assert group.ci["acc@1"] == [1.0, 1.0]


def test_anti_oracle_ranks_gold_last(synthetic):
    result = evaluate(OracleScorer(inverse=True), synthetic, split="test", n_bootstrap=20)
    for task in TASK_NAMES:
        group = result.get(task)
        assert group.metrics["acc@1"] == 0.0
        assert group.metrics["mrr"] == pytest.approx(1 / 4)  # four candidates each


def test_chance_scorer_equals_chance_level_everywhere(synthetic):
    result = evaluate(ChanceScorer(), synthetic, split="all", full_kb=True, n_bootstrap=20)
    assert len(result.groups) == 2 * 9 * 6  # 2 modes x 9 tasks x (all + 5 topics)
    for group in result.groups:
        for metric in METRICS:
            assert group.metrics[metric] == pytest.approx(group.chance[metric]), (group.task, group.topic, group.mode, metric)


def test_results_serialise_to_one_json_object(synthetic):
    result = evaluate(OracleScorer(), synthetic, split="test", n_bootstrap=20)
    body = json.loads(json.dumps(result.to_json()))
    assert set(body["results"]["candidates"]) == set(TASK_NAMES)
    entry = body["results"]["candidates"]["TI-I"]
    assert entry["overall"]["metrics"]["acc@1"] == 1.0
    assert set(entry["topics"]) <= {"movies", "nature", "geography", "science", "people"}
    rows = result.rows()
    assert {"acc@1", "acc@1_lo", "acc@1_hi", "chance_acc@1", "candidates_mean", "n"} <= set(rows[0])
    text = format_result(result)
    assert "TI-TI" in text and "Acc@1 per topic" in text


def test_unknown_split_is_an_error(synthetic):
    with pytest.raises(ValueError, match="splits present"):
        select_split(synthetic.instances, "dev")


def test_full_kb_chunks_give_the_same_answer(synthetic, monkeypatch):
    from m3el_lib.evaluation import metrics as evaluation

    whole = evaluate(ChanceScorer(), synthetic, split="all", full_kb=True, n_bootstrap=10)
    monkeypatch.setattr(evaluation, "KB_CHUNK", 4)
    chunked = evaluate(ChanceScorer(), synthetic, split="all", full_kb=True, n_bootstrap=10)
    oracle = evaluate(OracleScorer(), synthetic, split="all", full_kb=True, n_bootstrap=10)
    assert chunked.rows() == whole.rows()
    assert all(g.metrics["acc@1"] == 1.0 for g in oracle.groups if g.mode == "full-kb")


def test_mention_picture_kinds_are_scored_as_their_own_slices(synthetic):
    # Mark every third pictured mention as an augmented copy, as the construction flags them.
    from dataclasses import replace

    from m3el_lib.data.io import Dataset

    marked = [replace(inst, mention_image_kind="augmented") if inst.image is not None and n % 3 == 0 else inst
              for n, inst in enumerate(synthetic.instances)]
    dataset = Dataset(instances=marked, root=synthetic.root, files=synthetic.files, checksum=synthetic.checksum)
    result = evaluate(OracleScorer(inverse=True), dataset, split="all", n_bootstrap=20)
    assert result.rows() == evaluate(OracleScorer(inverse=True), synthetic, split="all", n_bootstrap=20).rows()
    with_picture = [t for t in TASK_NAMES if t.startswith("I") or t.startswith("TI")]
    assert {(g.task, g.mention_picture) for g in result.slices} == {(t, k) for t in with_picture for k in ("distinct", "augmented")}
    for task in with_picture:
        overall = result.get(task)
        assert sum(g.n for g in result.slices if g.task == task) == overall.n
        augmented = next(g for g in result.slices if g.task == task and g.mention_picture == "augmented")
        assert augmented.n == sum(inst.mention_image_kind == "augmented" and task in {t.name for t in inst.tasks()} for inst in marked)
    assert {row["mention_picture"] for row in result.slice_rows()} == {"distinct", "augmented"}
    assert len(json.loads(json.dumps(result.to_json()))["slices_by_mention_picture"]) == len(result.slices)
    assert "Acc@1 by mention picture" in format_result(result) and "augmented 0.000" in format_result(result)
