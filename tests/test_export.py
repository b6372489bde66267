"""`m3el export`: M³EL-mini to WebDataset shards, Parquet and a Hugging Face dataset, and back.

Each format is read back with the packages its users read it with (`webdataset`, `pyarrow`,
`datasets`, and open_clip's own training data pipeline) and must give the same release records
and the same picture bytes as the dataset it came from.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from m3el_lib.data.export import FORMATS, export_dataset, read_export
from m3el_lib.data.io import instance_to_record, load_dataset


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    from m3el_lib.construction.sample import build_sample

    folder = tmp_path_factory.mktemp("mini") / "m3el-mini"
    build_sample(folder)
    return folder


@pytest.fixture(scope="module")
def exports(mini, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exports")
    return {fmt: export_dataset(mini, out / fmt, fmt, shard_size=400).out_dir for fmt in FORMATS}


def local_paths(dataset) -> set[str]:
    return {ref.local_path for i in dataset.instances for ref in [i.image, *(c.image for c in i.candidates)]
            if ref is not None and ref.local_path}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_to_the_same_records_and_picture_bytes(mini, exports, fmt):
    dataset = load_dataset(mini)
    expected = {i.instance_id: instance_to_record(i) for i in dataset.instances}
    back = read_export(exports[fmt])
    assert len(back) == len(dataset.instances) == len(expected)
    assert {r["instance_id"]: r for r, _ in back} == expected
    pictures: dict[str, bytes] = {}
    for record, found in back:
        pictures.update(found)
    assert set(pictures) == local_paths(dataset)  # every picture the records name, none more
    assert all(pictures[path] == (mini / path).read_bytes() for path in pictures)


def test_webdataset_shards_have_the_chosen_size_and_open_clips_conventions(mini, exports):
    import webdataset as wds

    export = json.loads((exports["webdataset"] / "export.json").read_text())
    dataset = load_dataset(mini)
    sentences = {i.instance_id: i.sentence for i in dataset.instances}
    for split, info in export["splits"].items():
        sizes = []
        for name in info["files"]:
            samples = list(wds.WebDataset(str(exports["webdataset"] / name), shardshuffle=False).decode("pil"))
            sizes.append(len(samples))
            for sample in samples:
                meta = sample["json"]
                assert sample["txt"] == meta["caption"] == sentences[meta["record"]["instance_id"]]
                if "jpg" in sample:
                    assert isinstance(sample["jpg"], Image.Image) and meta["pictures"]["jpg"]["licence"]
        assert max(sizes) <= 400 and sum(sizes) == info["instances"] == len(dataset.split(split))
        assert all(size == 400 for size in sizes[:-1])


def test_open_clip_train_reads_the_shards(exports):
    open_clip = pytest.importorskip("open_clip")
    data = pytest.importorskip("open_clip_train.data")

    export = json.loads((exports["webdataset"] / "export.json").read_text())
    train, val = export["splits"]["train"], export["splits"]["val"]
    args = argparse.Namespace(
        train_data=str(exports["webdataset"] / train["pattern"]), train_num_samples=train["with_mention_picture"],
        val_data=str(exports["webdataset"] / val["pattern"]), val_num_samples=val["with_mention_picture"],
        dataset_resampled=False, train_data_upsampling_factors=None, seed=0, batch_size=16, workers=0, world_size=1,
    )
    preprocess, tokenizer = open_clip.image_transform(32, is_train=False), open_clip.get_tokenizer("ViT-B-32")
    training = data.get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=tokenizer)
    images, texts = next(iter(training.dataloader))
    assert images.shape == (16, 3, 32, 32) and texts.shape == (16, 77)
    # Its validation pipeline (same decoding, renaming and filtering, no repetition) sees each mention
    # picture once, paired with its sentence, and skips the text-only instances.
    validation = data.get_wds_dataset(args, preprocess, is_train=False, tokenizer=tokenizer)
    seen = sum(images.shape[0] for images, _ in validation.dataloader)
    assert seen == val["with_mention_picture"] > 0


def test_parquet_and_hf_exports_have_image_columns(mini, exports, tmp_path):
    import datasets

    parquet = json.loads((exports["parquet"] / "export.json").read_text())
    files = {split: [str(exports["parquet"] / f) for f in info["files"]] for split, info in parquet["splits"].items()}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    saved = datasets.load_from_disk(str(exports["hf"] / "dataset"))
    for splits in (loaded, saved):
        assert set(splits) == {"train", "val", "test"}
        features = splits["train"].features
        assert isinstance(features["image"], datasets.Image)
        assert isinstance(features["candidates"].feature["image"], datasets.Image)
        row = next(r for r in splits["val"] if r["image"] is not None)
        with Image.open(mini / row["image_ref"]["local_path"]) as original:
            assert row["image"].size == original.size
        assert json.loads(row["provenance"])  # how the record was made, kept


def test_the_dataset_card_names_fields_sizes_licences_and_provenance(mini, exports):
    dataset = load_dataset(mini)
    for fmt, folder in exports.items():
        card = (folder / "README.md").read_text()
        export = json.loads((folder / "export.json").read_text())
        for heading in ("## Sizes", "## Fields", "## Licences", "## Provenance"):
            assert heading in card, (fmt, heading)
        assert f"| train | {len(dataset.split('train')):,} |" in card
        assert dataset.checksum in card and "CC BY-SA 4.0" in card
        licences = export["licences"]["pictures"]
        assert sum(licences.values()) == export["pictures"]["files"] == len(local_paths(dataset))
        assert any("GPL-2.0-or-later" in name for name in licences)  # the Tux Paint stamps
        assert (folder / "export.json.provenance.json").is_file()


def test_webdataset_export_is_deterministic(mini, exports, tmp_path):
    again = export_dataset(mini, tmp_path / "again", "webdataset", shard_size=400).out_dir
    for tar in sorted(exports["webdataset"].glob("*.tar")):
        assert (again / tar.name).read_bytes() == tar.read_bytes(), tar.name


def test_cli_exports_and_replaces_only_an_earlier_export(mini, tmp_path, capsys):
    from m3el_lib.cli import main

    out = tmp_path / "shards"
    assert main(["export", "--format", "webdataset", "--dataset", str(mini), "--out", str(out), "--shard-size", "5000"]) == 0
    assert sorted(p.name for p in out.glob("*.tar")) == ["test-00000.tar", "train-00000.tar", "val-00000.tar"]
    assert main(["export", "--format", "parquet", "--dataset", str(mini), "--out", str(out)]) == 0  # replaces it
    assert not list(out.glob("*.tar")) and list(out.glob("*.parquet"))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["export", "--format", "hf", "--dataset", str(mini), "--out", str(precious)]) == 1
    assert "refusing to replace it" in capsys.readouterr().err
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]


def test_a_missing_picture_is_one_line_naming_the_record_and_nothing_is_written(mini, tmp_path, capsys):
    from m3el_lib.cli import main

    broken = tmp_path / "broken"
    shutil.copytree(mini, broken)
    victim = next(i for i in load_dataset(broken).instances if i.image is not None)
    (broken / victim.image.local_path).unlink()
    out = tmp_path / "out"
    assert main(["export", "--format", "webdataset", "--dataset", str(broken), "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f"({victim.instance_id})" in error and victim.image.local_path in error and str(broken) in error
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
