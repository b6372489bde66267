"""Load, validate and write datasets in the M³EL release format.

A dataset is a JSON array file, a JSON Lines file, or a folder of such files (with an optional
`manifest.json`, which is not a record file). Every record is checked; a bad one is reported as
`FILE:RECORD_INDEX: field: problem` (invalid JSON as `FILE:line N: json: problem`). Strict mode
stops at the first error; lenient mode keeps the good records and writes every rejected one to a
quarantine report, so nothing is silently dropped. Image paths are never followed outside the
dataset's root folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

from .. import config
from ..fsutil import atomic_write_json, atomic_write_lines, sha256_tree
from .schema import KB_ID_PATTERNS, MENTION_IMAGE_KINDS, SPLITS, Entity, ImageRef, Instance

RECORD_SUFFIXES = (".json", ".jsonl")
NON_RECORD_FILES = {"manifest.json", "snapshot.json"}


class DatasetError(ValueError):
    """A dataset file or record that cannot be used; the message names the file and record."""


@dataclass(frozen=True)
class RecordProblem:
    """One problem with one record (or one unreadable stretch of a file)."""

    file: str
    where: str  # the record index, or "line N" for invalid JSON
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.field}: {self.problem}"


@dataclass
class RejectedRecord:
    file: str
    where: str
    problems: list[RecordProblem]
    raw: Any  # the record as read, or the undecodable text


@dataclass
class Dataset:
    """Loaded instances plus where they came from and what was rejected."""

    instances: list[Instance]
    root: Path
    files: list[Path]
    rejected: list[RejectedRecord] = field(default_factory=list)
    checksum: str = ""
    quarantine_path: Path | None = None

    def __len__(self) -> int:
        return len(self.instances)

    def split(self, name: str) -> list[Instance]:
        return [inst for inst in self.instances if inst.split == name]

    def image_path(self, ref: ImageRef | None) -> Path | None:
        return resolve_image_path(self.root, ref)


# ---------------------------------------------------------------- finding and reading files


def record_files(path: Path) -> tuple[Path, list[Path]]:
    """The data root and the record files of a dataset file or folder."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        return path.parent, [path]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file()
        and p.suffix in RECORD_SUFFIXES
        and p.name not in NON_RECORD_FILES
        and not p.name.startswith((".", "_"))
        and ".quarantine." not in p.name
    )
    if not files:
        raise DatasetError(f"{path}: no .json or .jsonl record files in this folder")
    return path, files


