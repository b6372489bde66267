"""Load, validate and write datasets in the M³EL release format.

A dataset is a JSON array file, a JSON Lines file, or a folder of such files (with an optional
`manifest.json`, which is not a record file); only regular files are read. Every record is
checked; a bad one is reported as `FILE:RECORD: field: problem`, RECORD being `line N` in a JSON
Lines file and the 0-based index in a JSON array (an unreadable array as `FILE:line N: json:
problem`). Records printed as Python literals (single quotes, as the release's documentation
shows them) are read with `ast.literal_eval`, which runs no code. Strict mode stops at the first
error; lenient mode keeps the good records and writes every rejected one (or its raw text) to a
quarantine report, so nothing is silently dropped. A dataset without usable records is an error.

Picture paths: relative ones start at the record files' folder, `/M3EL/...` ones at the
release's root folder (`config.release_root_name()`); nothing is followed outside its root.
"""
from __future__ import annotations

import ast
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

from .. import config
from ..fsutil import atomic_write_json, atomic_write_lines, sha256_tree
from .errors import DatasetError
from .picture_paths import (  # noqa: F401 - part of this module's interface too
    LinkChecker,
    is_safe_relative_path,
    local_path_problem,
    release_prefix,
    release_root_for,
    resolve_image_path,
    split_local_path,
)
from .schema import KB_ID_PATTERNS, MENTION_IMAGE_KINDS, SPLITS, Entity, ImageRef, Instance

RECORD_SUFFIXES = (".json", ".jsonl")
NON_RECORD_FILES = {"manifest.json", "snapshot.json"}


@dataclass(frozen=True)
class RecordProblem:
    """One problem with one record (or one unreadable stretch of a file)."""

    file: str
    where: str  # "line N" in a JSON Lines file, the 0-based record index in a JSON array
    field: str
    problem: str
    raw_text: str | None = field(default=None, compare=False)  # the undecodable text, kept for the quarantine
    whole_file: bool = False  # the file as a whole could not be read

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.field}: {self.problem}"


@dataclass
class RejectedRecord:
    file: str
    where: str
    problems: list[RecordProblem]
    raw: Any  # the record as read (None when it could not be decoded: see raw_text)
    raw_text: str | None = None  # the undecodable text of a JSON Lines line
    whole_file: bool = False  # a file none of whose records could be read


@dataclass
class Dataset:
    """Loaded instances plus where they came from and what was rejected."""

    instances: list[Instance]
    root: Path
    files: list[Path]
    rejected: list[RejectedRecord] = field(default_factory=list)
    checksum: str = ""
    quarantine_path: Path | None = None
    release_root: Path | None = None  # where `/M3EL/...` picture paths start (default: found from root)

    def __len__(self) -> int:
        return len(self.instances)

    def split(self, name: str) -> list[Instance]:
        return [inst for inst in self.instances if inst.split == name]

    @property
    def unreadable_files(self) -> list[RejectedRecord]:
        """Files none of whose records could be read (bad encoding, broken JSON array)."""
        return [r for r in self.rejected if r.whole_file]

    def rejection_summary(self) -> str:
        """One line saying what was rejected and where the report is, or "" when nothing was."""
        if not self.rejected:
            return ""
        whole = self.unreadable_files
        parts = []
        if len(self.rejected) > len(whole):
            parts.append(f"{len(self.rejected) - len(whole)} record(s) rejected")
        if whole:
            parts.append(f"{len(whole)} file(s) unreadable as a whole (every record in them dropped)")
        return f"{' and '.join(parts)}; report: {self.quarantine_path}"

    def image_path(self, ref: ImageRef | None) -> Path | None:
        return resolve_image_path(self.root, ref, self.release_root)


# ---------------------------------------------------------------- finding and reading files


def record_files(path: Path) -> tuple[Path, list[Path]]:
    """The data root and the record files of a dataset file or folder (regular files only)."""
    path = Path(path)
    if "\0" in str(path):
        raise DatasetError(f"{str(path)!r}: a path with a NUL byte")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file or folder") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror or err})") from None
    if stat.S_ISREG(mode):
        if path.suffix.lower() not in RECORD_SUFFIXES:
            hint = " (an archive: unpack it, or `m3el register m3el-release` it)" if _looks_like_archive(path) else ""
            raise DatasetError(f"{path}: not a .json or .jsonl record file{hint}")
        return path.parent, [path]
    if not stat.S_ISDIR(mode):
        raise DatasetError(f"{path}: not a regular file or folder (a device, pipe or socket is never read)")
    files = sorted(
        p
        for p in path.iterdir()
        if p.suffix in RECORD_SUFFIXES
        and p.name not in NON_RECORD_FILES
        and not p.name.startswith((".", "_"))
        and ".quarantine." not in p.name
        and _is_regular_file(p)
    )
    if not files:
        raise DatasetError(f"{path}: no .json or .jsonl record files in this folder")
    return path, files


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _looks_like_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".gz", ".7z", ".rar"))


