"""Baselines: TF-IDF by hand, the pretrained single-tower encoders, the table on disk, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from m3el_lib.evaluation import baselines
from m3el_lib.evaluation import pipeline
from m3el_lib.evaluation.baselines import ChanceScorer, EfficientNetEncoder, MiniLMEncoder, ModelSpec, TfidfScorer
from m3el_lib.evaluation.pipeline import run_baselines
from m3el_lib.reports.baseline_tables import mention_picture_table
from m3el_lib.cli import main
from m3el_lib.models.encoders import encode_images, encode_texts
from m3el_lib.evaluation.metrics import evaluate
from m3el_lib.data.io import Dataset, load_dataset
from m3el_lib.data.schema import Entity, Instance, task_by_name
from m3el_lib.evaluation.scoring import EntityTable
from m3el_lib.data.synthetic import write_synthetic_dataset


def _text_dataset(tmp_path) -> Dataset:
    def inst(i, gold, sentence, cands):
        ents = tuple(Entity(q, n, d) for q, n, d in cands)
        return Instance(gold, "", "", sentence, None, ents, topic="movies", split="test", instance_id=f"t{i}")

    instances = [
        inst(0, "Q1", "Mercury orbits the Sun closest", [("Q1", "Mercury", "planet closest to the Sun"), ("Q2", "Mercury", "Queen singer")]),
        inst(1, "Q2", "the Queen singer Mercury", [("Q1", "Mercury", "planet closest to the Sun"), ("Q2", "Mercury", "Queen singer")]),
        inst(2, "Q4", "unrelated words only", [("Q3", "Java", "island"), ("Q4", "Java", "language")]),
    ]
    return Dataset(instances=instances, root=tmp_path, files=[], checksum="text")


def test_tfidf_scores_are_cosines_of_tfidf_vectors(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    ds = _text_dataset(tmp_path)
    entities = EntityTable.from_instances(ds.instances)
    scorer = TfidfScorer()
    scorer.prepare(ds, ds.instances, entities)
    idx, _, _ = entities.candidate_matrix(ds.instances)
    got = scorer.pair_scores(task_by_name("T-T"), np.arange(3), idx)
    docs = ["Mercury: planet closest to the Sun", "Mercury: Queen singer", "Java: island", "Java: language"]
    vec = TfidfVectorizer(lowercase=True, strip_accents="unicode", sublinear_tf=True).fit(docs)
    q = vec.transform(["Mercury orbits the Sun closest"]).toarray()[0]
    e = vec.transform(docs[:2]).toarray()
    assert np.allclose(got[0], e @ q)
    result = evaluate(scorer, ds, split="test", n_bootstrap=20)
    tt = result.get("T-T")
    # instance 0 and 1 found; instance 2 shares no word with either Java: a tie, 1/2
    assert tt.metrics["acc@1"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert "T-T" not in result.unsupported_tasks and len(result.unsupported_tasks) == 8


def test_minilm_encoder_reproduces_sentence_transformers():
    # Reference: sentence-transformers 6.2.0, SentenceTransformer(<the packaged folder>).encode(...,
    # normalize_embeddings=True), first six dimensions.
    encoder = MiniLMEncoder()
    embedding = encode_texts(encoder, ["Mercury is the closest planet to the Sun."])[0]
    assert np.allclose(embedding[:6].numpy(), [0.103432, 0.094642, -0.010781, 0.026229, 0.058938, 0.008243], atol=1e-5)
    close, far = encode_texts(encoder, ["A planet near the Sun.", "A rock band from London."])
    assert float(embedding @ close) > float(embedding @ far)


def test_efficientnet_features_match_the_sample_models_image_trunk(tmp_path):
    import torch
    from PIL import Image

    from m3el_lib.models.loading import SAMPLE_MODEL, load_model

    Image.new("RGB", (50, 40), (30, 160, 60)).save(tmp_path / "g.png")
    encoder = EfficientNetEncoder()
    features, missing = encode_images(encoder, [tmp_path / "g.png"])
    assert features.shape == (1, 1280) and not missing.any()
    sample = load_model(SAMPLE_MODEL)
    pixels = sample.preprocess(Image.open(tmp_path / "g.png").convert("RGB"))[None]
    with torch.no_grad():
        trunk = torch.nn.functional.normalize(sample.model.visual.trunk(pixels), dim=-1)
    assert torch.allclose(features, trunk, atol=1e-5)


def test_chance_baseline_supports_every_task():
    assert len(ChanceScorer().supported_tasks()) == 9


@pytest.fixture()
def synthetic(tmp_path):
    return load_dataset(write_synthetic_dataset(tmp_path / "syn", n=24, image_every=2))


def test_run_baselines_writes_csv_and_json_with_provenance(synthetic, monkeypatch, tmp_path):
    # Keep it fast: chance, TF-IDF and the tiny model stand in for the full list (same code path).
    def small(profile, extra_models=(), device="cpu"):
        specs = [ModelSpec("m3el-tiny-random"), *extra_models]
        rows = [(baselines.CHANCE, ChanceScorer), (baselines.TFIDF, TfidfScorer)]
        return rows + [(s.name, lambda s=s: baselines.model_scorer(baselines.load_model(s.name, s.pretrained, s.checkpoint))) for s in specs]

    monkeypatch.setattr(pipeline, "baseline_scorers", small)
    monkeypatch.setattr("m3el_lib.models.loading._registered_openai_copy", lambda name: None)
    report = run_baselines(synthetic, "sample", extra_models=[ModelSpec("ViT-B-32", "openai")], n_bootstrap=20)
    assert report.csv_path.exists() and report.json_path.exists()
    assert report.csv_path.parent.name == "baselines" and report.csv_path.parent.parent.name == "sample"
    for path in (report.csv_path, report.json_path):
        prov = json.loads(path.with_name(path.name + ".provenance.json").read_text())
        assert prov["data_checksum"] == synthetic.checksum and prov["parameters"]["split"] == "test"
    frame = report.frame()
    assert set(frame["model"]) == {baselines.CHANCE, baselines.TFIDF, "m3el-tiny-random (random)"}
    body = json.loads(report.json_path.read_text())
    assert body["skipped"][0]["model"] == "ViT-B-32" and "clip-vit-b-32-openai" in body["skipped"][0]["reason"]
    import pandas as pd

    assert len(pd.read_csv(report.csv_path)) == len(frame)
    # The synthetic mention pictures are all distinct files: one slice per task with a mention picture.
    slices = pd.read_csv(report.slices_path)
    assert len(slices) == len(report.slice_frame()) and set(slices["mention_picture"]) == {"distinct"}
    assert json.loads(report.slices_path.with_name(report.slices_path.name + ".provenance.json").read_text())["data_checksum"] == synthetic.checksum
    table = mention_picture_table(report.slice_frame())
    assert list(table.index) == ["I-T", "I-I", "I-TI", "TI-T", "TI-I", "TI-TI"]
    assert (table[("n", "m3el-tiny-random (random)", "distinct")] == frame[(frame["model"] == "m3el-tiny-random (random)")
            & (frame["topic"] == "all") & (frame["mode"] == "candidates")].set_index("task")["n"].reindex(table.index)).all()


def test_cli_evaluate_prints_one_json_object(synthetic, capsys):
    code = main(["evaluate", "--model", "m3el-tiny-random", "--data", str(synthetic.root), "--json", "--bootstrap", "20", "--full-kb"])
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    assert body["split"] == "test" and set(body["results"]) == {"candidates", "full-kb"}
    tt = body["results"]["candidates"]["T-T"]
    assert 0.0 <= tt["overall"]["metrics"]["acc@1"] <= 1.0 and tt["topics"]


def test_cli_evaluate_reports_bad_input(synthetic, tmp_path, capsys):
    assert main(["evaluate", "--model", "m3el-tiny-random", "--data", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert main(["evaluate", "--model", "no-such-model", "--data", str(synthetic.root)]) == 1
    assert "unknown model" in capsys.readouterr().err
    assert main(["evaluate", "--model", "m3el-tiny-random", "--data", str(synthetic.root), "--split", "dev"]) == 1
    assert "splits present" in capsys.readouterr().err


def test_profile_models_are_the_sample_dual_encoder_and_zero_shot_clip():
    assert baselines.profile_model_spec("sample") == ModelSpec("m3el-mini-dual", "sample-clip")
    assert baselines.profile_model_spec("full") == ModelSpec("ViT-B-32", "openai")
    names = [name for name, _ in baselines.baseline_scorers("full", [ModelSpec("ViT-B-16", "openai")])]
    assert names == [baselines.CHANCE, baselines.TFIDF, baselines.MINILM, baselines.EFFICIENTNET, "ViT-B-32", "ViT-B-16"]


def test_cli_evaluate_keeps_a_result_per_dataset_and_mode(tmp_path, capsys):
    """Two datasets in folders of the same name, at the same split, and the same one with the full-KB
    mode: three result files, none overwriting another (each file's provenance names its data)."""
    first = load_dataset(write_synthetic_dataset(tmp_path / "a" / "data", n=12, seed=0))
    second = load_dataset(write_synthetic_dataset(tmp_path / "b" / "data", n=12, seed=1))
    assert first.checksum != second.checksum
    written = []
    for dataset, extra in ((first, []), (second, []), (first, ["--full-kb"])):
        assert main(["evaluate", "--model", "m3el-tiny-random", "--data", str(dataset.root), "--bootstrap", "10", *extra]) == 0
        written.append(next(Path(line.removeprefix("wrote ")) for line in capsys.readouterr().err.splitlines()
                            if line.startswith("wrote ") and line.endswith(".json")))
    assert len(set(written)) == 3 and all(path.is_file() for path in written)
    for path, dataset in zip(written, (first, second, first)):
        assert f"-data-{dataset.checksum[:8]}-" in path.name
        provenance = json.loads(path.with_name(path.name + ".provenance.json").read_text())
        assert provenance["data_checksum"] == dataset.checksum
    assert written[2].name.endswith("-full-kb.json") and "full-kb" in json.loads(written[2].read_text())["results"]
