"""Evaluation pipelines: resolve the dataset, load the model, evaluate every task and write the
results with provenance. Called by `m3el evaluate`, the baselines chapter and the results chapter.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .. import config
from ..data.datasets import open_dataset
from ..data.provenance import write_provenance, write_result
from ..fsutil import atomic_write_csv, atomic_write_text
from ..models.loading import ModelUnavailable, load_model
from .baselines import ModelSpec, baseline_scorers
from .metrics import DEFAULT_BOOTSTRAP, EvaluationResult, default_split, evaluate
from .scoring import model_scorer
from ..training.config import TrainConfig
from ..training.experiments import run_experiment
from ..training.runs import RunDir
from ..training.suffix_encoder import evaluation_encoder

log = logging.getLogger(__name__)


def save_result(result: EvaluationResult, folder, stem: str, parameters: dict[str, Any], profile: str | None = None):
    """Write `<stem>.json` (nested), `<stem>.csv` (flat rows) and, when there are any, the rows by
    mention-picture kind in `<stem>_by_mention_picture.csv`, each with provenance; the paths."""
    folder = Path(folder)
    meta = {"parameters": parameters, "data_checksum": result.data_checksum, "profile": profile, "model": result.model}
    json_path = write_result(folder / f"{stem}.json", result.to_json(), **meta)
    csv_path = atomic_write_text(folder / f"{stem}.csv", pd.DataFrame(result.rows()).to_csv(index=False))
    write_provenance(csv_path, **meta)
    if not result.slices:
        return json_path, csv_path
    slices_path = atomic_write_text(folder / f"{stem}_by_mention_picture.csv", pd.DataFrame(result.slice_rows()).to_csv(index=False))
    write_provenance(slices_path, **meta)
    return json_path, csv_path, slices_path


def run_model_evaluation(
    model: str,
    data: str | None = None,
    pretrained: str | None = None,
    checkpoint: str | None = None,
    split: str | None = None,
    full_kb: bool = False,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 64,
    profile: str | None = None,
    save: bool = True,
    trained_with: TrainConfig | None = None,
):
    """Load a model and a dataset, evaluate on every task, optionally save: (result, written paths).

    `trained_with`: the config of the run that wrote `checkpoint`; when that run froze a prefix,
    only what it trained is run, on stored prefix outputs (`training.suffix_encoder`).

    Results go to `config.results_dir(profile)/evaluations/<result_stem(...)>.{json,csv}`: one file
    per model weights, dataset (folder name and content), split and scoring mode, so evaluating
    another dataset, or the same one with `full_kb`, never overwrites an earlier result.
    """
    dataset = open_dataset(data, profile)
    split = split or default_split(dataset.instances)
    lm = evaluation_encoder(load_model(model, pretrained=pretrained, checkpoint=checkpoint, device=device), trained_with)
    result = evaluate(model_scorer(lm, batch_size=batch_size), dataset, split=split, full_kb=full_kb, n_bootstrap=n_bootstrap, seed=seed)
    paths: tuple = ()
    if save:
        parameters = {
            "model": model, "pretrained": lm.pretrained, "checkpoint": str(checkpoint) if checkpoint else None,
            "dataset": str(dataset.root), "split": split, "full_kb": full_kb, "n_bootstrap": n_bootstrap,
            "seed": seed, "ties": result.ties, "weights_id": lm.weights_id,
        }
        stem = result_stem(model, lm.weights_id, dataset.root, dataset.checksum, split, full_kb)
        paths = save_result(result, config.results_dir(profile) / "evaluations", stem, parameters, profile)
    return result, paths


def result_stem(model: str, weights_id: str, dataset_root: Path | str, data_checksum: str, split: str, full_kb: bool) -> str:
    """`<model>-<weights id>-<dataset folder>-<data checksum>-<split>[-full-kb]`, safe as a file name:
    "m3el-mini-dual-4e51e6ef41fe-m3el-mini-d9eaf7a2-test"."""
    parts = [model, weights_id[:12], Path(dataset_root).name or "data", data_checksum[:8], split] + (["full-kb"] if full_kb else [])
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts))


@dataclass
class BaselineReport:
    results: list[EvaluationResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    csv_path: Path | None = None
    json_path: Path | None = None
    slices_path: Path | None = None  # baselines_by_mention_picture.csv

    def frame(self):
        return pd.DataFrame([row for result in self.results for row in result.rows()])

    def slice_frame(self):
        """Rows by mention-picture kind (distinct / augmented) for the tasks whose mention shows a picture."""
        return pd.DataFrame([row for result in self.results for row in result.slice_rows()])


def run_baselines(
    dataset,
    profile: str | None = None,
    split: str | None = "test",
    extra_models: Sequence[ModelSpec] = (),
    full_kb: bool = True,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    device: str = "cpu",
    out_dir: Path | None = None,
) -> BaselineReport:
    """Evaluate every baseline on `dataset`'s `split` and write the CSV/JSON table with provenance."""
    report = BaselineReport()
    for name, factory in baseline_scorers(profile, extra_models, device):
        try:
            scorer = factory()
        except ModelUnavailable as err:
            log.warning("baseline %s skipped: %s", name, err)
            report.skipped.append({"model": name, "reason": str(err)})
            continue
        report.results.append(evaluate(scorer, dataset, split=split, full_kb=full_kb, n_bootstrap=n_bootstrap, seed=seed))
    _write(report, dataset, profile, split, extra_models, full_kb, n_bootstrap, seed, out_dir)
    return report


