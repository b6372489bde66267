"""The sample CLIP's pretraining corpus: reading it, and checking that it is disjoint from M³EL-mini.

The corpus is committed under `data/pretrain_corpus/` (built by `scripts/build_pretrain_corpus.py`
from Debian packages; see its `SOURCES.md`): `pairs.jsonl.gz` lists the picture-caption pairs
(`sha256` of the JPEG bytes, `caption`, `source`, `source_path`, `licence`, `shard`, `split`), the
JPEGs live in a few zip shards (stored, not recompressed), named by their sha256. `load_corpus` reads and checks all of it:
a member that is not a plain file, a picture whose bytes do not match its sha256, or a bad record
is an error naming the file and the record. Nothing is unpickled.

Disjointness from M³EL-mini (`disjointness_violations`), checked by a test against whatever
M³EL-mini is built from the committed snapshot: no corpus picture has the bytes of an M³EL-mini
picture or looks like one (16x16 grey fingerprint, mirror included), none comes from a source
file (or emoji code point) a snapshot picture uses, and no caption names the gold entity of an M³EL-mini test instance.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .. import config

CORPUS_DIR = config.PRETRAIN_CORPUS_DIR
HELDOUT_PERCENT = 5
REQUIRED_FIELDS = ("sha256", "caption", "source", "source_path", "shard", "split")
SPLITS = ("train", "heldout")
MAX_PICTURE_BYTES = 2_000_000
NEAR_DUPLICATE_GREY = 6.0  # mean grey difference (0-255) under which two pictures are the same one
BUNDLE_SUFFIXES = (".rcc",)  # archives whose members are separate source files (GCompris's Qt resource bundles)


class CorpusError(ValueError):
    """The corpus on disk is not what its index says; the message names the file and record."""


@dataclass(frozen=True)
class Pair:
    """One picture-caption pair of the corpus."""

    sha256: str
    caption: str
    source: str  # package short name: openclipart, tuxpaint, noto-emoji, symbola, kgeography, gcompris
    source_path: str  # path (or font#codepoint) inside the package
    licence: str
    shard: str
    split: str  # "train" | "heldout"


@dataclass
class Corpus:
    """The pairs and their JPEG bytes (keyed by sha256)."""

    root: Path
    pairs: list[Pair]
    pictures: dict[str, bytes] = field(repr=False)
    manifest: dict

    def split(self, name: str) -> list[Pair]:
        return [p for p in self.pairs if p.split == name]

    @property
    def checksum(self) -> str:
        """sha256 over the pair index: the cache key of anything computed from the corpus."""
        digest = hashlib.sha256()
        for pair in self.pairs:
            digest.update(f"{pair.sha256}\0{pair.caption}\0{pair.split}\n".encode())
        return digest.hexdigest()

    def image(self, sha256: str):
        """The picture as an RGB PIL image."""
        from PIL import Image

        with Image.open(io.BytesIO(self.pictures[sha256])) as image:
            return image.convert("RGB")


def is_heldout(sha256: str) -> bool:
    """The deterministic held-out slice: HELDOUT_PERCENT % of pictures, chosen by their hash."""
    return int(sha256[:8], 16) % 100 < HELDOUT_PERCENT


def load_corpus(root: Path | str = CORPUS_DIR, limit: int = 0) -> Corpus:
    """Read and verify the corpus at `root` (the first `limit` pairs when limit > 0)."""
    root = Path(root)
    index = root / "pairs.jsonl.gz"
    if not index.is_file():
        raise CorpusError(f"{index}: no corpus here (build it with scripts/build_pretrain_corpus.py)")
    pairs = _read_pairs(index)
    if limit > 0:
        pairs = pairs[:limit]
    wanted = {p.sha256 for p in pairs}
    pictures: dict[str, bytes] = {}
    for shard in sorted({p.shard for p in pairs}):
        pictures.update(_read_shard(root, shard, wanted))
    for number, pair in enumerate(pairs, start=1):
        if pair.sha256 not in pictures:
            raise CorpusError(f"{index}: record {number} ({pair.sha256[:12]}): picture missing from {pair.shard}")
    manifest_path = root / "corpus.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    return Corpus(root=root, pairs=pairs, pictures=pictures, manifest=manifest)


def _read_pairs(index: Path) -> list[Pair]:
    pairs = []
    for number, line in _index_lines(index):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{index}: record {number}: invalid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{index}: record {number}: expected an object")
        missing = [key for key in REQUIRED_FIELDS if not isinstance(record.get(key), str) or not record.get(key)]
        if missing:
            raise CorpusError(f"{index}: record {number}: missing or empty {', '.join(missing)}")
        if not re.fullmatch(r"[0-9a-f]{64}", record["sha256"]) or record["split"] not in SPLITS:
            raise CorpusError(f"{index}: record {number}: bad sha256 or split {record['split']!r}")
        if not re.fullmatch(r"shards/[A-Za-z0-9_.-]+\.zip", record["shard"]):
            raise CorpusError(f"{index}: record {number}: shard {record['shard']!r} is not a file under shards/")
        pairs.append(Pair(**{k: record[k] for k in REQUIRED_FIELDS}, licence=str(record.get("licence", ""))))
    return pairs


def _index_lines(index: Path) -> Iterator[tuple[int, str]]:
    """(record number, line) of the gzipped index; a truncated, corrupt or non-gzip file is a
    CorpusError naming the record where reading stopped."""
    number = 0
    try:
        with gzip.open(index, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise CorpusError(f"{index}: record {number + 1}: unreadable, the file is truncated or not gzip ({err})") from None


def _read_shard(root: Path, shard: str, wanted: set[str]) -> dict[str, bytes]:
    path = root / shard
    found: dict[str, bytes] = {}
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise CorpusError(f"{path}: not a readable zip shard ({err})") from None
    with archive:
        for member in archive.infolist():
            match = re.fullmatch(r"([0-9a-f]{64})\.jpg", member.filename)
            if member.is_dir() or match is None or member.file_size > MAX_PICTURE_BYTES:
                raise CorpusError(f"{path}: member {member.filename!r} is not a picture named <sha256>.jpg of at most {MAX_PICTURE_BYTES} bytes")
            if match.group(1) not in wanted:
                continue
            data = archive.read(member)
            if hashlib.sha256(data).hexdigest() != match.group(1):
                raise CorpusError(f"{path}: member {member.filename}: bytes do not match the sha256 in its name")
            found[match.group(1)] = data
    return found


# ---------------------------------------------------------------- disjointness


def fingerprints(pictures: Sequence[Path | bytes]) -> np.ndarray:
    """[N, 16, 16] grey thumbnails (float32), the near-duplicate fingerprint of each picture."""
    from PIL import Image

    rows = []
    for picture in pictures:
        data = picture if isinstance(picture, bytes) else Path(picture).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            rows.append(np.asarray(image.convert("L").resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32))
    return np.stack(rows) if rows else np.zeros((0, 16, 16), dtype=np.float32)


def near_duplicate_of(row: np.ndarray, matrix: np.ndarray, threshold: float = NEAR_DUPLICATE_GREY) -> int:
    """Index of a picture in `matrix` that `row` is (or mirrors) at a glance, else -1."""
    if len(matrix) == 0:
        return -1
    plain = np.abs(matrix - row[None]).mean(axis=(1, 2))
    mirrored = np.abs(matrix - row[None, :, ::-1]).mean(axis=(1, 2))
    hits = np.flatnonzero(np.minimum(plain, mirrored) < threshold)
    return int(hits[0]) if len(hits) else -1


def names_in(caption: str, names: Iterable[str]) -> list[str]:
    """The (normalised) names that occur in `caption` as whole words."""
    from ..construction.snapshot import normalise

    text = f" {normalise(caption)} "
    return sorted(name for name in names if name and f" {name} " in text)


def uses_snapshot_source(source: str, source_path: str, used: set[tuple[str, str]], used_paths: set[str]) -> bool:
    """Whether a corpus picture comes from a source file (or, for a font, a code point) that a
    snapshot picture uses.

    The snapshot names a picture cut from a larger file as `file#part` (a KGeography map recoloured
    for one division: "africa.png#africa.kgm:Morocco"), so the file before "#" counts as used; it
    names an emoji by its code point alone ("U+1F9E3") while the corpus names it with its font
    ("NotoColorEmoji.ttf#U+1F9E3", "Symbola_hint.ttf#U+1F9E3"): the same code point drawn by any
    font counts as used, the cautious reading. A member of a resource bundle (GCompris's Qt `.rcc`
    archives: "algorithm.rcc#gcompris/src/activities/algorithm/resource/banana.svg") is a file of its own: only that
    member counts, not the bundle's other pictures."""
    used_files = {path.partition("#")[0] for path in used_paths if not is_bundle_member(path)}
    file, _, part = source_path.partition("#")
    return (source, source_path) in used or source_path in used_paths or file in used_files or part in used_paths


