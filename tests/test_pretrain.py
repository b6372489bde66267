"""`m3el pretrain` on a small slice of the committed corpus: the files it writes, determinism (the
same weights from the same corpus and seed, features computed afresh or read from the cache), and
the sample model loading the result."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from m3el_lib.cli import main
from m3el_lib.models.loading import SAMPLE_CLIP_TAG, SAMPLE_MODEL, ModelUnavailable, load_model, state_dict_hash, weights_hash
from m3el_lib.models.pretrain import PretrainConfig, default_weights_path, pretrain

SLICE = dict(limit=80, epochs=2, batch_size=32, warmup_steps=1)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`m3el pretrain` on the first 80 pairs, from a cold feature cache."""
    out = tmp_path_factory.mktemp("pretrain") / "run"
    # The module-scoped run happens before the per-test M3EL_HOME exists: give it its own.
    import os

    home = tmp_path_factory.mktemp("home")
    before = os.environ.get("M3EL_HOME")
    os.environ["M3EL_HOME"] = str(home)
    try:
        code = main(["pretrain", "--out", str(out), "--limit", "80", "--epochs", "2", "--batch-size", "32", "--warmup-steps", "1"])
    finally:
        os.environ.pop("M3EL_HOME") if before is None else os.environ.__setitem__("M3EL_HOME", before)
    assert code == 0
    return out, home


def test_pretrain_writes_weights_corpus_history_and_provenance(cli_run):
    out, _ = cli_run
    lines = [json.loads(line) for line in (out / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 80
    assert all(len(r["sha256"]) == 64 and r["caption"] and r["source"] for r in lines)
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and all(row["loss"] > 0 for row in history)
    summary = json.loads((out / "pretrain.json").read_text())
    assert summary["pairs"] == 80 and summary["config"]["limit"] == 80 and not summary["features_from_cache"]
    for name in ("model.safetensors", "corpus.jsonl", "pretrain.json"):
        provenance = json.loads((out / f"{name}.provenance.json").read_text())
        assert provenance["data_checksum"] == summary["corpus_checksum"]


def test_only_the_projections_and_temperature_moved(cli_run):
    out, _ = cli_run
    trained = load_file(out / "model.safetensors")
    start = load_model(SAMPLE_MODEL).model.state_dict()
    moved = sorted(k for k in start if not (trained[k] == start[k]).all())
    assert moved and all(k.startswith(("visual.head", "text.proj", "logit_scale")) for k in moved), moved


def test_same_corpus_and_seed_give_the_same_weights_cached_or_not(cli_run, monkeypatch):
    out, home = cli_run
    monkeypatch.setenv("M3EL_HOME", str(home))  # the CLI run's cache: features now come from disk
    again = pretrain(out.parent / "again", PretrainConfig(**SLICE))
    assert again.summary["features_from_cache"]
    first = state_dict_hash(load_file(out / "model.safetensors"))
    assert state_dict_hash(load_file(again.weights_path)) == first == again.summary["weights_id"]
    fresh = pretrain(out.parent / "fresh", PretrainConfig(**SLICE, cache_features=False))
    assert state_dict_hash(load_file(fresh.weights_path)) == first
    other_seed = pretrain(out.parent / "seed1", PretrainConfig(**SLICE, seed=1))
    assert state_dict_hash(load_file(other_seed.weights_path)) != first
    assert other_seed.summary["features_from_cache"]  # its heads start elsewhere; the locked towers' features are the same


def test_the_sample_model_loads_the_pretrained_weights(cli_run, monkeypatch):
    out, _ = cli_run
    with pytest.raises(ModelUnavailable, match="m3el pretrain"):
        load_model(SAMPLE_MODEL, pretrained=SAMPLE_CLIP_TAG)
    target = default_weights_path()
    target.parent.mkdir(parents=True)
    target.write_bytes((out / "model.safetensors").read_bytes())
    loaded = load_model(SAMPLE_MODEL, pretrained=SAMPLE_CLIP_TAG)
    assert loaded.pretrained == SAMPLE_CLIP_TAG
    assert loaded.weights_id == weights_hash(load_model(SAMPLE_MODEL, checkpoint=out / "model.safetensors").model)


def test_a_bad_corpus_is_one_line_and_a_nonzero_exit(tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path / "o"), "--corpus", str(tmp_path / "nothing")]) == 2
    assert "build_pretrain_corpus" in capsys.readouterr().err