def iter_raw_records(file: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) for every record in a file; a decoding problem yields a RecordProblem."""
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".jsonl" or not text.lstrip().startswith("["):
        yield from _iter_json_lines(file, text)
        return
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        yield f"line {err.lineno}", RecordProblem(str(file), f"line {err.lineno}", "json", f"{err.msg} (column {err.colno})")
        return
    for index, record in enumerate(records):
        yield str(index), record


def _iter_json_lines(file: Path, text: str) -> Iterator[tuple[str, Any]]:
    index = 0
    # split on "\n" only: str.splitlines() also breaks at U+0085 and U+2028, which JSON keeps raw.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield str(index), json.loads(line)
        except json.JSONDecodeError as err:
            yield str(index), RecordProblem(str(file), f"line {line_number}", "json", f"{err.msg} (column {err.colno})")
        index += 1


# ---------------------------------------------------------------- validating one record


def _image_problems(value: Any, field_name: str) -> list[tuple[str, str]]:
    if value is None or value == [] or value == "":
        return []
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, str) for v in value):
        return [(field_name, "expected [file name, URL, local path] (three strings) or null")]
    local = value[2]
    if local and not is_safe_relative_path(local):
        return [(field_name, f"local path {local!r} escapes the data root")]
    return []


def is_safe_relative_path(local: str) -> bool:
    """True when `local` is a relative path that stays inside its root folder."""
    posix = PurePosixPath(local.replace("\\", "/"))
    if posix.is_absolute() or (len(local) > 1 and local[1] == ":"):
        return False
    depth = 0
    for part in posix.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return False
    return True


def _string_problems(record: dict, names: Iterable[str], prefix: str = "") -> list[tuple[str, str]]:
    problems = []
    for name in names:
        if name not in record:
            problems.append((prefix + name, "missing field"))
        elif not isinstance(record[name], str):
            problems.append((prefix + name, f"expected a string, got {type(record[name]).__name__}"))
    return problems


def record_problems(record: Any) -> list[tuple[str, str]]:
    """(field, problem) for everything wrong with one release-format record."""
    if not isinstance(record, dict):
        return [("record", f"expected an object, got {type(record).__name__}")]
    problems = _string_problems(record, ("Qid", "name", "description", "sentence"))
    if "image" not in record:
        problems.append(("image", "missing field"))
    else:
        problems += _image_problems(record["image"], "image")
    kb = record.get("kb", "wikidata")
    pattern = KB_ID_PATTERNS.get(kb) if isinstance(kb, str) else None
    if pattern is None:
        problems.append(("kb", f"unknown id namespace {kb!r}; expected one of {sorted(KB_ID_PATTERNS)}"))
    qid = record.get("Qid")
    if pattern is not None and isinstance(qid, str) and not pattern.match(qid):
        problems.append(("Qid", f"{qid!r} is not a {_id_shape(kb)} id"))
    problems += _candidate_problems(record, pattern, kb)
    problems += _extra_problems(record)
    return problems


def _id_shape(kb: str) -> str:
    return "Q<digits> (Wikidata)" if kb == "wikidata" else f"X<digits> ({kb})"


def _candidate_problems(record: dict, pattern: Any, kb: str) -> list[tuple[str, str]]:
    candidates = record.get("candidates")
    if candidates is None:
        return [("candidates", "missing field")]
    if not isinstance(candidates, list) or not candidates:
        return [("candidates", "expected a non-empty list of candidate objects")]
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, candidate in enumerate(candidates):
        prefix = f"candidates[{index}]."
        if not isinstance(candidate, dict):
            problems.append((f"candidates[{index}]", f"expected an object, got {type(candidate).__name__}"))
            continue
        problems += _string_problems(candidate, ("Qid", "name", "description"), prefix)
        problems += _image_problems(candidate.get("image"), prefix + "image")
        qid = candidate.get("Qid")
        if isinstance(qid, str):
            if pattern is not None and not pattern.match(qid):
                problems.append((prefix + "Qid", f"{qid!r} is not a {_id_shape(kb)} id"))
            if qid in seen:
                problems.append((prefix + "Qid", f"duplicate candidate {qid}"))
            seen.add(qid)
    gold = record.get("Qid")
    if isinstance(gold, str) and seen and gold not in seen:
        problems.append(("candidates", f"gold entity {gold} is not among the candidates"))
    return problems


def _extra_problems(record: dict) -> list[tuple[str, str]]:
    problems = []
    for name in ("instance_id", "topic"):
        if name in record and not isinstance(record[name], str):
            problems.append((name, f"expected a string, got {type(record[name]).__name__}"))
    split = record.get("split")
    if split is not None and split not in SPLITS:
        problems.append(("split", f"{split!r} is not one of {', '.join(SPLITS)}"))
    kind = record.get("mention_image_kind")
    if kind is not None and kind not in MENTION_IMAGE_KINDS:
        problems.append(("mention_image_kind", f"{kind!r} is not one of {', '.join(MENTION_IMAGE_KINDS)}"))
    if "provenance" in record and not isinstance(record["provenance"], dict):
        problems.append(("provenance", "expected an object"))
    problems += _gold_index_problems(record)
    return problems


def _gold_index_problems(record: dict) -> list[tuple[str, str]]:
    if "gold_index" not in record:
        return []
    index, candidates = record["gold_index"], record.get("candidates")
    if not isinstance(index, int) or isinstance(index, bool):
        return [("gold_index", "expected an integer")]
    if not isinstance(candidates, list) or not 0 <= index < len(candidates):
        return [("gold_index", f"{index} is out of range")]
    candidate = candidates[index]
    if isinstance(candidate, dict) and candidate.get("Qid") != record.get("Qid"):
        return [("gold_index", f"candidate {index} is {candidate.get('Qid')}, not the gold {record.get('Qid')}")]
    return []


# ---------------------------------------------------------------- records <-> instances


def _image_ref(value: Any) -> ImageRef | None:
    if not value:
        return None
    return ImageRef(file_name=value[0], url=value[1], local_path=value[2])


def record_to_instance(record: dict) -> Instance:
    """An Instance from a record that passed `record_problems`."""
    candidates = tuple(
        Entity(qid=c["Qid"], name=c["name"], description=c["description"], image=_image_ref(c.get("image")))
        for c in record["candidates"]
    )
    return Instance(
        qid=record["Qid"],
        name=record["name"],
        description=record["description"],
        sentence=record["sentence"],
        image=_image_ref(record["image"]),
        candidates=candidates,
        topic=record.get("topic", ""),
        split=record.get("split", ""),
        instance_id=record.get("instance_id", ""),
        mention_image_kind=record.get("mention_image_kind", "unknown"),
        kb=record.get("kb", "wikidata"),
        provenance=record.get("provenance", {}),
    )


def _image_json(ref: ImageRef | None) -> list[str] | None:
    return ref.to_json() if ref is not None else None


def instance_to_record(instance: Instance) -> dict[str, Any]:
    """The release-format record of an instance, with our extra fields where they are set."""
    record: dict[str, Any] = {
        "Qid": instance.qid,
        "name": instance.name,
        "description": instance.description,
        "sentence": instance.sentence,
        "image": _image_json(instance.image),
        "candidates": [
            {"Qid": c.qid, "name": c.name, "description": c.description, "image": _image_json(c.image)}
            for c in instance.candidates
        ],
    }
    if instance.instance_id:
        record["instance_id"] = instance.instance_id
    if instance.topic:
        record["topic"] = instance.topic
    if instance.split:
        record["split"] = instance.split
    record["gold_index"] = instance.gold_index
    if instance.mention_image_kind != "unknown":
        record["mention_image_kind"] = instance.mention_image_kind
    if instance.kb != "wikidata":
        record["kb"] = instance.kb
    if instance.provenance:
        record["provenance"] = instance.provenance
    return record


# ---------------------------------------------------------------- loading


def load_dataset(
    path: Path | str,
    *,
    strict: bool = True,
    quarantine_path: Path | str | None = None,
) -> Dataset:
    """Load and validate a dataset file or folder.

    strict: raise DatasetError at the first bad record. Lenient (strict=False): keep the good
    records, collect the rejected ones and write them to `quarantine_path` (default:
    `$M3EL_HOME/quarantine/<name>.quarantine.jsonl`) when there are any.
    """
    root, files = record_files(Path(path))
    instances: list[Instance] = []
    rejected: list[RejectedRecord] = []
    for file in files:
        for where, raw in iter_raw_records(file):
            if isinstance(raw, RecordProblem):
                problems = [raw]
            else:
                problems = [RecordProblem(str(file), where, f, p) for f, p in record_problems(raw)]
            if problems:
                if strict:
                    raise DatasetError("\n".join(str(p) for p in problems))
                rejected.append(RejectedRecord(str(file), where, problems, raw if not isinstance(raw, RecordProblem) else None))
                continue
            instances.append(record_to_instance(raw))
    dataset = Dataset(instances=instances, root=root.resolve(), files=files, rejected=rejected)
    dataset.checksum = sha256_tree(root, files)
    if rejected:
        dataset.quarantine_path = write_quarantine(rejected, quarantine_path or default_quarantine_path(Path(path)))
    return dataset


def default_quarantine_path(path: Path) -> Path:
    return config.home() / "quarantine" / f"{Path(path).resolve().name}.quarantine.jsonl"


def write_quarantine(rejected: list[RejectedRecord], path: Path | str) -> Path:
    """One JSON line per rejected record: where it was, every problem, the record as read."""
    lines = (
        json.dumps(
            {"file": r.file, "where": r.where, "problems": [str(p) for p in r.problems], "record": r.raw},
            ensure_ascii=False,
        )
        for r in rejected
    )
    return atomic_write_lines(path, lines)


def resolve_image_path(root: Path, ref: ImageRef | None) -> Path | None:
    """The file a record's image points to, refusing any path outside `root`."""
    if ref is None or not ref.local_path:
        return None
    if not is_safe_relative_path(ref.local_path):
        raise DatasetError(f"image path {ref.local_path!r} escapes the data root {root}")
    root = Path(root).resolve()
    candidate = (root / ref.local_path).resolve()
    if not candidate.is_relative_to(root):
        raise DatasetError(f"image path {ref.local_path!r} escapes the data root {root} (through a link)")
    return candidate