def iter_raw_records(file: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) for every record of a file; an unreadable stretch yields a RecordProblem.

    `where` is "line N" (1-based) in a JSON Lines file and the 0-based index in a JSON array.
    """
    try:
        data = file.read_bytes()
    except OSError as err:
        raise DatasetError(f"{file}: cannot be read ({err.strerror or err})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark is not part of the JSON
    if file.suffix == ".jsonl" or not data.lstrip().startswith(b"["):
        yield from _iter_json_lines(file, data)
        return
    yield from _iter_json_array(file, data)


def _iter_json_array(file: Path, data: bytes) -> Iterator[tuple[str, Any]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        yield f"line {line}", _file_problem(file, f"line {line}", "encoding", _encoding_problem(data, err))
        return
    records, problem = _parse(text)
    if problem is not None:
        where, message = problem
        yield where, _file_problem(file, where, *message)
        return
    if not isinstance(records, list):
        yield "0", _file_problem(file, "0", "json", "expected an array of records")
        return
    for index, record in enumerate(records):
        yield str(index), record


def _iter_json_lines(file: Path, data: bytes) -> Iterator[tuple[str, Any]]:
    # split on "\n" only: str.splitlines() also breaks at U+0085 and U+2028, which JSON keeps raw.
    for line_number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"line {line_number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            yield where, RecordProblem(str(file), where, "encoding", _encoding_problem(raw, err), raw_text=_raw_text(raw))
            continue
        record, problem = _parse(line)
        if problem is not None:
            yield where, RecordProblem(str(file), where, *problem[1], raw_text=line)
        else:
            yield where, record


def _file_problem(file: Path, where: str, field_name: str, problem: str) -> RecordProblem:
    return RecordProblem(str(file), where, field_name, problem + "; none of this file's records could be read",
                         whole_file=True)


def _encoding_problem(data: bytes, err: UnicodeDecodeError) -> str:
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    return f"not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); re-save the file as UTF-8"


def _raw_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


MAX_LITERAL_CHARS = 64 << 20  # Python-literal files are parsed whole into a syntax tree: keep them bounded
CONVERT_HINT = (
    "it looks like Python literals (single quotes, as the release's documentation prints records); "
    "convert it to JSON Lines with: python -c \"import ast,json,sys; [print(json.dumps(ast.literal_eval(l))) "
    "for l in open(sys.argv[1]) if l.strip()]\" FILE > FILE.jsonl"
)


def _parse(text: str) -> tuple[Any, tuple[str, tuple[str, str]] | None]:
    """(value, None) for JSON or a JSON-shaped Python literal; (None, (where, (field, problem))) otherwise."""
    try:
        return json.loads(text), None
    except RecursionError:
        return None, ("line 1", ("json", "nested too deeply to be a record"))
    except json.JSONDecodeError as err:
        failure = (f"line {err.lineno}", ("json", f"{err.msg} (column {err.colno})"))
        pythonic = text[err.pos:err.pos + 1] in ("'", "(") or text.startswith(("None", "True", "False"), err.pos)
    if not pythonic:  # a JSON file with a plain syntax error: no Python-literal advice
        return None, failure
    if len(text) > MAX_LITERAL_CHARS:
        return None, (failure[0], ("json", f"{failure[1][1]}; {CONVERT_HINT}"))
    value = _python_literal(text)
    if value is _NOT_A_LITERAL:
        return None, (failure[0], ("json", f"{failure[1][1]}; {CONVERT_HINT}"))
    return value, None


_NOT_A_LITERAL = object()


def _python_literal(text: str) -> Any:
    """A Python literal of JSON's types (read by `ast.literal_eval`, which never runs code)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_A_LITERAL
    try:
        return _as_json_value(value)
    except (TypeError, RecursionError):
        return _NOT_A_LITERAL


def _as_json_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_as_json_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _as_json_value(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# ---------------------------------------------------------------- validating one record


def _image_problems(value: Any, field_name: str, prefix: str | None = None) -> list[tuple[str, str]]:
    if value is None or value == [] or value == "":
        return []
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, str) for v in value):
        return [(field_name, "expected [file name, URL, local path] (three strings) or null")]
    problem = local_path_problem(value[2], prefix) if value[2] else None
    return [(field_name, problem)] if problem else []


def _string_problems(record: dict, names: Iterable[str], prefix: str = "") -> list[tuple[str, str]]:
    problems = []
    for name in names:
        if name not in record:
            problems.append((prefix + name, "missing field"))
        elif not isinstance(record[name], str):
            problems.append((prefix + name, f"expected a string, got {type(record[name]).__name__}"))
    return problems