def _write(report: BaselineReport, dataset, profile, split, extra_models, full_kb, n_bootstrap, seed, out_dir: Path | None) -> None:
    folder = out_dir or config.results_dir(profile) / "baselines"
    rows = [row for result in report.results for row in result.rows()]
    parameters = {
        "split": split,
        "full_kb": full_kb,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "extra_models": [vars(spec) for spec in extra_models],
        "dataset": str(dataset.root),
        "ties": "expected",
    }
    provenance = {"parameters": parameters, "data_checksum": dataset.checksum, "profile": profile, "model": "baselines"}
    report.csv_path = atomic_write_csv(folder / "baselines.csv", rows)
    write_provenance(report.csv_path, **provenance)
    body = {"results": [result.to_json() for result in report.results], "skipped": report.skipped}
    report.json_path = write_result(folder / "baselines.json", body, **provenance)
    slices = [row for result in report.results for row in result.slice_rows()]
    report.slices_path = atomic_write_csv(folder / "baselines_by_mention_picture.csv", slices)
    write_provenance(report.slices_path, **provenance)


def evaluate_run(label: str, best_path: Path, model: str, profile: str | None = None, split: str = "test",
                 n_bootstrap: int = 1000, data: str | None = None, trained_with: TrainConfig | None = None):
    """Evaluate an exported checkpoint with the project's evaluator; rows labelled `label`."""
    result, written = run_model_evaluation(model, data=data, checkpoint=str(best_path), split=split,
                                           n_bootstrap=n_bootstrap, profile=profile, save=True, trained_with=trained_with)
    frame = pd.DataFrame(result.rows())
    frame["model"] = label
    return result, frame, written


def baselines_frame(dataset, profile: str | None = None, split: str = "test", n_bootstrap: int = DEFAULT_BOOTSTRAP) -> pd.DataFrame:
    """The baseline rows the baselines chapter wrote, running the baselines first when missing."""
    path = config.results_dir(profile) / "baselines" / "baselines.csv"
    if not path.is_file():
        run_baselines(dataset, profile=profile, split=split, n_bootstrap=n_bootstrap)
    return pd.read_csv(path)


@dataclass
class EvaluatedRun:
    """A training run's exported checkpoint, evaluated by the project's one evaluator."""

    label: str
    run: RunDir
    model: str
    result: EvaluationResult
    frame: pd.DataFrame
    written: tuple


def evaluate_runs(runs: dict[str, TrainConfig], profile: str | None = None, split: str = "test",
                  n_bootstrap: int = DEFAULT_BOOTSTRAP, train_if_missing: bool = True) -> dict[str, EvaluatedRun]:
    """Evaluate each run's `best.pt` (rows labelled by the run's label); a run that has not
    finished is trained first when `train_if_missing`, else FileNotFoundError."""
    evaluated = {}
    for label, run_config in runs.items():
        run = RunDir.for_config(run_config)
        if not run.finished_for(run_config):
            if not train_if_missing:
                raise FileNotFoundError(f"{label}: no finished run in {run.path}; execute notebook 05 (or m3el train --config ...)")
            run_experiment(label, run_config, retrain=True)
        model_name = config.model_choice(profile, run_config.model)[0]
        result, frame, written = evaluate_run(label, run.best, model_name, profile, split, n_bootstrap, trained_with=run_config)
        evaluated[label] = EvaluatedRun(label, run, model_name, result, frame, written)
    return evaluated