# ---------------------------------------------------------------- writing


def write_records(path: Path | str, instances: Iterable[Instance]) -> Path:
    """Write instances to one file: JSON Lines for `.jsonl`, a JSON array otherwise (atomically)."""
    path = Path(path)
    records = [instance_to_record(inst) for inst in instances]
    if path.suffix == ".jsonl":
        return atomic_write_lines(path, (json.dumps(r, ensure_ascii=False) for r in records))
    return atomic_write_json(path, records, indent=1)


def write_dataset(instances: Iterable[Instance], out_dir: Path | str, manifest: dict | None = None) -> list[Path]:
    """Write a dataset folder: one `<split>.jsonl` per split (`all.jsonl` for unsplit ones)."""
    out_dir = Path(out_dir)
    by_split: dict[str, list[Instance]] = {}
    for inst in instances:
        by_split.setdefault(inst.split or "all", []).append(inst)
    written = [write_records(out_dir / f"{split}.jsonl", items) for split, items in sorted(by_split.items())]
    if manifest is not None:
        written.append(atomic_write_json(out_dir / "manifest.json", manifest))
    return written


def dataset_checksum(path: Path | str) -> str:
    """Checksum of a dataset's record files (not its pictures): the data id in provenance."""
    root, files = record_files(Path(path))
    return sha256_tree(root, files)