def record_problems(record: Any, release_prefix: str | None = None) -> list[tuple[str, str]]:
    """(field, problem) for everything wrong with one release-format record (`release_prefix`:
    `picture_paths.release_prefix()`, read once by a caller validating many records)."""
    if not isinstance(record, dict):
        return [("record", f"expected an object, got {type(record).__name__}")]
    problems = _string_problems(record, ("Qid", "name", "description", "sentence"))
    if "image" not in record:
        problems.append(("image", "missing field"))
    else:
        problems += _image_problems(record["image"], "image", release_prefix)
    kb = record.get("kb", "wikidata")
    pattern = KB_ID_PATTERNS.get(kb) if isinstance(kb, str) else None
    if pattern is None:
        problems.append(("kb", f"unknown id namespace {kb!r}; expected one of {sorted(KB_ID_PATTERNS)}"))
    qid = record.get("Qid")
    if pattern is not None and isinstance(qid, str) and not pattern.match(qid):
        problems.append(("Qid", f"{qid!r} is not a {_id_shape(kb)} id"))
    problems += _candidate_problems(record, pattern, kb, release_prefix)
    problems += _extra_problems(record)
    return problems


def _id_shape(kb: str) -> str:
    return "Q<digits> (Wikidata)" if kb == "wikidata" else f"X<digits> ({kb})"


def _candidate_problems(record: dict, pattern: Any, kb: str, release_prefix: str | None = None) -> list[tuple[str, str]]:
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
        problems += _image_problems(candidate.get("image"), prefix + "image", release_prefix)
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
    release_root: Path | str | None = None,
    check_links: bool = False,
) -> Dataset:
    """Load and validate a dataset file or folder.

    strict: raise DatasetError at the first bad record. Lenient (strict=False): keep the good
    records, collect the rejected ones and write them to `quarantine_path` (default:
    `$M3EL_HOME/quarantine/<name>.quarantine.jsonl`) when there are any. A dataset without any
    usable record is an error in both modes (lenient mode writes its report first).
    `release_root`: where `/M3EL/...` picture paths start (default: `release_root_for`).
    check_links: also refuse records whose picture paths lead out of their root through a
    symbolic link (the roots are listed once; `validate` and `register` do this).
    """
    root, files = record_files(Path(path))
    resolved_root = root.resolve()
    release = Path(release_root).resolve() if release_root else release_root_for(resolved_root)
    links = LinkChecker(resolved_root, release) if check_links else None
    paths_prefix = release_prefix()
    instances: list[Instance] = []
    rejected: list[RejectedRecord] = []
    for file in files:
        for where, raw in iter_raw_records(file):
            if isinstance(raw, RecordProblem):
                problems = [raw]
            else:
                found = record_problems(raw, paths_prefix)
                if not found and links is not None:
                    found = links.record_problems(raw)
                problems = [RecordProblem(str(file), where, f, p) for f, p in found]
            if problems:
                if strict:
                    raise DatasetError("\n".join(str(p) for p in problems))
                rejected.append(_rejected(file, where, problems, raw))
                continue
            instances.append(record_to_instance(raw))
    dataset = Dataset(instances=instances, root=resolved_root, files=files, rejected=rejected, release_root=release)
    dataset.checksum = sha256_tree(root, files)
    if rejected:
        dataset.quarantine_path = write_quarantine(rejected, quarantine_path or default_quarantine_path(Path(path)))
    if not instances:
        where = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        detail = f"; {dataset.rejection_summary()}" if rejected else ""
        raise DatasetError(f"{where}: no usable records (an empty dataset){detail}")
    return dataset


def _rejected(file: Path, where: str, problems: list[RecordProblem], raw: Any) -> RejectedRecord:
    if isinstance(raw, RecordProblem):
        return RejectedRecord(str(file), where, problems, None, raw_text=raw.raw_text, whole_file=raw.whole_file)
    return RejectedRecord(str(file), where, problems, raw)


def default_quarantine_path(path: Path) -> Path:
    return config.home() / "quarantine" / f"{Path(path).resolve().name}.quarantine.jsonl"


def write_quarantine(rejected: list[RejectedRecord], path: Path | str) -> Path:
    """One JSON line per rejected record: where it was, every problem, and the record as read.

    A record that could not be decoded keeps its raw text (`raw_text`); a file that could not be
    read at all is named (`whole_file`), and left as it was on disk.
    """
    lines = []
    for r in rejected:
        row: dict[str, Any] = {"file": r.file, "where": r.where, "problems": [str(p) for p in r.problems]}
        if r.whole_file:
            row["whole_file"] = True
        elif r.raw_text is not None:
            row["raw_text"] = r.raw_text
        else:
            row["record"] = r.raw
        lines.append(json.dumps(row, ensure_ascii=False))
    return atomic_write_lines(path, lines)


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