def is_bundle_member(path: str) -> bool:
    """Whether `path` names a file inside an archive of separate files ("bundle.rcc#inner/path")."""
    file, _, member = path.partition("#")
    return file.endswith(BUNDLE_SUFFIXES) and bool(member)


def snapshot_sources(snapshot: Path | str = config.SNAPSHOT_DIR) -> set[tuple[str, str]]:
    """(origin, source_path) of every picture the snapshot uses."""
    used = set()
    with gzip.open(Path(snapshot) / "entities.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            for image in json.loads(line).get("images") or []:
                used.add((str(image.get("origin", "")), str(image.get("source_path", ""))))
    return used


def test_entity_names(dataset) -> set[str]:
    """Normalised names of the gold entities of the dataset's test instances."""
    from ..construction.snapshot import normalise

    return {normalise(inst.gold.name) for inst in dataset.split("test")} - {""}


def disjointness_violations(corpus: Corpus, dataset, snapshot: Path | str = config.SNAPSHOT_DIR) -> list[str]:
    """Every way the corpus overlaps M³EL-mini (`dataset`) or its snapshot; empty when disjoint."""
    problems = []
    sample_pictures = sorted((Path(dataset.root) / "images").glob("*"))
    sample_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in sample_pictures}
    used = snapshot_sources(snapshot)
    used_paths = {path for _, path in used}
    names = test_entity_names(dataset)
    known = fingerprints(sample_pictures)
    for pair in corpus.pairs:
        where = f"{pair.source}:{pair.source_path} ({pair.sha256[:12]})"
        if pair.sha256 in sample_sha:
            problems.append(f"{where}: same bytes as M³EL-mini picture {sample_sha[pair.sha256]}")
        if uses_snapshot_source(pair.source, pair.source_path, used, used_paths):
            problems.append(f"{where}: source file used by a snapshot picture")
        named = names_in(pair.caption, names)
        if named:
            problems.append(f"{where}: caption {pair.caption!r} names test entity {named[0]!r}")
        twin = near_duplicate_of(fingerprints([corpus.pictures[pair.sha256]])[0], known)
        if twin >= 0:
            problems.append(f"{where}: looks like M³EL-mini picture {sample_pictures[twin].name}")
    return problems
