"""Tests of the pieces notebooks 04 and 05 stand on: reusing runs, the full-run estimate, the
result tables (hand-made rows), the seen/unseen split, predictions and the model card."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from m3el_lib.data.io import load_dataset
from m3el_lib.data.synthetic import write_synthetic_dataset
from m3el_lib.evaluation import subsets
from m3el_lib import paper
from m3el_lib.reports import training as report
from m3el_lib.training.config import TrainConfig
from m3el_lib.training.experiments import full_run_estimate, measured_full_run_needs, run_experiment
from m3el_lib.training.runs import RunDir

TINY = "m3el-tiny-random"


def _rows(model: str, values: dict[str, tuple[float, float, float]]) -> list[dict]:
    return [{"model": model, "task": task, "topic": "all", "mode": "candidates", "n": 100, "acc@1": v,
             "acc@1_lo": lo, "acc@1_hi": hi, "chance_acc@1": 0.25} for task, (v, lo, hi) in values.items()]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        _rows("ours", {"T-T": (0.9, 0.85, 0.95), "T-I": (0.7, 0.6, 0.8)})
        + _rows("start", {"T-T": (0.88, 0.83, 0.93), "T-I": (0.25, 0.2, 0.3)})
        + _rows("text-only", {"T-T": (0.95, 0.9, 0.99)})
    )


def test_improvement_table_gives_points_and_interval_overlap(frame):
    table = report.improvement_table(frame, "ours", ["start"]).set_index("task")
    assert table.at["T-I", "gain (points)"] == pytest.approx(45.0)
    assert not table.at["T-I", "intervals overlap"] and table.at["T-T", "intervals overlap"]


def test_best_baseline_gain_picks_the_strongest_model_per_task(frame):
    table = report.best_baseline_gain(frame, "ours", ["start", "text-only"]).set_index("task")
    assert table.at["T-T", "best baseline"] == "text-only" and table.at["T-T", "gain (points)"] == pytest.approx(-5.0)
    assert table.at["T-I", "best baseline"] == "start"


def test_headline_table_marks_tasks_a_model_cannot_do(frame):
    table = report.headline_table(frame, ["ours", "text-only"])
    assert table.at["T-I", "text-only"] == "-" and table.at["T-I", "ours"] == "70.0 [60.0, 80.0]"
    assert list(table.index) == ["T-T", "T-I"] and table.at["T-T", "chance"] == "25.0"


def test_paper_figures_are_the_papers():
    assert paper.PAPER_EXISTING_MODELS_ACC == (0.494, 0.758)
    assert paper.PAPER_CLIP_ND_GAIN_POINTS == (9.3, 25.0)
    assert paper.RELEASE_INSTANCES == 79_625


def test_full_run_estimate_arithmetic():
    costs = {"parameters": 1e8, "image_train_flops": 2e10, "text_train_flops": 1e10, "image_activation_bytes_fp32": 1e8,
             "text_activation_bytes_fp32": 5e7, "image_seconds_cpu": 0.2, "text_seconds_cpu": 0.1}
    estimate = full_run_estimate(costs, {"pictures": 2.0, "texts": 4.0}, epochs=10, batch=100, train_share=0.5)
    per_example = 2 * 2e10 + 4 * 1e10
    assert estimate["train FLOPs per example (measured)"] == per_example
    total = per_example * 79_625 * 0.5 * 10
    assert estimate["GPU hours (estimate)"]["A100 (bf16 dense)"] == pytest.approx(total / (312e12 * 0.35) / 3600)
    # 16 bytes per parameter (weights, grads, AdamW moments) + activations of 100 examples
    assert estimate["GPU memory GB, fp32 activations (estimate)"] == pytest.approx(1.6 + 100 * (2e8 + 2e8) / 1e9, abs=0.05)


def test_full_run_needs_come_from_recorded_gpu_figures_else_cpu_ones_marked_as_extrapolations(tmp_path):
    assert measured_full_run_needs(tmp_path) == []
    stage = {"seconds": 10.0, "peak_gib": 1.5}
    cpu = {"device": "cpu (2 cores)", "eval_model": TINY, "step_model": "ViT-B-32", "step_batch": 4, "scales": {
        "0.1": {"stats": stage, "evaluate full-KB (warm cache)": stage, "sizes": {"instances": 7962, "entities": 1000},
                "pipeline": {"step_seconds_per_example": 2.0}},
        "0.3": {"stats": {"seconds": 30.0, "peak_gib": 2.0}, "evaluate full-KB (warm cache)": stage,
                "sizes": {"instances": 23888, "entities": 3000}, "pipeline": {}}}}
    (tmp_path / "full_scale-cpu.json").write_text(json.dumps(cpu))
    rows = {r["quantity"]: r for r in measured_full_run_needs(tmp_path, epochs=10, train_share=0.5)}
    assert all(r["basis"].startswith("CPU extrapolation") for r in rows.values())
    training = next(r for q, r in rows.items() if q.startswith("training"))
    assert training["value"] == pytest.approx(2.0 * 79_625 * 0.5 * 10 / 86400, abs=0.01) and training["unit"] == "CPU days"
    # a fixed cost plus a cost per instance, through the two scales: 10 s at 7,962, 30 s at 23,888
    per_instance = 20.0 / (23888 - 7962)
    assert rows["stats on 79,625 instances"]["value"] == pytest.approx((30.0 + per_instance * (79_625 - 23888)) / 60, abs=0.01)
    # full-KB: the same time at both scales gives no cost per pair: the cost per pair of the largest, to the square
    full_kb = next(r for q, r in rows.items() if q.startswith("evaluate full-KB"))
    assert full_kb["value"] == pytest.approx(10.0 * (79_625 / 23888) ** 2 / 60, abs=0.01)
    assert rows["peak memory of any stage at 23,888 instances (measured)"]["value"] == 2.0
    # a run at the release's size is a measurement, and says so
    cpu["scales"]["1"] = {"stats": {"seconds": 95.0, "peak_gib": 3.0}, "evaluate full-KB (warm cache)": stage,
                          "sizes": {"instances": 79625, "entities": 10000}, "pipeline": {}}
    (tmp_path / "full_scale-cpu.json").write_text(json.dumps(cpu))
    rows = {r["quantity"]: r for r in measured_full_run_needs(tmp_path, epochs=10, train_share=0.5)}
    assert rows["stats on 79,625 instances"]["value"] == pytest.approx(95.0 / 60, abs=0.01)
    assert rows["stats on 79,625 instances"]["basis"].startswith("measured on this CPU at the release's size")
    assert next(r for q, r in rows.items() if q.startswith("training"))["basis"].startswith("CPU extrapolation")
    gpu = {"device": "NVIDIA H200", "smoke": False, "parameters": {"model": "ViT-B-32"}, "pipeline_over_step": 5.0,
           "step": {"ratio": 1.05}, "training": {"examples_per_step": 128, "median_step_s": 0.5, "data_wait_share": 0.01,
                                                 "peak_allocated_gib": 30.0},
           "evaluation": {"instances_per_s": 100.0, "instances": 1000, "ranking_seconds": 2.0}}
    (tmp_path / "gpu_check-NVIDIA-H200.json").write_text(json.dumps(gpu))
    (tmp_path / "gpu_check-smoke.json").write_text(json.dumps({**gpu, "smoke": True, "device": "cpu (2 cores)"}))
    rows = {r["quantity"]: r for r in measured_full_run_needs(tmp_path, epochs=10, train_share=0.5)}
    assert all("measured on NVIDIA H200" in r["basis"] for r in rows.values())
    hours = next(r for q, r in rows.items() if "epochs" in q)
    assert hours["value"] == pytest.approx((79_625 * 0.5 // 128) * 10 * 0.5 / 3600, abs=0.01)
    assert not any("first step left out" in q for q in rows)  # a check from before that figure: no row for it
    gpu["training"].update(data_wait_share=0.3, data_wait_share_within_epoch=0.002, epochs=3)
    (tmp_path / "gpu_check-NVIDIA-H200.json").write_text(json.dumps(gpu))
    rows = {r["quantity"]: r for r in measured_full_run_needs(tmp_path, epochs=10, train_share=0.5)}
    within = next(r for q, r in rows.items() if "first step left out (3 loader starts)" in q)
    assert within["value"] == pytest.approx(0.2) and rows["training: share of the step waiting on data"]["value"] == pytest.approx(30.0)


def test_seen_in_training_splits_by_the_gold_entity(tmp_path):
    dataset = load_dataset(write_synthetic_dataset(tmp_path / "d", n=30, image_every=1))
    train_entities = {(c.qid, c.image.local_path) for i in dataset.split("train") for c in i.candidates}
    groups = subsets.seen_in_training(dataset, "test")
    for inst in groups["gold entity in the training candidates"]:
        assert (inst.gold.qid, inst.gold.image.local_path) in train_entities
    assert sum(len(v) for v in groups.values()) == len(dataset.split("test"))


def test_runs_are_reused_only_with_the_same_config_and_get_a_model_card(tmp_path):
    from m3el_lib.evaluation.metrics import evaluate
    from m3el_lib.models.loading import load_model
    from m3el_lib.evaluation.scoring import model_scorer

    data = write_synthetic_dataset(tmp_path / "d", n=30, image_every=1)
    config = TrainConfig(profile="sample", model=TINY, dataset=str(data), output_dir=str(tmp_path / "run"), epochs=1,
                         batch_size=4, trainable="all", precompute_frozen=False, progress=False, device="cpu")
    assert not RunDir.for_config(config).finished_for(config)
    first = run_experiment("tiny", config)
    assert first.wall_seconds is not None and RunDir.for_config(config).finished_for(config)
    assert RunDir.for_config(config.replace(progress=True)).finished_for(config.replace(progress=True))  # a result-neutral option
    assert not RunDir.for_config(config.replace(lr=0.5)).finished_for(config.replace(lr=0.5))
    again = run_experiment("tiny", config, retrain=False)
    assert again.wall_seconds is None and again.summary["wall_seconds_end_to_end"] == first.summary["wall_seconds_end_to_end"]
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "CLIP_ND" in card and TINY in card and "provenance" in card

    dataset = load_dataset(data)
    scorer = model_scorer(load_model(TINY, checkpoint=str(first.run.best)), persist_cache=False)
    preds = subsets.predictions(scorer, dataset, "I-I", "test")
    result = evaluate(scorer, dataset, split="test", n_bootstrap=0, per_topic=False)
    assert sum(p.correct for p in preds) / len(preds) == pytest.approx(result.get("I-I").metrics["acc@1"], abs=1e-9)

    from m3el_lib.reports.model_card import write_model_card

    rows = [{"task": "I-I", "n": 10, "acc@1": 0.5, "acc@1_lo": 0.2, "acc@1_hi": 0.8, "chance_acc@1": 0.25}]
    path = write_model_card(tmp_path / "run", first.summary, json.loads((tmp_path / "run" / "history.json").read_text()), rows)
    assert "| I-I | 10 | 50.0% | [20.0%, 80.0%] | 25.0% |" in path.read_text()


def test_gold_entities_named_in_an_imagenet_class_are_set_apart_on_the_sample():
    from m3el_lib.construction.sample import ensure_sample

    dataset = load_dataset(ensure_sample())
    groups = subsets.named_by_imagenet_class(dataset, "test")
    named = {inst.gold.name for inst in groups["gold named in an ImageNet class"]}
    unnamed = {inst.gold.name for inst in groups["gold named in no ImageNet class"]}
    assert {"Armadillo", "Abacus"} <= named and "Andorra" in unnamed and not named & unnamed
    assert sum(len(v) for v in groups.values()) == len(dataset.split("test"))


def test_gold_entities_a_pretraining_caption_names_are_set_apart_and_no_test_one_is():
    from m3el_lib.construction.sample import ensure_sample
    from m3el_lib.models.pretrain_corpus import load_corpus

    dataset = load_dataset(ensure_sample())
    groups = subsets.named_by_captions(dataset, ["flag: afghanistan", "A kangaroo.", "afghan hound"], ("train", "val"))
    named = {inst.gold.name for inst in groups["gold named in a pretraining caption"]}
    assert named == {"Afghanistan"}  # whole words: "afghan" names nothing, and "Kangaroo" is a test entity
    assert sum(len(v) for v in groups.values()) == len(dataset.split("train")) + len(dataset.split("val"))
    captions = [pair.caption for pair in load_corpus().pairs]
    assert subsets.named_by_captions(dataset, captions, ("test",))["gold named in a pretraining caption"] == []
    assert subsets.named_by_captions(dataset, captions)["gold named in a pretraining caption"]
